"""Model cards: written from a run's own records, read back through huggingface_hub; the publish
step's upload folder (card refreshed with GLUE dev scores) and its one-line refusals."""
import json

import numpy as np
import pytest

from workflow_scripts.report import model_card, publish

CONFIG = {"event": "config", "model": {"type": "bert", "layer_norm": "pre", "hidden_size": 64, "num_layers": 2,
                                        "num_heads": 2},
          "parameters": 2_088_314, "seq_len": 128, "batch_size": 4096, "world_size": 8,
          "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.98]},
          "schedule": {"name": "linear", "by": "time", "warmup_proportion": 0.06, "kwargs": {}},
          "total_training_time": 24.0, "max_steps": None, "implementation": {"precision": "fp16"}}


def write_shard(path, rows, documents):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("input_ids", data=np.zeros((rows, 8), dtype=np.int32))
        f.attrs["num_documents"] = documents


@pytest.fixture
def run_records(tmp_path):
    """A run's log (config, two validations, end) and three shards: wiki parts 0-1, books part 2."""
    log = tmp_path / "pretrain_log.jsonl"
    events = [CONFIG, {"event": "valid", "step": 100, "valid_loss": 3.5},
              {"event": "valid", "step": 200, "valid_loss": 2.25},
              {"event": "end", "step": 230, "elapsed_s": 86_400.5, "reason": "budget"}]
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    train = [tmp_path / f"train_{k}.h5" for k in range(3)]
    valid = [tmp_path / f"valid_{k}.h5" for k in range(3)]
    for k, (rows, docs) in enumerate([(300, 10), (200, 7), (50, 2)]):
        write_shard(train[k], rows, docs)
        write_shard(valid[k], rows // 10, 1)
    corpora = {"wiki": {"type": "wikipedia", "source": "resources/enwiki.xml.bz2", "shards": [0, 1]},
               "books": {"type": "huggingface", "source": "lucadiliello/bookcorpusopen", "shards": [2]}}
    return model_card.pretrain_facts(log, train, valid, "large", corpora)


def pretrained_folder(tmp_path, facts):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    model_card.write(folder, model_card.card(facts))
    return folder


def test_card_of_a_pretraining_run_reads_back(run_records, tmp_path):
    from huggingface_hub import ModelCard

    card = ModelCard.load(pretrained_folder(tmp_path, run_records) / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "fill-mask"
    assert data["datasets"] == ["lucadiliello/bookcorpusopen"] and "model-index" not in data
    facts = data["extremebert"]
    assert (facts["steps"], facts["training_seconds"], facts["final_valid_loss"]) == (230, 86_400.5, 2.25)
    assert facts["corpora"]["wiki"] == {"type": "wikipedia", "source": "resources/enwiki.xml.bz2",
                                        "train_documents": 17, "train_samples": 500, "valid_samples": 50}
    assert facts["corpora"]["books"]["train_samples"] == 50 and facts["stop_reason"] == "budget"
    assert "| wiki | wikipedia | `resources/enwiki.xml.bz2` | 17 | 500 | 50 |" in card.text
    assert "230 optimizer steps in 86,400 s (24.00 h)" in card.text and "loss 2.2500" in card.text
    assert "batch 4096 samples on 8 process(es), precision fp16" in card.text


def test_fine_tuned_card_adds_the_trials_dev_scores(run_records, tmp_path):
    from huggingface_hub import ModelCard

    base = pretrained_folder(tmp_path, run_records)
    out = tmp_path / "mnli_model"
    out.mkdir()
    record = {"task": "MNLI", "score": 80.5, "metrics": {"accuracy": 81.0, "accuracy_mm": 80.0}}
    model_card.write_finetuned(out, base, record)
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["pipeline_tag"] == "text-classification" and data["extremebert"]["finetuned_on"] == "MNLI"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"accuracy": 81.0, "accuracy_mm": 80.0}
    assert "| MNLI | 80.50 | accuracy 81.00, accuracy_mm 80.00 |" in card.text
    # A base without our card (e.g. a hub model) gets none: nothing true to say about its training.
    (tmp_path / "hub").mkdir()
    assert model_card.write_finetuned(out, tmp_path / "hub", record) is None


def test_publish_prepares_the_folder_with_glue_scores(run_records, tmp_path):
    from huggingface_hub import ModelCard

    model = pretrained_folder(tmp_path, run_records)
    before = (model / "README.md").read_text()
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"task": "RTE", "trials": [
        {"trial": "a", "score": 55.0, "metrics": {"accuracy": 55.0}, "chosen": False},
        {"trial": "b", "score": 62.5, "metrics": {"accuracy": 62.5}, "chosen": True}]}))
    staged = publish.prepare(model, [best], tmp_path / "upload")
    assert sorted(p.name for p in staged.iterdir()) == ["README.md", "config.json"]
    card = ModelCard.load(staged / "README.md")
    assert [(r.dataset_name, r.metric_type, r.metric_value) for r in card.data.eval_results] == [
        ("GLUE RTE", "accuracy", 62.5)]
    assert "| RTE | 62.50 | accuracy 62.50 |" in card.text
    assert (model / "README.md").read_text() == before         # the run's own folder is left alone
    (model / "README.md").unlink()
    with pytest.raises(publish.BadInput, match="has no model card of ours"):
        publish.prepare(model, [], tmp_path / "upload2")


def test_publish_without_a_token_or_namespace_stops_in_one_line(tmp_path, monkeypatch):
    from huggingface_hub import constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # No stored token either (the path is read when huggingface_hub is imported).
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no_token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_tokens"), raising=False)
    receipt = tmp_path / "published.json"
    argv = ["--model", str(tmp_path), "--receipt-out", str(receipt)]
    with pytest.raises(SystemExit, match=r"^publish: no Hugging Face token: run `hf auth login` or set HF_TOKEN"):
        publish.main(argv + ["--repo-id", "me/demo"])
    with pytest.raises(SystemExit, match=r"^publish: repo id '/demo' has no namespace: set publish.namespace"):
        publish.main(argv + ["--repo-id", "/demo"])
    assert not receipt.exists() and not list(tmp_path.glob(".publish-*"))
