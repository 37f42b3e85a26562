"""Hugging Face export: post-LN -> `bert`, pre-LN -> `roberta-prelayernorm`, loaded with stock
transformers (no remote code) by AutoModel and AutoModelForSequenceClassification, giving our
encoder's output to 1e-5."""
import json

import pytest
import torch

from workflow_scripts.pretrain.models import hf_export
from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining


def trained_looking(layer_norm, nsp, vocab_size):
    """A small model with every weight (LayerNorms and biases too) moved off its init."""
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
                     layer_norm=layer_norm, max_position_embeddings=48, nsp=nsp)
    model = BertForPretraining(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.mark.parametrize("layer_norm, nsp, model_type", [
    ("post", False, "bert"), ("post", True, "bert"), ("pre", False, "roberta-prelayernorm"),
    ("pre", True, "roberta-prelayernorm")])
def test_round_trip_through_transformers(tmp_path, bert_tokenizer_dir, layer_norm, nsp, model_type):
    from transformers import (AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification,
                              AutoTokenizer)

    model = trained_looking(layer_norm, nsp, vocab_size=30522)
    out = tmp_path / "model"
    hf_export.export(model.state_dict(), model.cfg, str(bert_tokenizer_dir), str(out))
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json"} <= {
        p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == model_type and "auto_map" not in config

    tok = AutoTokenizer.from_pretrained(out)
    enc = tok(["The cat sat on the mat.", "A much longer first sentence, so the other row is padded."],
              ["It was warm.", "Short."], padding=True, return_tensors="pt")
    assert (enc["attention_mask"] == 0).any() and (enc["token_type_ids"] == 1).any()
    real = enc["attention_mask"].bool()
    with torch.no_grad():
        ours = model.encode(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        base, info = AutoModel.from_pretrained(out, output_loading_info=True)
        # Every encoder weight came from our file (only the pooler may be missing, without NSP).
        assert set(info["missing_keys"]) <= ({"pooler.dense.weight", "pooler.dense.bias"} if not nsp else set())
        theirs = base(**enc).last_hidden_state
        torch.testing.assert_close(theirs[real], ours[real], atol=1e-5, rtol=0)

        clf = AutoModelForSequenceClassification.from_pretrained(out, num_labels=3)
        torch.testing.assert_close(clf.base_model(**enc).last_hidden_state[real], ours[real], atol=1e-5, rtol=0)
        assert clf(**enc).logits.shape == (2, 3)

        # The MLM head comes along too (cls.predictions.* / lm_head.*), tied to the embeddings.
        mlm, info = AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
        assert not info["missing_keys"]
        ref = model.dense_mlm_logits(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"])
        torch.testing.assert_close(mlm(**enc).logits[real], ref[real], atol=1e-4, rtol=1e-5)


def test_post_ln_uses_bert_pretraining_key_names():
    model = trained_looking("post", True, vocab_size=100)
    keys = set(hf_export.hf_state_dict(model.state_dict(), model.cfg))
    assert {"bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.attention.output.LayerNorm.weight",
            "cls.predictions.transform.dense.weight", "cls.predictions.bias", "cls.seq_relationship.weight",
            "bert.pooler.dense.weight"} <= keys


def test_pre_ln_position_table_is_shifted_past_the_padding_index():
    model = trained_looking("pre", False, vocab_size=100)
    state = hf_export.hf_state_dict(model.state_dict(), model.cfg)
    table = state["roberta_prelayernorm.embeddings.position_embeddings.weight"]
    ours = model.embeddings.position.weight
    assert table.shape == (ours.shape[0] + 1, ours.shape[1])       # pad_token_id 0 -> one row of offset
    torch.testing.assert_close(table[1:], ours.detach())


def test_export_replaces_an_old_folder_and_leaves_no_temp(tmp_path, bert_tokenizer_dir):
    model = trained_looking("pre", False, vocab_size=30522)
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.bin").write_text("old")
    hf_export.export(model.state_dict(), model.cfg, str(bert_tokenizer_dir), str(out))
    assert not (out / "stale.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_card_goes_in_before_the_rename_and_a_failed_one_keeps_the_old_folder(tmp_path, bert_tokenizer_dir):
    """What extra(tmp) writes (the model card) lands with the weights in one rename; if it fails, the
    folder that was there stays whole and no temp is left (a killed export never leaves a card-less model)."""
    model = trained_looking("pre", False, vocab_size=30522)
    out = tmp_path / "model"
    seen = []

    def card(tmp):
        seen.append(sorted(p.name for p in tmp.iterdir()))
        (tmp / "README.md").write_text("card\n")
    hf_export.export(model.state_dict(), model.cfg, str(bert_tokenizer_dir), str(out), card)
    assert "model.safetensors" in seen[0] and not out.samefile(tmp_path) and (out / "README.md").read_text() == "card\n"
    before = (out / "model.safetensors").read_bytes()

    def broken(tmp):
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        hf_export.export(trained_looking("post", False, 30522).state_dict(), model.cfg, str(bert_tokenizer_dir),
                         str(out), broken)
    assert (out / "model.safetensors").read_bytes() == before and (out / "README.md").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
