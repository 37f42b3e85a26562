"""Trial selection: best mean over seeds wins (not the luckiest seed), ties go to the first, the chosen predictions are copied."""
import json

import pytest

from workflow_scripts.glue import grid, select_trial


def make_trial(root, task, lr, bs, ep, seed, score):
    """A finished trial folder as finetune leaves it: dev_metrics.json + test_predictions.tsv."""
    folder = root / task / grid.trial_name(lr, bs, ep, seed)
    folder.mkdir(parents=True)
    hparams = grid.parse_trial(folder.name)
    (folder / "dev_metrics.json").write_text(json.dumps(
        {"task": task, "hparams": hparams, "score": score, "metrics": {"mcc": score}, "dev_examples": 32,
         "train_examples": 96, "seconds": 1.0}))
    (folder / "test_predictions.tsv").write_text(f"split\tindex\tprediction\ntest\t0\t{seed % 2}\n# {folder.name}\n")
    return folder / "dev_metrics.json"


def select(tmp_path, metrics, task="CoLA"):
    select_trial.main(["--task", task, "--metrics", *map(str, metrics), "--best-out", str(tmp_path / "best.json"),
                       "--predictions-out", str(tmp_path / "best_predictions.tsv")])
    return json.loads((tmp_path / "best.json").read_text())


def test_best_group_mean_then_best_seed(tmp_path):
    metrics = [make_trial(tmp_path, "CoLA", 1e-4, 16, 3, seed, score) for seed, score in [(1, 50), (2, 52), (3, 90)]]
    metrics += [make_trial(tmp_path, "CoLA", 3e-5, 16, 3, seed, score) for seed, score in [(1, 70), (2, 71), (3, 69)]]
    best = select(tmp_path, metrics)
    # lr 1e-4 holds the best single trial (90) but its mean is 64; lr 3e-5 averages 70.
    assert best["chosen"] == "lr3e-05_bs16_ep3_seed2"
    assert best["chosen_hparams"] == {"lr": 3e-5, "batch_size": 16, "epochs": 3, "seed": 2}
    assert best["score"] == pytest.approx(70.0)
    assert best["task"] == "CoLA" and len(best["trials"]) == 6
    assert [t["trial"] for t in best["trials"] if t["chosen"]] == ["lr3e-05_bs16_ep3_seed2"]
    assert all({"trial", "hparams", "score", "metrics", "chosen"} <= set(t) for t in best["trials"])
    chosen_predictions = tmp_path / "CoLA/lr3e-05_bs16_ep3_seed2/test_predictions.tsv"
    assert (tmp_path / "best_predictions.tsv").read_bytes() == chosen_predictions.read_bytes()


def test_ties_go_to_the_first_in_order(tmp_path):
    metrics = [make_trial(tmp_path, "RTE", 2e-5, 32, 5, 1, 60), make_trial(tmp_path, "RTE", 2e-5, 32, 5, 2, 60),
               make_trial(tmp_path, "RTE", 1e-5, 32, 5, 1, 60), make_trial(tmp_path, "RTE", 1e-5, 32, 5, 2, 60)]
    assert select(tmp_path, metrics, "RTE")["chosen"] == "lr2e-05_bs32_ep5_seed1"
    assert select(tmp_path, metrics[2:] + metrics[:2], "RTE")["chosen"] == "lr1e-05_bs32_ep5_seed1"


def test_bad_trials_fail_in_one_line(tmp_path):
    other = make_trial(tmp_path, "SST-2", 1e-4, 16, 3, 1, 80)
    with pytest.raises(SystemExit, match=r"dev_metrics.json: a SST-2 trial, but --task is CoLA"):
        select(tmp_path, [other])
    lone = make_trial(tmp_path, "CoLA", 1e-4, 16, 3, 1, 80)
    (lone.parent / "test_predictions.tsv").unlink()
    with pytest.raises(SystemExit, match=r"test_predictions.tsv: file not found"):
        select(tmp_path, [lone])
    assert not (tmp_path / "best.json").exists()


def test_model_out_exports_the_chosen_trials_model(tmp_path):
    """STILTs: MNLI's selection exports the chosen trial's kept model (hard links, Snakemake's dot files left out)."""
    metrics = [make_trial(tmp_path, "MNLI", lr, 32, 3, 1, score) for lr, score in [(5e-5, 70), (8e-5, 75)]]
    for m in metrics:
        model = m.parent / "model"
        model.mkdir()
        (model / "config.json").write_text(json.dumps({"finetuning_task": "MNLI", "trial": m.parent.name}))
        (model / "model.safetensors").write_bytes(m.parent.name.encode())
        (model / ".snakemake_timestamp").touch()
    out = tmp_path / "best_model"
    select_trial.main(["--task", "MNLI", "--metrics", *map(str, metrics), "--best-out", str(tmp_path / "best.json"),
                       "--predictions-out", str(tmp_path / "best_predictions.tsv"), "--model-out", str(out)])
    chosen = metrics[1].parent / "model"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["trial"] == "lr8e-05_bs32_ep3_seed1"
    assert (out / "model.safetensors").stat().st_ino == (chosen / "model.safetensors").stat().st_ino
    assert not list(tmp_path.glob(".best_model*"))  # no temp folder left behind
    # Run again over an existing export (a rerun): replaced, not nested.
    select_trial.main(["--task", "MNLI", "--metrics", str(metrics[0]), "--best-out", str(tmp_path / "best.json"),
                       "--predictions-out", str(tmp_path / "best_predictions.tsv"), "--model-out", str(out)])
    assert json.loads((out / "config.json").read_text())["trial"] == "lr5e-05_bs32_ep3_seed1"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]


def test_model_out_without_a_kept_model_fails_in_one_line(tmp_path):
    metrics = [make_trial(tmp_path, "MNLI", 5e-5, 32, 3, 1, 70)]
    with pytest.raises(SystemExit, match=r"lr5e-05_bs32_ep3_seed1/model: no fine-tuned model here"):
        select_trial.main(["--task", "MNLI", "--metrics", str(metrics[0]), "--best-out", str(tmp_path / "best.json"),
                           "--predictions-out", str(tmp_path / "p.tsv"), "--model-out", str(tmp_path / "best_model")])
    assert not (tmp_path / "best.json").exists() and not (tmp_path / "best_model").exists()


def mrpc_trial(root, lr, f1, accuracy):
    """An MRPC trial whose GLUE score is the mean of F1 and accuracy."""
    path = make_trial(root, "MRPC", lr, 32, 3, 42, (f1 + accuracy) / 2)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "metrics": {"f1": f1, "accuracy": accuracy}}))
    return path


@pytest.mark.parametrize("select_by, chosen", [("mean", "lr1e-05_bs32_ep3_seed42"),
                                                ("first_metric", "lr3e-05_bs32_ep3_seed42")])
def test_select_by_mean_or_extremeberts_first_metric(tmp_path, select_by, chosen):
    # lr 1e-5: F1 88, accuracy 86 (mean 87); lr 3e-5: F1 89, accuracy 80 (mean 84.5). ExtremeBERT
    # ranks MRPC by F1 alone (summarize_val.sh), so it takes 3e-5; the GLUE-score mean takes 1e-5.
    metrics = [mrpc_trial(tmp_path, 1e-5, 88.0, 86.0), mrpc_trial(tmp_path, 3e-5, 89.0, 80.0)]
    select_trial.main(["--task", "MRPC", "--metrics", *map(str, metrics), "--best-out", str(tmp_path / "best.json"),
                       "--predictions-out", str(tmp_path / "best_predictions.tsv"), "--select-by", select_by])
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["chosen"] == chosen and best["select_by"] == select_by
    assert best["selection_score"] == (87.0 if select_by == "mean" else 89.0)
    assert best["score"] == (87.0 if select_by == "mean" else 84.5)       # the GLUE score, whatever ranked it


def test_first_metric_per_task_follows_extremebert():
    assert {t: select_trial.FIRST_METRIC.get(t, "accuracy") for t in ("CoLA", "MRPC", "STS-B", "QQP", "MNLI", "RTE")} == {
        "CoLA": "mcc", "MRPC": "f1", "STS-B": "pearson", "QQP": "f1", "MNLI": "accuracy_matched", "RTE": "accuracy"}
    with pytest.raises(select_trial.BadInput, match="lack a finite 'f1'"):
        select_trial.selection_score({"task": "QQP", "score": 80.0, "metrics": {"accuracy": 80.0}}, "first_metric")
