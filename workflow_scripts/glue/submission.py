"""Best trials' test predictions -> the GLUE server's 11 TSV files and a validated submission.zip.

    python -m workflow_scripts.glue.submission --predictions .../glue/{CoLA,...,WNLI}/best_predictions.tsv \\
        --out-dir results/runs/demo/submission --zip results/runs/demo/submission.zip

Each predictions file's task is its parent folder's name; its rows are `split, index,
prediction` (MNLI's split names pick MNLI-m, MNLI-mm and AX). The zip holds the files at its
root with fixed timestamps (same predictions, same bytes) and is validated before it is
renamed into place, so a submission.zip on disk has always passed the validator.
"""
import argparse
import csv
import zipfile
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.glue import tasks, validate_submission
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors

PRED_HEADER = ["split", "index", "prediction"]


def read_predictions(path: Path) -> dict:
    """{split: [(index, prediction), ...]} in file order."""
    if not path.is_file():
        raise BadInput(f"{path}: file not found")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header != PRED_HEADER:
            raise BadInput(f"{path}, line 1: header {header!r}, expected {'<TAB>'.join(PRED_HEADER)}")
        splits = {}
        for row in reader:
            if len(row) != 3:
                raise BadInput(f"{path}, line {reader.line_num}: {len(row)} fields, expected 3 ({', '.join(PRED_HEADER)})")
            splits.setdefault(row[0], []).append((row[1], row[2]))
    return splits


def submission_files(paths: list) -> dict:
    """{submission file name: TSV text} from the nine tasks' best_predictions.tsv."""
    by_task = {}
    for path in paths:
        task = path.parent.name
        if task not in tasks.TASKS:
            raise BadInput(f"{path}: parent folder {task!r} is not a GLUE task ({', '.join(tasks.TASKS)})")
        if task in by_task:
            raise BadInput(f"{path}: a second predictions file for {task} (first: {by_task[task]})")
        by_task[task] = path
    missing = [t for t in tasks.TASKS if t not in by_task]
    if missing:
        raise BadInput(f"--predictions lacks {', '.join(missing)}: a GLUE submission needs all nine tasks")
    predictions = {task: read_predictions(path) for task, path in by_task.items()}
    files = {}
    for name, (task, split, _) in tasks.SUBMISSION_FILES.items():
        if split not in predictions[task]:
            raise BadInput(f"{by_task[task]}: no rows for split {split!r} (needed for {name})")
        files[name] = "index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in predictions[task][split])
    return files


def write_zip(path: Path, files: dict) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: reproducible bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, text)


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True, nargs="+", type=Path,
                        help="the nine tasks' best_predictions.tsv; task = parent folder name")
    parser.add_argument("--out-dir", required=True, type=Path, help="folder for the 11 TSV files")
    parser.add_argument("--zip", required=True, type=Path, help="the submission.zip to write")
    args = parser.parse_args(argv)

    files = submission_files(args.predictions)
    # The zip is validated before either output is renamed into place (the folder first, the zip last).
    with atomic.replacing(args.zip) as tmp_zip, atomic.replacing_dir(args.out_dir) as tmp_dir:
        for name, text in files.items():
            (tmp_dir / name).write_text(text, encoding="utf-8")
        write_zip(tmp_zip, files)
        problems, notes = validate_submission.validate(tmp_zip)
        if problems:
            raise BadInput(f"the submission fails validation ({len(problems)} problems), nothing written:\n  "
                             + "\n  ".join(problems))
        for note in notes:
            print(f"note: {note}")
    rows = {name: text.count("\n") - 1 for name, text in files.items()}
    print(f"wrote {args.zip} and {args.out_dir}/: " + ", ".join(f"{n} {r}" for n, r in rows.items()), flush=True)


if __name__ == "__main__":
    main()
