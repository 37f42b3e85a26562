"""Trial selection: best mean over seeds wins (not the luckiest seed), ties go to the first, the chosen predictions are copied."""
import json

import pytest

from workflow_scripts import grid, select_trial


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
