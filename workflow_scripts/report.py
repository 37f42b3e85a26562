"""The cross-run report: a GLUE dev table (every trial, the chosen one marked) and loss/LR curves.

    python -m workflow_scripts.report --pretrain-logs results/runs/*/pretrain_log.jsonl \\
        --best results/runs/*/glue/*/best.json --table-out results/report/glue_dev.md \\
        --curves-out results/report/loss_curves.png

Run names come from the paths (results/runs/<run>/...). The PNG has two panels against
elapsed wall-clock minutes (the budget ExtremeBERT trains on): training loss with validation
loss points, and the learning rate.
"""
import argparse
import io
import json
import math
from pathlib import Path

from workflow_scripts import atomic, glue_data
from workflow_scripts.cli import read_record


def run_of_log(path: Path) -> str:
    return path.parent.name  # results/runs/<run>/pretrain_log.jsonl


def run_of_best(path: Path) -> str:
    return path.parents[2].name if len(path.parents) > 2 else path.parent.name  # results/runs/<run>/glue/<task>/best.json


def read_log(path: Path) -> dict:
    """{event name: [records]} from a pretraining JSON-lines log."""
    if not path.is_file():
        raise SystemExit(f"{path}: file not found")
    events = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path}, line {n}: not JSON ({e})") from None
        if not isinstance(record, dict) or "event" not in record:
            raise SystemExit(f"{path}, line {n}: no \"event\" key")
        events.setdefault(record["event"], []).append(record)
    for kind, keys in (("train", ("elapsed_s", "loss", "lr")), ("valid", ("elapsed_s", "valid_loss"))):
        for i, record in enumerate(events.get(kind, [])):
            missing = [k for k in keys if k not in record]
            if missing:
                raise SystemExit(f"{path}: {kind} event #{i + 1} lacks {', '.join(missing)}")
    return events


def read_best(path: Path) -> dict:
    """A task's best.json (select_trial's record)."""
    return read_record(path, ("task", "chosen", "score", "trials"))


def fmt(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def table(header: list, rows: list, align: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def markdown(logs: dict, bests: dict) -> str:
    """logs: {run: events}; bests: {run: {task: best}}."""
    runs = list(dict.fromkeys([*logs, *bests]))
    tasks = [t for t in glue_data.TASKS if any(t in bests.get(r, {}) for r in runs)]
    out = ["# GLUE dev results", "",
           "Scores are on the dev sets (0-100, as the GLUE leaderboard prints them; a task with two metrics",
           "shows their mean). A task's score is that of its chosen hyperparameters: the group of trials",
           "(lr, batch size, epochs) with the best mean over seeds. The average is over the tasks shown.", ""]
    out += ["## Summary", ""]
    rows = []
    for run in runs:
        scores = [bests.get(run, {}).get(t, {}).get("score") for t in tasks]
        present = [s for s in scores if s is not None]
        avg = fmt(sum(present) / len(present)) if present else "–"
        if present and len(present) < len(tasks):
            avg += f" ({len(present)} tasks)"
        rows.append([run, *(fmt(s) for s in scores), avg])
    out += table(["run", *tasks, "GLUE avg"], rows, ["l"] + ["r"] * (len(tasks) + 1)) + [""]
    # STILTs: a task whose chosen trial started from another task's selected model (MNLI).
    stilts = {run: [f"{t} from {bests[run][t]['init_task']}" for t in tasks
                    if bests.get(run, {}).get(t, {}).get("init_task")] for run in runs}
    if any(stilts.values()):
        out += ["Intermediate-task starts (STILTs: fine-tuned from the run's selected model of another task, "
                "not from the pre-trained one): " + "; ".join(f"{run}: {', '.join(ts)}" for run, ts in stilts.items() if ts)
                + ".", ""]

    out += ["## Pretraining", ""]
    rows = []
    for run, events in logs.items():
        train, valid, end = events.get("train", []), events.get("valid", []), events.get("end", [])
        last = end[-1] if end else (train[-1] if train else {})
        rows.append([run, last.get("step", "–"), fmt(last.get("elapsed_s", math.nan) / 60, 1),
                     fmt(train[-1]["loss"], 3) if train else "–", fmt(valid[-1]["valid_loss"], 3) if valid else "–",
                     end[-1].get("reason", "–") if end else "(no end event)"])
    out += table(["run", "steps", "minutes", "last train loss", "last valid loss", "end"], rows,
                 ["l", "r", "r", "r", "r", "l"]) + [""]

    for task in tasks:
        out += [f"## {task}", ""]
        rows = []
        for run in runs:
            best = bests.get(run, {}).get(task)
            if not best:
                continue
            for trial in best["trials"]:
                hp = trial.get("hparams", {})
                metrics = ", ".join(f"{k} {fmt(v)}" for k, v in trial.get("metrics", {}).items())
                mark = "**chosen**" if trial.get("chosen") else ""
                rows.append([run, trial.get("trial", "?"), f"{hp.get('lr', '?'):g}" if "lr" in hp else "?",
                             hp.get("batch_size", "?"), hp.get("epochs", "?"), hp.get("seed", "?"),
                             fmt(trial.get("score")), metrics, mark])
        out += table(["run", "trial", "lr", "batch", "epochs", "seed", "score", "metrics", ""], rows,
                     ["l", "l", "r", "r", "r", "r", "r", "l", "l"]) + [""]
    return "\n".join(out)


def curves_png(logs: dict) -> bytes:
    """Two panels against elapsed minutes: train loss (lines) + valid loss (points); learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (run, events) in enumerate(logs.items()):
        color = f"C{k % 10}"
        train, valid = events.get("train", []), events.get("valid", [])
        if train:
            minutes = [r["elapsed_s"] / 60 for r in train]
            ax_loss.plot(minutes, [r["loss"] for r in train], color=color, lw=1.2, label=f"{run} train")
            ax_lr.plot(minutes, [r["lr"] for r in train], color=color, lw=1.2, label=run)
        if valid:
            ax_loss.plot([r["elapsed_s"] / 60 for r in valid], [r["valid_loss"] for r in valid], "o",
                         color=color, ms=5, label=f"{run} valid")
        if not train and not valid:
            print(f"{run}: its pretraining log has no train or valid events; nothing to plot", flush=True)
    ax_loss.set(xlabel="elapsed minutes", ylabel="masked-LM loss", title="Pretraining loss")
    ax_lr.set(xlabel="elapsed minutes", ylabel="learning rate", title="Learning rate")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-logs", nargs="+", type=Path, default=[], help="results/runs/<run>/pretrain_log.jsonl")
    parser.add_argument("--best", nargs="*", type=Path, default=[], help="results/runs/<run>/glue/<task>/best.json")
    parser.add_argument("--table-out", required=True, type=Path)
    parser.add_argument("--curves-out", required=True, type=Path)
    args = parser.parse_args(argv)

    logs = {run_of_log(p): read_log(p) for p in args.pretrain_logs}
    bests = {}
    for path in args.best:
        best = read_best(path)
        bests.setdefault(run_of_best(path), {})[best["task"]] = best
    glue_data.write_atomic(args.table_out, markdown(logs, bests) + "\n")
    glue_data.write_atomic(args.curves_out, curves_png(logs))
    print(f"wrote {args.table_out} ({len(bests)} runs with GLUE results) and {args.curves_out} "
          f"({len(logs)} pretraining logs)", flush=True)


if __name__ == "__main__":
    main()
