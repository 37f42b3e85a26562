"""Pick a task's best fine-tuning trial: best mean dev score over seeds, then its best seed.

    python -m workflow_scripts.glue.select_trial --task CoLA --metrics <every trial's dev_metrics.json> \\
        --best-out .../best.json --predictions-out .../best_predictions.tsv [--model-out .../best_model] \\
        [--select-by mean|first_metric]

A trial's selection score (config finetune.select_by): `mean`, the mean of the task's dev metrics
(the GLUE score, finetune's `score`; the default), or `first_metric`, the one metric ExtremeBERT's
summarize_val.sh sorts its trials by (FIRST_METRIC: MRPC and QQP F1, STS-B Pearson, CoLA MCC, MNLI
matched accuracy, the others accuracy). Trials are grouped by (lr, batch_size, epochs); the group
with the highest mean selection score over its seeds wins (ties: the first group in --metrics
order), and within it the seed with the highest selection score (ties: the first). That trial's sibling test_predictions.tsv is copied to --predictions-out.
The trial's name is its folder's name (e.g. lr3e-05_bs32_ep3_seed42). With --model-out, the
chosen trial's kept model (its sibling model/ folder, see finetune --model-out) is exported
there, for the STILTs tasks to start from: file by file as hard links where the file system
allows (no second copy of the weights on disk), else copies.
"""
import argparse
import math
import os
import shutil
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.glue import tasks
from workflow_scripts.cli import one_line_errors, read_record
from workflow_scripts.errors import BadInput

GROUP_KEYS = ("lr", "batch_size", "epochs")
SELECT_BY = ("mean", "first_metric")
# The dev metric ExtremeBERT sorts each task's trials by (the first column of summarize_val.sh),
# as named in finetune's metrics record; tasks not listed: accuracy.
FIRST_METRIC = {"CoLA": "mcc", "MRPC": "f1", "STS-B": "pearson", "QQP": "f1", "MNLI": "accuracy_matched"}


def load_trial(path: Path, task: str) -> dict:
    """A trial's dev_metrics.json (finetune's record), checked for what selection reads."""
    record = read_record(path, ("task", "hparams", "score", "metrics"))
    for key in GROUP_KEYS + ("seed",):
        if key not in record["hparams"]:
            raise BadInput(f"{path}: hparams lacks {key!r}")
    if record["task"] != task:
        raise BadInput(f"{path}: a {record['task']} trial, but --task is {task}")
    if not isinstance(record["score"], (int, float)) or not math.isfinite(record["score"]):
        raise BadInput(f"{path}: score {record['score']!r} is not a finite number")
    return record


def selection_score(record: dict, select_by: str = "mean") -> float:
    """The number a trial is ranked by: its GLUE score (mean of its metrics) or ExtremeBERT's metric."""
    if select_by == "mean":
        return record["score"]
    name = FIRST_METRIC.get(record["task"], "accuracy")
    value = record["metrics"].get(name)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInput(f"{record['task']} trial: metrics lack a finite {name!r} for select_by first_metric "
                       f"(it has {', '.join(record['metrics']) or 'none'})")
    return value


def select(records: list, select_by: str = "mean") -> tuple:
    """(index of the chosen record, its group's mean selection score) for records in --metrics order."""
    scores = [selection_score(r, select_by) for r in records]
    groups = {}
    for i, r in enumerate(records):
        groups.setdefault(tuple(r["hparams"][k] for k in GROUP_KEYS), []).append(i)
    means = {key: sum(scores[i] for i in ids) / len(ids) for key, ids in groups.items()}
    best_group = max(groups, key=lambda key: means[key])  # max keeps the first of equals
    chosen = max(groups[best_group], key=lambda i: scores[i])
    return chosen, means[best_group]


def link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dst)


def export_model(src: Path, out: Path) -> None:
    """The chosen trial's model folder -> `out`, via a temp folder and a rename (never half a model)."""
    if not (src / "config.json").is_file():
        raise BadInput(f"{src}: no fine-tuned model here (config.json missing; its trial ran without --model-out?)")
    with atomic.replacing_dir(out) as tmp:
        # Dot files are Snakemake's bookkeeping (.snakemake_timestamp), not the model's: a shared
        # hard link there would let Snakemake's touch of one folder date the other.
        shutil.copytree(src, tmp, dirs_exist_ok=True, copy_function=link_or_copy,
                        ignore=shutil.ignore_patterns(".*"))


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=list(tasks.TASKS))
    parser.add_argument("--metrics", required=True, nargs="+", type=Path, help="every trial's dev_metrics.json")
    parser.add_argument("--best-out", required=True, type=Path)
    parser.add_argument("--predictions-out", required=True, type=Path)
    parser.add_argument("--model-out", type=Path, help="export the chosen trial's kept model here (MNLI, for STILTs)")
    parser.add_argument("--select-by", choices=SELECT_BY, default="mean",
                        help="rank trials by the mean of the task's metrics or by ExtremeBERT's first metric")
    args = parser.parse_args(argv)

    records = [load_trial(p, args.task) for p in args.metrics]
    chosen, group_score = select(records, args.select_by)
    source = args.metrics[chosen].parent / "test_predictions.tsv"
    if not source.is_file():
        raise BadInput(f"{source}: file not found (the chosen trial's test predictions)")
    trials = [{"trial": p.parent.name, "hparams": r["hparams"], "score": r["score"], "metrics": r["metrics"],
               "chosen": i == chosen, "device_hours": (r.get("speed") or {}).get("device_hours")}   # for the report
              for i, (p, r) in enumerate(zip(args.metrics, records, strict=True))]
    group = [r for r in records if all(r["hparams"][k] == records[chosen]["hparams"][k] for k in GROUP_KEYS)]
    # score: the chosen group's GLUE score (the report's table) whatever ranked it; selection_score: what did.
    best = {"task": args.task, "chosen": args.metrics[chosen].parent.name,
            "chosen_hparams": records[chosen]["hparams"], "score": sum(r["score"] for r in group) / len(group),
            "chosen_trial_score": records[chosen]["score"],
            "select_by": args.select_by, "selection_score": group_score,
            # The task the chosen trial started from (MNLI under STILTs; None: the pre-trained model).
            "init_task": records[chosen].get("init_task"), "trials": trials}
    if args.model_out:
        export_model(args.metrics[chosen].parent / "model", args.model_out)
        print(f"{args.task}: exported {args.metrics[chosen].parent / 'model'} to {args.model_out}", flush=True)
    atomic.write_bytes(args.predictions_out, source.read_bytes())
    atomic.write_json(args.best_out, best, indent=2)
    print(f"{args.task}: chose {best['chosen']} by {args.select_by} (group mean {group_score:.2f} over "
          f"{len(group)} seeds, trial {selection_score(records[chosen], args.select_by):.2f}) of {len(records)} trials",
          flush=True)


if __name__ == "__main__":
    main()
