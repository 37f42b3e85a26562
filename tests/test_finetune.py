"""Real fine-tuning trials of a tiny BERT (real tokenizer) on the GLUE smoke set: files, formats, seeding, learning."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_scripts.glue import finetune, tasks

HPARAMS = {"lr": 1e-4, "batch_size": 16, "epochs": 2, "seed": 1}


def finetune_defaults(repo_root) -> dict:
    """The `finetune:` settings a rule passes: the schema's defaults, minus tasks/grid/seeds."""
    props = yaml.safe_load((repo_root / "config/schema.yaml").read_text())["properties"]["finetune"]["properties"]
    settings = {k: v["default"] for k, v in props.items() if k not in ("tasks", "grid", "seeds")}
    settings["implementation"] = {k: v["default"] for k, v in props["implementation"]["properties"].items()}
    return settings


@pytest.fixture(scope="module")
def settings(repo_root):
    return finetune_defaults(repo_root)


@pytest.fixture(scope="module")
def glue(repo_root):
    return {"source": "dir", "path": str(repo_root / "demo/glue_smoke")}


@pytest.fixture(scope="module")
def tiny_model(bert_tokenizer_dir, tmp_path_factory) -> Path:
    """What pretraining hands over: a Hugging Face folder (BertForPreTraining, hidden 32, 2 layers) + tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForPreTraining

    out = tmp_path_factory.mktemp("tiny_model")
    tokenizer = AutoTokenizer.from_pretrained(bert_tokenizer_dir)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForPreTraining(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run(task, glue, model, settings, out: Path, hparams=HPARAMS):
    finetune.main(["--task", task, "--glue", json.dumps(glue), "--model", str(model), "--hparams", json.dumps(hparams),
                   "--settings", json.dumps(settings), "--metrics-out", str(out / "dev_metrics.json"),
                   "--predictions-out", str(out / "test_predictions.tsv")])
    rows = [line.split("\t") for line in (out / "test_predictions.tsv").read_text().splitlines()]
    return json.loads((out / "dev_metrics.json").read_text()), rows


def check_record(record, task, metric_names):
    assert record["task"] == task and record["hparams"] == HPARAMS
    assert set(record["metrics"]) == set(metric_names)
    assert record["score"] == pytest.approx(sum(record["metrics"].values()) / len(metric_names))
    assert record["train_examples"] > 0 and record["dev_examples"] > 0 and record["seconds"] > 0
    speed = record["speed"]                                          # flops.py's model FLOPs, the CPU's probe
    assert 0 < speed["train_seconds"] < record["seconds"] and speed["tokens_per_s"] > 0
    assert 0 < speed["mfu"] == pytest.approx(speed["tflops_per_s"] / speed["peak_tflops"])
    # train_seconds is rounded to the millisecond; device_hours is not
    assert speed["device_hours"] == pytest.approx(speed["train_seconds"] / 3600, abs=0.0006 / 3600)


def test_single_sentence_trial_cli_and_seeding(tiny_model, glue, settings, tmp_path, repo_root):
    """The rule's command line, then the same trial in-process: same seed, same predictions and scores."""
    cli = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "workflow_scripts.glue.finetune", "--task", "SST-2", "--glue", json.dumps(glue),
                    "--model", str(tiny_model), "--hparams", json.dumps(HPARAMS), "--settings", json.dumps(settings),
                    "--metrics-out", str(cli / "dev_metrics.json"), "--predictions-out", str(cli / "test_predictions.tsv")],
                   check=True, cwd=repo_root, capture_output=True)
    record, rows = run("SST-2", glue, tiny_model, settings, tmp_path / "again")
    check_record(record, "SST-2", ["accuracy"])
    assert record["dev_examples"] == 32 and record["train_examples"] == 96
    assert 0 <= record["score"] <= 100
    assert rows[0] == ["split", "index", "prediction"]
    assert [r[0] for r in rows[1:]] == ["test"] * 32
    assert [int(r[1]) for r in rows[1:]] == list(range(32))
    assert {r[2] for r in rows[1:]} <= {"0", "1"}
    assert (cli / "test_predictions.tsv").read_text() == (tmp_path / "again/test_predictions.tsv").read_text()
    first = json.loads((cli / "dev_metrics.json").read_text())
    assert first["metrics"] == record["metrics"]


def test_pair_trial(tiny_model, glue, settings, tmp_path):
    record, rows = run("MRPC", glue, tiny_model, settings, tmp_path)
    check_record(record, "MRPC", ["f1", "accuracy"])
    assert len(rows) == 33 and {r[2] for r in rows[1:]} <= {"0", "1"}


def test_regression_trial(tiny_model, glue, settings, tmp_path):
    record, rows = run("STS-B", glue, tiny_model, settings, tmp_path)
    check_record(record, "STS-B", ["pearson", "spearman"])
    values = [r[2] for r in rows[1:]]
    assert len(values) == 32
    assert all(0.0 <= float(v) <= 5.0 and len(v.split(".")[1]) == 3 for v in values)


def test_mnli_trial_predicts_matched_mismatched_and_diagnostic(tiny_model, glue, settings, tmp_path):
    record, rows = run("MNLI", glue, tiny_model, settings, tmp_path)
    check_record(record, "MNLI", ["accuracy_matched", "accuracy_mismatched"])
    assert record["dev_examples"] == 64
    splits = [r[0] for r in rows[1:]]
    assert splits == ["test_matched"] * 32 + ["test_mismatched"] * 32 + ["diagnostic"] * 32
    assert {r[2] for r in rows[1:]} <= {"entailment", "neutral", "contradiction"}


def test_training_learns_the_smoke_signal(tiny_model, glue, settings, tmp_path):
    """SST-2 smoke sentences differ only in sentiment words: enough steps must beat chance clearly."""
    hparams = {"lr": 2e-3, "batch_size": 16, "epochs": 8, "seed": 3}
    record, _ = run("SST-2", glue, tiny_model, {**settings, "group_by_length": True}, tmp_path, hparams)
    assert record["metrics"]["accuracy"] >= 85, record


def test_batches_cover_every_example_once():
    import torch

    lengths = [5, 30, 6, 29, 7, 28, 8, 27, 9, 26]
    for grouped in (False, True):
        batches = finetune.train_batches(lengths, 2, torch.Generator().manual_seed(0), grouped)
        assert sorted(i for b in batches for i in b) == list(range(10))
    grouped = finetune.train_batches(lengths, 2, torch.Generator().manual_seed(0), True)
    # One mega-batch here, sorted by length: batches are runs of neighbours in length order.
    by_length = sorted(lengths, reverse=True)
    expected = sorted(sorted(by_length[i:i + 2]) for i in range(0, 10, 2))
    assert sorted(sorted(lengths[i] for i in b) for b in grouped) == expected
    plain = finetune.train_batches(lengths, 2, torch.Generator().manual_seed(0), False)
    assert sorted(sorted(lengths[i] for i in b) for b in plain) != expected  # this seed mixes lengths


def test_linear_warmup_then_decay():
    import torch

    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = finetune.linear_schedule(opt, warmup_steps=2, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])


def test_bad_inputs_fail_in_one_line(tiny_model, glue, settings, tmp_path):
    with pytest.raises(SystemExit, match="no_such_model: model folder not found"):
        run("CoLA", glue, tmp_path / "no_such_model", settings, tmp_path)
    with pytest.raises(SystemExit, match="--hparams: missing key 'seed'"):
        run("CoLA", glue, tiny_model, settings, tmp_path, {"lr": 1e-4, "batch_size": 16, "epochs": 1})
    with pytest.raises(SystemExit, match=r"nowhere/CoLA/train\.tsv: file not found"):
        run("CoLA", {"source": "dir", "path": str(tmp_path / "nowhere")}, tiny_model, settings, tmp_path)
    with pytest.raises(SystemExit, match=r"finetune\.max_seq_length=256 exceeds the 128 positions of the model"):
        run("CoLA", glue, tiny_model, {**settings, "max_seq_length": 256}, tmp_path)
    assert not (tmp_path / "dev_metrics.json").exists()
    assert tasks.TASKS["CoLA"].labels == ("0", "1")


def test_stilts_mnli_model_kept_then_rte_and_stsb_start_from_it(tiny_model, glue, settings, tmp_path, capsys):
    """--model-out keeps MNLI's model (HF folder + tokenizer); RTE and STS-B trials start from it with new heads."""
    import torch
    from safetensors.torch import load_file

    kept = tmp_path / "mnli/model"
    finetune.main(["--task", "MNLI", "--glue", json.dumps(glue), "--model", str(tiny_model),
                   "--hparams", json.dumps(HPARAMS), "--settings", json.dumps(settings),
                   "--metrics-out", str(tmp_path / "mnli/dev_metrics.json"),
                   "--predictions-out", str(tmp_path / "mnli/test_predictions.tsv"), "--model-out", str(kept)])
    assert json.loads((tmp_path / "mnli/dev_metrics.json").read_text())["init_task"] is None
    config = json.loads((kept / "config.json").read_text())
    assert config["finetuning_task"] == "MNLI" and len(config["id2label"]) == 3
    assert {"model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in kept.iterdir()}
    assert not list(kept.parent.glob(".model*"))  # the temp folder was renamed into place
    capsys.readouterr()

    record, rows = run("RTE", glue, kept, settings, tmp_path / "rte")
    assert record["init_task"] == "MNLI" and record["init_model"] == str(kept)
    assert f"init: {kept}, fine-tuned on MNLI (STILTs); new 2-output RTE classifier head" in capsys.readouterr().out
    assert {r[2] for r in rows[1:]} <= {"entailment", "not_entailment"}
    record, rows = run("STS-B", glue, kept, settings, tmp_path / "stsb")
    assert record["init_task"] == "MNLI" and set(record["metrics"]) == {"pearson", "spearman"}

    # The encoder carries over exactly; the head is new (RTE: 2 outputs, not MNLI's 3).
    source = load_file(kept / "model.safetensors")
    _, model, from_task = finetune.load_model(kept, tasks.TASKS["RTE"])
    assert from_task == "MNLI"
    state = model.state_dict()
    encoder = [k for k in source if not k.startswith("classifier.")]
    assert encoder and all(torch.equal(state[k], source[k]) for k in encoder)
    assert state["classifier.weight"].shape == (2, source["classifier.weight"].shape[1])


def test_stilts_replaces_the_whole_roberta_style_head(tmp_path, bert_tokenizer_dir):
    """Pre-LN models (RoBERTa-PreLayerNorm) have a dense layer in the head: it is re-drawn too, not kept from MNLI."""
    import torch
    from transformers import (AutoTokenizer, RobertaPreLayerNormConfig,
                              RobertaPreLayerNormForSequenceClassification)

    tokenizer = AutoTokenizer.from_pretrained(bert_tokenizer_dir)
    config = RobertaPreLayerNormConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=64, num_labels=3)
    config.finetuning_task = "MNLI"
    torch.manual_seed(0)
    source = RobertaPreLayerNormForSequenceClassification(config)
    with torch.no_grad():
        source.classifier.dense.weight.fill_(0.5)
        source.classifier.dense.bias.fill_(0.3)
    source.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    torch.manual_seed(1)
    _, model, from_task = finetune.load_model(tmp_path, tasks.TASKS["STS-B"])
    assert from_task == "MNLI" and model.config.finetuning_task == "STS-B" and model.num_labels == 1
    assert not torch.equal(model.classifier.dense.weight, source.classifier.dense.weight)
    assert model.classifier.dense.bias.abs().sum() == 0
    assert model.classifier.dense.weight.std().item() == pytest.approx(config.initializer_range, rel=0.3)
    assert torch.equal(model.roberta_prelayernorm.embeddings.word_embeddings.weight,
                       source.roberta_prelayernorm.embeddings.word_embeddings.weight)
