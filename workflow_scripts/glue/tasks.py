"""GLUE tasks: the one task table (rules/common.smk, the schema's task enums and the submission
read it), the submission's files, and readers for a GLUE-layout folder or the Hugging Face hub copy.

Both sources yield the same internal examples: Example(text_a, text_b, label, index) where
`label` is an id into the task's `labels` (the GLUE server's vocabulary, listed in the hub's
label-id order, so a hub label id needs no mapping) or a float for STS-B, and None on test
splits. `index` is the row position on train/dev and the test file's own index column on test.
Light module (no heavy imports at import time): finetune, submission and the validator share it.
"""
import csv
import sys
from dataclasses import dataclass
from typing import NamedTuple
from workflow_scripts.errors import BadInput

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


class SubmissionFile(NamedTuple):
    task: str           # the task whose predictions fill it
    split: str          # its prediction split
    official_rows: int  # rows in GLUE's official test set


# The submission's 11 files, by file name.
SUBMISSION_FILES = {
    "CoLA.tsv": SubmissionFile("CoLA", "test", 1063), "SST-2.tsv": SubmissionFile("SST-2", "test", 1821),
    "MRPC.tsv": SubmissionFile("MRPC", "test", 1725), "STS-B.tsv": SubmissionFile("STS-B", "test", 1379),
    "QQP.tsv": SubmissionFile("QQP", "test", 390965), "MNLI-m.tsv": SubmissionFile("MNLI", "test_matched", 9796),
    "MNLI-mm.tsv": SubmissionFile("MNLI", "test_mismatched", 9847), "QNLI.tsv": SubmissionFile("QNLI", "test", 5740),
    "RTE.tsv": SubmissionFile("RTE", "test", 3000), "WNLI.tsv": SubmissionFile("WNLI", "test", 146),
    "AX.tsv": SubmissionFile("MNLI", "diagnostic", 1104),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise BadInput(f"unknown GLUE task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


# ---- the standard GLUE folder -------------------------------------------------------------
