"""Model families: RoBERTa, ALBERT and DeBERTa-v2 through transformers with our sparse MLM head; each
pretrains through DeepSpeed and its export loads as a sequence classifier; torch.compile for our BERT."""
import json
import subprocess

import pytest
import torch

from tests.helpers.pretrain_run import REPO, command, events, recipe
from workflow_scripts.pretrain.models import factory, hf_families

FAMILIES = ["roberta", "albert", "deberta-v2"]
V, B, L, P = 30522, 3, 16, 4
SPECIAL = {"vocab_size": V, "pad": 0, "cls": 101, "sep": 102}


def spec(family, **over):
    return {"type": family, "hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64,
            "dropout": 0.1, "attention_dropout": 0.1, "max_position_embeddings": 32, "layer_norm": "pre", **over}


def tiny(family, **over):
    torch.manual_seed(0)
    model = factory.build(spec(family, **over), {}, SPECIAL, nsp=False).model.eval()
    with torch.no_grad():                    # move every weight off its init (LayerNorms, biases too)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, V, (B, L), generator=g)
    ids[:, 0], ids[0, 9] = 101, 102
    mask = torch.ones(B, L, dtype=torch.int8)
    mask[1, 10:] = 0                         # row 1 is padded
    ids[1, 10:] = 0
    types = torch.zeros(B, L, dtype=torch.int8)
    types[0, 10:] = 1                        # row 0 is a sentence pair
    positions = torch.tensor([[1, 5, 7, 0], [2, 3, 9, 0], [4, 0, 0, 0]], dtype=torch.int32)   # 0 = padding
    labels = torch.randint(1000, V, (B, P), generator=g).int() * (positions > 0)
    return dict(input_ids=ids.int(), token_type_ids=types, attention_mask=mask, masked_lm_positions=positions,
                masked_lm_ids=labels)


@pytest.mark.parametrize("family", FAMILIES)
def test_sparse_head_equals_the_stock_dense_head(family):
    model, b = tiny(family), batch()
    loss, mlm_sum, n = model(**b)
    dense = model.dense_mlm_logits(b["input_ids"], b["token_type_ids"], b["attention_mask"])   # stock forward
    assert dense.shape == (B, L, V)
    real = b["masked_lm_positions"] > 0
    rows, cols = torch.nonzero(real, as_tuple=True)
    picked = dense[rows, b["masked_lm_positions"][rows, cols].long()]
    expected = torch.nn.functional.cross_entropy(picked, b["masked_lm_ids"][rows, cols].long())
    assert n == 7
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mlm_sum, expected * n, rtol=1e-5, atol=1e-4)


def test_family_configs_carry_the_family_keys_and_defaults():
    albert = hf_families.hf_config(spec("albert"), SPECIAL)
    assert (albert.embedding_size, albert.num_hidden_groups, albert.inner_group_num) == (128, 1, 1)
    albert = hf_families.hf_config(spec("albert", embedding_size=16, num_hidden_groups=2), SPECIAL)
    assert (albert.embedding_size, albert.num_hidden_groups, albert.model_type) == (16, 2, "albert")
    deberta = hf_families.hf_config(spec("deberta-v2"), SPECIAL)
    assert deberta.relative_attention and deberta.position_buckets == 256 and not deberta.position_biased_input
    assert list(deberta.pos_att_type) == ["p2c", "c2p"] and deberta.type_vocab_size == 2
    deberta = hf_families.hf_config(spec("deberta-v2", relative_attention=False, position_biased_input=True), SPECIAL)
    assert not deberta.relative_attention and deberta.position_biased_input
    # RoBERTa counts positions from pad + 1: room for max_position_embeddings real tokens after it.
    roberta = hf_families.hf_config(spec("roberta"), {**SPECIAL, "pad": 3})
    assert roberta.max_position_embeddings == 32 + 3 + 1 and roberta.type_vocab_size == 2
    assert roberta.vocab_size == V and roberta.pad_token_id == 3 and roberta.eos_token_id == 102


@pytest.mark.parametrize("family", FAMILIES)
def test_export_loads_with_stock_auto_classes(family, tmp_path, bert_tokenizer_dir):
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    model, out = tiny(family), tmp_path / "model"
    hf_families.export(model.state_dict(), family, model.config, str(bert_tokenizer_dir), str(out))
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == family and "auto_map" not in config
    assert {"model.safetensors", "tokenizer.json", "vocab.txt"} <= {p.name for p in out.iterdir()}
    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["The cat sat on the mat.", "A much longer first sentence, so the other row is padded."],
              ["It was warm.", "Short."], padding=True, return_tensors="pt")
    real = enc["attention_mask"].bool()
    with torch.no_grad():
        ours = model.encode(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        mlm, info = AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        ref = model.dense_mlm_logits(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        torch.testing.assert_close(mlm.eval()(**enc).logits[real], ref[real], atol=1e-4, rtol=1e-5)
        clf, info = AutoModelForSequenceClassification.from_pretrained(out, num_labels=3, output_loading_info=True)
        # Only the new classifier (and a pooler where the family has one) is missing: the encoder is ours.
        assert all(k.startswith(("classifier", "pooler", "albert.pooler")) for k in info["missing_keys"]), info
        torch.testing.assert_close(clf.eval().base_model(**enc).last_hidden_state[real], ours[real], atol=1e-5, rtol=0)
        assert clf(**enc).logits.shape == (2, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_pretrains_through_deepspeed_and_fine_tune_loads(family, pretrain_shards, bert_tokenizer_dir,
                                                                     tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    rec = recipe(600, model={"type": family, "hidden_size": 64, "num_layers": 2, "num_heads": 2,
                             "intermediate_size": 128}, max_steps=4, optimizer={"lr": 3e-3})
    proc = subprocess.run(command(pretrain_shards, bert_tokenizer_dir, tmp_path, rec), cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(tmp_path / "log.jsonl")
    assert log[0]["model_config"]["model_type"] == family and log[0]["model_config"]["vocab_size"] == V
    assert log[-1]["reason"] == "max_steps" and log[-1]["step"] == 4
    train = [e["loss"] for e in log if e["event"] == "train"]
    assert len(train) == 2 and all(9.0 < x < 11.0 for x in train)          # ~ln(30522) at the start
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    clf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model", num_labels=2)
    assert clf.config.model_type == family
    enc = tok("a premise", "a hypothesis", return_tensors="pt")
    assert clf(**enc).logits.shape == (1, 2)


def test_hf_families_ignore_nsp_labels_and_say_so():
    built = factory.build(spec("roberta"), {}, SPECIAL, nsp=True)
    assert any("next-sentence labels are ignored" in n for n in built.notes)
    b = batch()
    loss, _, n = built.model(**b, next_sentence_labels=torch.tensor([0, 1, 0]))
    assert n == 7 and torch.isfinite(loss)


def test_compiled_bert_layers_match_eager():
    """implementation.compile: the encoder layers run through torch.compile (inductor), the state
    dict keeps its names (checkpoints, export), and loss and gradients equal eager's. The one slow
    test here (~30-60 s of compiling on a CPU): torch.compile has no cheap mode to stand in for it."""
    small = {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "intermediate_size": 32, "dropout": 0.0,
             "attention_dropout": 0.0}
    torch.manual_seed(0)
    eager = factory.build(spec("bert", **small), {}, SPECIAL, nsp=False)
    torch.manual_seed(0)
    compiled = factory.build(spec("bert", **small), {"compile": True}, SPECIAL, nsp=False)
    assert any("compiled" in n for n in compiled.notes)
    assert compiled.model.state_dict().keys() == eager.model.state_dict().keys()
    b = batch()
    for built in (eager, compiled):
        loss, _, _ = built.model(**b)
        loss.backward()
    w = "layers.0.ffn.up.weight"
    grads = {name: dict(m.model.named_parameters())[w].grad for name, m in (("e", eager), ("c", compiled))}
    torch.testing.assert_close(grads["c"], grads["e"], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(compiled.model(**b)[0], eager.model(**b)[0], atol=1e-6, rtol=1e-6)
