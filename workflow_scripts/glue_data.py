"""GLUE tasks: the task table, and readers for a GLUE-layout folder or the Hugging Face hub copy.

Both sources yield the same internal examples: Example(text_a, text_b, label, index) where
`label` is an id into the task's `labels` (the GLUE server's vocabulary, listed in the hub's
label-id order, so a hub label id needs no mapping) or a float for STS-B, and None on test
splits. `index` is the row position on train/dev and the test file's own index column on test.
Light module (no heavy imports at import time): finetune, submission and the validator share it.
"""
import csv
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

# MNLI and QQP hold fields longer than csv's 128 KiB default only in corrupt files, but a
# real file must never fail on a limit we chose; quoting is off, so fields end at tabs.
csv.field_size_limit(sys.maxsize)


class Example(NamedTuple):
    text_a: str
    text_b: str | None
    label: int | float | None
    index: int


@dataclass(frozen=True)
class Split:
    name: str        # the name predictions and metrics use: train, dev, dev_matched, test, diagnostic, ...
    path: str        # file relative to the GLUE folder
    hub_config: str  # nyu-mll/glue config holding this split
    hub_split: str

    @property
    def labelled(self) -> bool:
        """Train and dev carry labels; test splits and the AX diagnostic set do not."""
        return not (self.name.startswith("test") or self.name == "diagnostic")


@dataclass(frozen=True)
class Task:
    name: str
    hub_config: str
    labels: tuple | None          # server vocabulary in hub label-id order; None: regression (STS-B)
    metrics: tuple                # metric names averaged into the task's GLUE score
    text_a: str                   # GLUE-folder column names (train/dev and test share them)
    text_b: str | None
    label: str
    hub_text_a: str
    hub_text_b: str | None
    dev: tuple                    # Splits with labels, scored
    test: tuple                   # Splits without labels, predicted
    test_index: str = "index"     # the test file's index column
    no_header: tuple | None = None  # column names of header-less train/dev files (CoLA)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    def train_split(self) -> Split:
        return Split("train", f"{self.name}/train.tsv", self.hub_config, "train")


def _one(task: str, hub: str, dev: str = "dev.tsv", test: str = "test.tsv") -> tuple:
    return ((Split("dev", f"{task}/{dev}", hub, "validation"),),
            (Split("test", f"{task}/{test}", hub, "test"),))


BINARY = ("0", "1")
NLI3 = ("entailment", "neutral", "contradiction")
NLI2 = ("entailment", "not_entailment")

TASKS = {t.name: t for t in [
    Task("CoLA", "cola", BINARY, ("mcc",), "sentence", None, "label", "sentence", None, *_one("CoLA", "cola"),
         no_header=("source", "label", "original_annotation", "sentence")),
    Task("SST-2", "sst2", BINARY, ("accuracy",), "sentence", None, "label", "sentence", None, *_one("SST-2", "sst2")),
    Task("MRPC", "mrpc", BINARY, ("f1", "accuracy"), "#1 String", "#2 String", "Quality",
         "sentence1", "sentence2", *_one("MRPC", "mrpc")),
    Task("STS-B", "stsb", None, ("pearson", "spearman"), "sentence1", "sentence2", "score",
         "sentence1", "sentence2", *_one("STS-B", "stsb")),
    Task("QQP", "qqp", BINARY, ("accuracy", "f1"), "question1", "question2", "is_duplicate",
         "question1", "question2", *_one("QQP", "qqp"), test_index="id"),
    Task("MNLI", "mnli", NLI3, ("accuracy",), "sentence1", "sentence2", "gold_label", "premise", "hypothesis",
         (Split("dev_matched", "MNLI/dev_matched.tsv", "mnli", "validation_matched"),
          Split("dev_mismatched", "MNLI/dev_mismatched.tsv", "mnli", "validation_mismatched")),
         # AX (the diagnostic set) has no training data: GLUE scores it with the MNLI model.
         (Split("test_matched", "MNLI/test_matched.tsv", "mnli", "test_matched"),
          Split("test_mismatched", "MNLI/test_mismatched.tsv", "mnli", "test_mismatched"),
          Split("diagnostic", "diagnostic/diagnostic.tsv", "ax", "test"))),
    Task("QNLI", "qnli", NLI2, ("accuracy",), "question", "sentence", "label", "question", "sentence",
         *_one("QNLI", "qnli")),
    Task("RTE", "rte", NLI2, ("accuracy",), "sentence1", "sentence2", "label", "sentence1", "sentence2",
         *_one("RTE", "rte")),
    Task("WNLI", "wnli", BINARY, ("accuracy",), "sentence1", "sentence2", "label", "sentence1", "sentence2",
         *_one("WNLI", "wnli")),
]}

def split_files(task: Task) -> list:
    """Every file of the task in a GLUE-layout folder, relative to it (MNLI's include AX's diagnostic.tsv)."""
    return [s.path for s in (task.train_split(), *task.dev, *task.test)]


# The submission's 11 files: file name -> (task whose predictions fill it, prediction split).
SUBMISSION_FILES = {
    "CoLA.tsv": ("CoLA", "test"), "SST-2.tsv": ("SST-2", "test"), "MRPC.tsv": ("MRPC", "test"),
    "STS-B.tsv": ("STS-B", "test"), "QQP.tsv": ("QQP", "test"), "MNLI-m.tsv": ("MNLI", "test_matched"),
    "MNLI-mm.tsv": ("MNLI", "test_mismatched"), "QNLI.tsv": ("QNLI", "test"), "RTE.tsv": ("RTE", "test"),
    "WNLI.tsv": ("WNLI", "test"), "AX.tsv": ("MNLI", "diagnostic"),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise SystemExit(f"unknown GLUE task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


# ---- the standard GLUE folder -------------------------------------------------------------

def read_tsv(path: Path, names: tuple | None = None):
    """Yield (line number, {column: value}, header) from a GLUE TSV; quoting off (MNLI/QQP hold bare quotes).

    `names` gives the columns of a header-less file (CoLA train/dev). Rows with fewer fields
    than the header come back with the missing columns absent, for the caller to judge.
    """
    if not path.is_file():
        raise SystemExit(f"{path}: file not found (glue.path must be a folder in the standard GLUE layout)")
    # utf-8-sig: some distributed copies of MRPC start with a byte-order mark before "Quality".
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = names
        if header is None:
            header = next(reader, None)
            if header is None:
                raise SystemExit(f"{path}: empty file (expected a header line)")
        for row in reader:
            if row:
                yield reader.line_num, dict(zip(header, row)), header


def _parse_label(task: Task, value: str, where: str):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise SystemExit(f"{where}: {task.label} {value!r} is not a number") from None
    if value not in task.labels:
        raise SystemExit(f"{where}: {task.label} {value!r} is not one of {', '.join(task.labels)}")
    return task.labels.index(value)


def read_dir_split(task: Task, split: Split, root) -> list:
    """One split of a GLUE-layout folder as Examples."""
    path = Path(root) / split.path
    labelled = split.labelled
    names = task.no_header if labelled else None
    # AX is scored with the MNLI model but keeps its own (RTE-style) column names.
    text_a, text_b = ("sentence1", "sentence2") if split.name == "diagnostic" else (task.text_a, task.text_b)
    needed = [c for c in (text_a, text_b) if c] + ([task.label] if labelled else [task.test_index])
    examples, skipped, checked = [], 0, False
    for line, row, header in read_tsv(path, names):
        if not checked:
            missing = [c for c in needed if c not in header]
            if missing:
                raise SystemExit(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
            checked = True
        if any(c not in row for c in needed):
            # The real QQP train file holds a few rows with missing fields; every reader of
            # GLUE skips them. Dev and test rows must all be there (they are scored / submitted).
            if split.name == "train":
                skipped += 1
                continue
            raise SystemExit(f"{path}, line {line}: {len(row)} fields, expected {len(header)}")
        where = f"{path}, line {line}"
        if labelled:
            label, index = _parse_label(task, row[task.label], where), len(examples)
        else:
            label = None
            try:
                index = int(row[task.test_index])
            except ValueError:
                raise SystemExit(f"{where}: {task.test_index} {row[task.test_index]!r} is not an integer") from None
        examples.append(Example(row[text_a], row[text_b] if text_b else None, label, index))
    if skipped:
        print(f"{path}: skipped {skipped} rows with missing fields", flush=True)
    if not examples:
        raise SystemExit(f"{path}: no examples")
    return examples


# ---- the Hugging Face hub copy (nyu-mll/glue) -----------------------------------------------

@functools.lru_cache(maxsize=None)
def _hub_dataset(name: str, config: str, cache_dir: str | None = None):
    import datasets

    # A local folder laid out like the hub repo: datasets' cache key for it can miss edits
    # to the files (seen with datasets 5.2), so rebuild its Arrow cache on every load.
    mode = "force_redownload" if Path(name).expanduser().is_dir() else None
    try:
        return datasets.load_dataset(name, config, download_mode=mode, cache_dir=cache_dir)
    except Exception as e:  # offline, unknown name or config: say which, in one line
        raise SystemExit(f"glue.name={name!r}: cannot load config {config!r} ({type(e).__name__}: {e})") from None


def read_hub_split(task: Task, split: Split, name: str, cache_dir: str | None = None) -> list:
    """One split of the hub dataset (or a local folder laid out like the hub repo) as Examples.

    `cache_dir`: datasets' cache folder (None: the Hugging Face default).
    """
    dd = _hub_dataset(name, split.hub_config, cache_dir)
    if split.hub_split not in dd:
        raise SystemExit(f"{name} ({split.hub_config}): no split {split.hub_split!r} (has: {', '.join(dd)})")
    ds = dd[split.hub_split]
    where = f"{name} ({split.hub_config}/{split.hub_split})"
    text_a, text_b = ("premise", "hypothesis") if split.name == "diagnostic" else (task.hub_text_a, task.hub_text_b)
    labelled = split.labelled
    needed = [c for c in (text_a, text_b) if c] + ["label" if labelled else "idx"]
    for c in needed:
        if c not in ds.column_names:
            raise SystemExit(f"{where}: no column {c!r} (columns: {', '.join(ds.column_names)})")
    # Whole columns as lists: per-row indexing of a datasets Column is ~50x slower (QQP: 364k rows).
    cols = {c: ds[c][:] for c in needed}
    for c, values in cols.items():
        # A repo whose README declares the features fills an absent column with nulls.
        nulls = [i for i, v in enumerate(values) if v is None]
        if nulls and len(nulls) == len(values):
            raise SystemExit(f"{where}: no column {c!r} (every value is null)")
        if nulls:
            raise SystemExit(f"{where}, row {nulls[0]}: {c!r} is null")
    examples = []
    for i in range(len(ds)):
        if labelled:
            label = cols["label"][i]
            if task.is_regression:
                label = float(label)
            elif not 0 <= label < task.num_labels:
                raise SystemExit(f"{where}, row {i}: label {label} is not a label id 0..{task.num_labels - 1}")
            index = i
        else:
            label, index = None, int(cols["idx"][i])
        examples.append(Example(cols[text_a][i], cols[text_b][i] if text_b else None, label, index))
    if not examples:
        raise SystemExit(f"{where}: no examples")
    return examples


def read_split(task: Task, split: Split, glue: dict) -> list:
    """Examples of one split from the configured source (config `glue:`)."""
    if glue["source"] == "dir":
        return read_dir_split(task, split, glue["path"])
    if glue["source"] == "huggingface":
        return read_hub_split(task, split, glue.get("name", "nyu-mll/glue"), glue.get("cache_dir"))
    raise SystemExit(f"glue.source={glue['source']!r}: expected dir or huggingface")

