"""The modern encoder (model.type modernbert): unpadded and per-document attention change nothing but
the compute, the sparse head equals the dense one, and the export is transformers' own ModernBERT
(same logits on real tokenized text with padding)."""
import json

import torch

from workflow_scripts.pretrain.models import factory, specs
from workflow_scripts.pretrain.models.modern import pack, padded_vocab

V = 30522
SPECIAL = {"vocab_size": V, "pad": 0, "cls": 101, "sep": 102}


def spec(**over):
    return {"type": "modernbert", "hidden_size": 32, "num_layers": 3, "num_heads": 2, "intermediate_size": 48,
            "dropout": 0.0, "attention_dropout": 0.0, "max_position_embeddings": 64, "layer_norm": "pre",
            "head_dim": 16, **over}


def tiny(**over):
    torch.manual_seed(0)
    model = factory.build(spec(**over), {}, SPECIAL, nsp=False).model.eval()
    with torch.no_grad():                    # move every weight off its init (norms and the decoder bias too)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def ids(n, seed):
    return torch.randint(1000, V, (n,), generator=torch.Generator().manual_seed(seed))


def test_shape_choices_no_biases_and_a_padded_vocabulary():
    model = tiny()
    assert padded_vocab(V) == 30528 and padded_vocab(64) == 64
    assert model.model.embeddings.tok_embeddings.weight.shape == (30528, 32)
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)):
            assert module.bias is None, module
    assert isinstance(model.model.layers[0].attn_norm, torch.nn.Identity)   # the embeddings are normed
    assert isinstance(model.model.layers[1].attn_norm, torch.nn.LayerNorm)
    assert model.model.layers[0].mlp.Wi.out_features == 2 * 48              # GeGLU: value and gate


def test_head_width_must_fit_hidden_size():
    assert specs.check(spec(), {}) is None
    assert specs.check(spec(num_heads=12, head_dim=None, hidden_size=768), {}) is None   # 64 by default
    problem = specs.check(spec(num_heads=12, head_dim=None, hidden_size=256), {})
    assert problem == "model.num_heads: 12 heads of head_dim 64 make 768, not hidden_size 256: set num_heads 4"
    assert specs.check(spec(type="bert"), {}).startswith("model.head_dim: applies to model.type modernbert only")


def test_pack_finds_documents_inside_rows():
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    docs = torch.tensor([[0, 0, 1, 1, 0], [0, 0, 0, 0, 0]])
    p = pack(mask, docs)
    assert p.index.tolist() == [0, 1, 2, 3, 5, 6]
    assert p.cu_seqlens.tolist() == [0, 2, 4, 6] and p.max_len == 2
    assert p.block[0, 0, 0].tolist() == [True, True, False, False, False]
    assert p.block[0, 0, 4].tolist() == [False, False, False, False, True]   # padding sees padding only
    assert pack(mask).cu_seqlens.tolist() == [0, 4, 6]                        # no ids: a row is one document


def test_padding_and_packed_neighbours_change_nothing():
    model = tiny()
    a, b = ids(7, 1), ids(5, 2)
    alone_a = model.encode(a[None], None, torch.ones(1, 7))[0]
    alone_b = model.encode(b[None], None, torch.ones(1, 5))[0]
    # a padded to 12 in a batch with a row holding a and b packed, boundaries given.
    rows = torch.zeros(2, 12, dtype=torch.long)
    rows[0, :7], rows[1, :7], rows[1, 7:] = a, a, b
    mask = torch.ones(2, 12)
    mask[0, 7:] = 0
    docs = torch.tensor([[0] * 12, [0] * 7 + [1] * 5])
    h = model.encode(rows, None, mask, docs)
    torch.testing.assert_close(h[0, :7], alone_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h[1, :7], alone_a, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h[1, 7:], alone_b, atol=1e-5, rtol=1e-5)   # RoPE: only distances count
    assert h[0, 7:].abs().sum() == 0
    crossing = model.encode(rows[1:], None, mask[1:])                     # without boundaries: one document
    assert not torch.allclose(crossing[0, 7:], alone_b, atol=1e-3)


def test_sparse_head_equals_the_dense_head():
    model = tiny()
    input_ids = torch.stack([ids(10, 3), ids(10, 4)])
    mask = torch.ones(2, 10, dtype=torch.int8)
    mask[1, 6:] = 0
    positions = torch.tensor([[1, 4, 9, 0], [2, 5, 0, 0]], dtype=torch.int32)
    labels = torch.randint(1000, V, (2, 4)).int() * (positions > 0)
    loss, mlm_sum, n = model(input_ids.int(), torch.zeros_like(mask), mask, positions, labels)
    dense = model.dense_mlm_logits(input_ids, None, mask)
    rows, cols = torch.nonzero(positions > 0, as_tuple=True)
    expected = torch.nn.functional.cross_entropy(dense[rows, positions[rows, cols].long()], labels[rows, cols].long())
    assert n == 5
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mlm_sum, expected * n, rtol=1e-5, atol=1e-4)


def test_export_is_transformers_modernbert_with_the_same_logits(tmp_path, bert_tokenizer_dir):
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    built = factory.build(spec(), {}, SPECIAL, nsp=False)
    model = tiny()
    built.export(model.state_dict(), str(bert_tokenizer_dir), str(tmp_path / "model"))
    out = tmp_path / "model"
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "modernbert" and "auto_map" not in config
    assert config["layer_types"] == ["full_attention"] * 3 and config["vocab_size"] == 30528
    assert {"model.safetensors", "tokenizer.json", "vocab.txt"} <= {p.name for p in out.iterdir()}
    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["The cat sat on the mat.", "A much longer first sentence, so the other row is padded."],
              ["It was warm.", "Short."], padding=True, return_tensors="pt")
    real = enc["attention_mask"].bool()
    assert not real.all()                                                  # the test needs padding
    with torch.no_grad():
        ours = model.dense_mlm_logits(enc["input_ids"], None, enc["attention_mask"])
        mlm, info = AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"]
        torch.testing.assert_close(mlm.eval()(**enc).logits[real], ours[real], atol=1e-4, rtol=1e-5)
        clf, info = AutoModelForSequenceClassification.from_pretrained(out, num_labels=3, output_loading_info=True)
        assert set(info["missing_keys"]) == {"classifier.weight", "classifier.bias"}, info
        hidden = model.encode(enc["input_ids"], None, enc["attention_mask"])
        torch.testing.assert_close(clf.eval().model(**enc).last_hidden_state[real], hidden[real], atol=1e-5, rtol=0)
        assert clf(**enc).logits.shape == (2, 3)


def test_modern_pretrains_through_deepspeed_and_fine_tune_loads(pretrain_shards, bert_tokenizer_dir, tmp_path):
    import subprocess

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.helpers.pretrain_run import REPO, command, events, recipe

    rec = recipe(600, model={"type": "modernbert", "hidden_size": 64, "num_layers": 2, "num_heads": 2,
                             "head_dim": 32, "intermediate_size": 96, "dropout": 0.0, "attention_dropout": 0.0},
                 max_steps=4, optimizer={"lr": 3e-3})
    proc = subprocess.run(command(pretrain_shards, bert_tokenizer_dir, tmp_path, rec), cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(tmp_path / "log.jsonl")
    assert log[0]["model_config"]["vocab_size"] == 30528 and log[0]["model_config"]["num_heads"] == 2
    assert log[-1]["reason"] == "max_steps" and log[-1]["step"] == 4
    train = [e["loss"] for e in log if e["event"] == "train"]
    assert len(train) == 2 and all(9.0 < x < 11.5 for x in train)         # ~ln(30528) at the start
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    clf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model", num_labels=2)
    assert clf.config.model_type == "modernbert"
    assert clf(**tok("a premise", "a hypothesis", return_tensors="pt")).logits.shape == (1, 2)
