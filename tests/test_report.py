"""The report: a GLUE dev table across runs (every trial, the chosen one marked) and a loss/LR curves PNG."""
import json

import pytest

from workflow_scripts import grid, report, select_trial


def write_log(path, minutes, start_loss):
    events = [{"event": "config", "model": {"hidden_size": 128}}]
    for k in range(1, minutes * 2 + 1):
        events.append({"event": "train", "step": 10 * k, "elapsed_s": 30.0 * k, "loss": start_loss / k ** 0.3,
                       "lr": 1e-3 * min(1, k / 3), "samples_per_s": 100.0, "tokens_per_s": 12800.0})
        if k % 2 == 0:
            events.append({"event": "valid", "step": 10 * k, "elapsed_s": 30.0 * k + 1, "valid_loss": start_loss / k ** 0.25})
    events.append({"event": "end", "step": 20 * minutes, "elapsed_s": 60.0 * minutes, "reason": "time budget"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def write_best(root, run, task, scores, init_task=None):
    """Trials as finetune leaves them, then the real selection writes best.json."""
    metrics = []
    for (lr, seed), score in scores.items():
        folder = root / "runs" / run / "glue" / task / grid.trial_name(lr, 16, 2, seed)
        folder.mkdir(parents=True)
        (folder / "dev_metrics.json").write_text(json.dumps(
            {"task": task, "hparams": grid.parse_trial(folder.name), "score": score, "metrics": {"accuracy": score},
             "init_task": init_task}))
        (folder / "test_predictions.tsv").write_text("split\tindex\tprediction\ntest\t0\t1\n")
        metrics.append(folder / "dev_metrics.json")
    best = root / "runs" / run / "glue" / task / "best.json"
    select_trial.main(["--task", task, "--metrics", *map(str, metrics), "--best-out", str(best),
                       "--predictions-out", str(best.parent / "best_predictions.tsv")])
    return best


def test_report_writes_table_and_png(tmp_path):
    logs = [write_log(tmp_path / "runs/adamw/pretrain_log.jsonl", 3, 10.0),
            write_log(tmp_path / "runs/lamb/pretrain_log.jsonl", 2, 9.0)]
    bests = [write_best(tmp_path, "adamw", "SST-2", {(1e-4, 1): 80.0, (1e-4, 2): 84.0, (3e-5, 1): 70.0}),
             write_best(tmp_path, "adamw", "RTE", {(1e-4, 1): 55.0}),
             write_best(tmp_path, "lamb", "SST-2", {(1e-4, 1): 90.0}),
             write_best(tmp_path, "lamb", "RTE", {(1e-4, 1): 60.0})]
    table, png = tmp_path / "report/glue_dev.md", tmp_path / "report/loss_curves.png"
    report.main(["--pretrain-logs", *map(str, logs), "--best", *map(str, bests),
                 "--table-out", str(table), "--curves-out", str(png)])
    md = table.read_text()
    lines = md.splitlines()
    assert "| run | SST-2 | RTE | GLUE avg |" in lines  # tasks in GLUE order, the average last
    assert "| adamw | 82.00 | 55.00 | 68.50 |" in lines  # SST-2: the lr 1e-4 group's mean over seeds
    assert "| lamb | 90.00 | 60.00 | 75.00 |" in lines
    assert "| adamw | 60 | 3.0 |" in md and "time budget" in md
    sst2 = md.split("## SST-2")[1].split("## RTE")[0]
    assert sst2.count("**chosen**") == 2  # one per run
    chosen_row = next(line for line in sst2.splitlines() if "**chosen**" in line and "adamw" in line)
    assert "lr0.0001_bs16_ep2_seed2" in chosen_row
    assert sst2.count("| adamw |") == 3

    import matplotlib.image

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 2 * image.shape[0] * 0.8  # two panels side by side
    assert image[..., :3].std() > 0.05  # something was drawn


def test_bad_log_line_is_named(tmp_path):
    log = write_log(tmp_path / "runs/demo/pretrain_log.jsonl", 1, 5.0)
    log.write_text(log.read_text() + '{"event": "train", "step": 99, "elapsed\n')
    n = len(log.read_text().splitlines())
    with pytest.raises(SystemExit, match=rf"pretrain_log.jsonl, line {n}: not JSON"):
        report.main(["--pretrain-logs", str(log), "--table-out", str(tmp_path / "t.md"),
                     "--curves-out", str(tmp_path / "c.png")])
    assert not (tmp_path / "t.md").exists()


def test_two_runs_over_all_nine_tasks(tmp_path):
    """An optimizer study: both runs in the summary, each task's chosen score (mean over seeds) and the GLUE average."""
    scores = {"adamw": dict(zip(["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"],
                                [40.0, 88.0, 85.0, 84.0, 86.0, 78.0, 86.0, 62.0, 56.0])),
              "lamb": dict(zip(["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"],
                               [30.0, 86.0, 83.0, 82.0, 85.0, 77.0, 84.0, 58.0, 56.0]))}
    stilts = {"MRPC", "STS-B", "RTE"}
    bests = []
    for run, by_task in scores.items():
        for task, score in by_task.items():
            # Two seeds of the chosen lr around `score`, and a worse lr with one lucky seed.
            trials = {(1e-4, 1): score - 1, (1e-4, 2): score + 1, (3e-5, 1): score + 5, (3e-5, 2): score - 20}
            bests.append(write_best(tmp_path, run, task, trials, "MNLI" if task in stilts and run == "adamw" else None))
    logs = [write_log(tmp_path / "runs/adamw/pretrain_log.jsonl", 2, 10.0),
            write_log(tmp_path / "runs/lamb/pretrain_log.jsonl", 2, 9.0)]
    table = tmp_path / "glue_dev.md"
    report.main(["--pretrain-logs", *map(str, logs), "--best", *map(str, bests), "--table-out", str(table),
                 "--curves-out", str(tmp_path / "curves.png")])
    lines = table.read_text().splitlines()
    assert "| run | CoLA | SST-2 | MRPC | STS-B | QQP | MNLI | QNLI | RTE | WNLI | GLUE avg |" in lines
    for run, by_task in scores.items():
        avg = sum(by_task.values()) / 9
        row = f"| {run} | " + " | ".join(f"{v:.2f}" for v in by_task.values()) + f" | {avg:.2f} |"
        assert row in lines, (row, lines[:14])
    summary = lines[lines.index("## Summary"):lines.index("## Pretraining")]
    assert [line.split(" | ")[0] for line in summary if line.startswith("| ") and "GLUE avg" not in line] == \
        ["| adamw", "| lamb"]
    stilts_line = next(line for line in summary if line.startswith("Intermediate-task starts"))
    assert "adamw: MRPC from MNLI, STS-B from MNLI, RTE from MNLI." in stilts_line and "lamb" not in stilts_line
    # Every trial is listed per task, one chosen per run.
    rte = "\n".join(lines).split("## RTE")[1].split("## WNLI")[0]
    assert rte.count("**chosen**") == 2 and rte.count("| adamw |") == 4 and rte.count("| lamb |") == 4
