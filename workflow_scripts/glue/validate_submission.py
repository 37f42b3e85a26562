"""Check a GLUE submission.zip the way the GLUE server will read it, listing every problem.

    validate-submission path/to/submission.zip [--glue-dir DIR] [--official]

Checks: exactly the 11 files at the zip root (no folder prefix, nothing extra), each with the
header `index<TAB>prediction`, indices 0..n-1 in order, every prediction in its task's label
vocabulary (STS-B: a number in [0, 5]). Row counts: with --glue-dir, equal to that folder's
test files; with --official, or by default when any file has its official count (so the zip
looks like a real submission), equal to GLUE's official test-set sizes.
Exit 0 and "ok" when it passes; exit 1 after listing every problem, each naming file and row.
"""
import argparse
import math
import sys
import zipfile
from pathlib import Path

from workflow_scripts.glue import readers, tasks
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors

HEADER = "index\tprediction"
MAX_ROW_PROBLEMS = 10  # per file: a wholly wrong QQP.tsv would otherwise print 390k lines


def check_rows(name: str, text: str) -> tuple:
    """(problems, number of rows) for one submission file's text."""
    task = tasks.TASKS[tasks.SUBMISSION_FILES[name].task]
    lines = text.splitlines()
    if not lines:
        return [f"{name}: empty file (expected the header {HEADER!r} and one row per test example)"], 0
    problems = []
    if lines[0] != HEADER:
        problems.append(f"{name}, line 1: header {lines[0]!r}, expected {HEADER!r}")
    allowed = "a number in [0, 5]" if task.is_regression else " / ".join(task.labels)
    row_problems = []
    for row, line in enumerate(lines[1:]):
        where = f"{name}, row {row} (line {row + 2})"
        fields = line.split("\t")
        if len(fields) != 2:
            row_problems.append(f"{where}: {len(fields)} tab-separated fields, expected 2 (index, prediction)")
            continue
        index, prediction = fields
        if index != str(row):
            row_problems.append(f"{where}: index {index!r}, expected {row} (indices run 0..n-1 in test-file order)")
        if task.is_regression:
            try:
                value = float(prediction)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and 0.0 <= value <= 5.0):
                row_problems.append(f"{where}: prediction {prediction!r} is not {allowed}")
        elif prediction not in task.labels:
            row_problems.append(f"{where}: prediction {prediction!r} is not one of {allowed}")
    if len(row_problems) > MAX_ROW_PROBLEMS:
        row_problems = row_problems[:MAX_ROW_PROBLEMS] + [
            f"{name}: ... and {len(row_problems) - MAX_ROW_PROBLEMS} more row problems"]
    return problems + row_problems, len(lines) - 1


def expected_counts(glue_dir: Path) -> tuple:
    """({file name: test rows in glue_dir}, problems reading them)."""
    counts, problems = {}, []
    for name, (task_name, split_name, _) in tasks.SUBMISSION_FILES.items():
        task = tasks.TASKS[task_name]
        split = next(s for s in task.test if s.name == split_name)
        try:
            counts[name] = len(readers.read_dir_split(task, split, glue_dir))
        except BadInput as e:
            problems.append(f"--glue-dir: {e}")
    return counts, problems


def read_zip(zip_path: Path) -> tuple:
    """(problems, {submission file name: text, None where not UTF-8}) of the zip's entries;
    the texts are None where the zip cannot be opened at all."""
    if not zip_path.is_file():
        return [f"{zip_path}: file not found"], None
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as e:
        return [f"{zip_path}: not a zip file ({e})"], None
    problems, texts = [], {}
    with zf:
        for info in zf.infolist():
            name = info.filename
            base = name.rstrip("/").rsplit("/", 1)[-1]
            if info.is_dir():
                problems.append(f"{zip_path}: holds a folder {name!r}; the server wants the 11 files at the zip root")
            elif "/" in name and base in tasks.SUBMISSION_FILES:
                problems.append(f"{zip_path}: {name} is inside folder {name.rsplit('/', 1)[0]!r}; "
                                f"the server wants {base} at the zip root (zip the files, not their folder)")
            elif name not in tasks.SUBMISSION_FILES:
                problems.append(f"{zip_path}: unexpected file {name!r} (the server wants exactly "
                                f"{', '.join(tasks.SUBMISSION_FILES)})")
            else:
                try:
                    texts[name] = zf.read(name).decode("utf-8")
                except UnicodeDecodeError as e:
                    problems.append(f"{name}: not UTF-8 text ({e})")
                    texts[name] = None
    missing = [n for n in tasks.SUBMISSION_FILES if n not in texts]
    if missing:
        problems.append(f"{zip_path}: missing {', '.join(missing)} at the zip root")
    return problems, texts


def official_problems(rows: dict, official) -> tuple:
    """(problems, notes) of the row counts against GLUE's official test-set sizes.
    official: True enforce, False skip, None: enforce when any file has its official count."""
    notes = []
    if official is None:
        official = any(tasks.SUBMISSION_FILES[name].official_rows == n for name, n in rows.items())
        if not official and rows:
            notes.append("row counts are not GLUE's official test-set sizes (smoke or partial data): "
                         "not checked against them (--official to insist)")
    if not official:
        return [], notes
    return [f"{name}: {n} rows, but GLUE's official test set has {tasks.SUBMISSION_FILES[name].official_rows}"
            for name, n in rows.items() if n != tasks.SUBMISSION_FILES[name].official_rows], notes


def validate(zip_path, glue_dir=None, official=None) -> tuple:
    """(problems, notes) for a submission zip. official: True enforce, False skip, None auto."""
    zip_path = Path(zip_path)
    problems, texts = read_zip(zip_path)
    if texts is None:
        return problems, []
    rows = {}
    for name, text in texts.items():
        if text is not None:
            file_problems, rows[name] = check_rows(name, text)
            problems += file_problems
    if glue_dir is not None:
        counts, count_problems = expected_counts(Path(glue_dir))
        problems += count_problems
        problems += [f"{name}: {n} rows, but the test file in {glue_dir} has {counts[name]}"
                     for name, n in rows.items() if name in counts and n != counts[name]]
    more, notes = official_problems(rows, official)
    return problems + more, notes


@one_line_errors
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path, help="the submission.zip to check")
    parser.add_argument("--glue-dir", type=Path, help="a GLUE-layout folder: row counts must equal its test files'")
    parser.add_argument("--official", action="store_true", default=None,
                        help="row counts must equal GLUE's official test-set sizes")
    args = parser.parse_args(argv)
    problems, notes = validate(args.zip, args.glue_dir, args.official)
    for note in notes:
        print(f"note: {note}")
    if problems:
        for p in problems:
            print(p)
        print(f"FAILED: {len(problems)} problem(s) in {args.zip}")
        return 1
    print(f"ok: {args.zip} holds the 11 GLUE submission files, well formed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
