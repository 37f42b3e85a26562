"""Faults: kill -9 of the whole Snakemake in each stage, then the same command; two runs at once.

One copy of the repo is run with tests/configs/faults-tiny.yaml (deterministic: pretraining stops
after a fixed number of steps) and killed with SIGKILL to its whole process group once in each stage
(text extraction, samples, pretraining, fine-tuning, submission), the same command started again each
time. Its outputs then equal those of the uninterrupted run of the same config (the `tiny_run`
fixture): text parts byte for byte, every shard dataset, the model's weights, the zip's contents.
Neither `--unlock` nor `--rerun-incomplete` is given (nor the local profile, which sets the latter): a
lock whose holder is gone is removed at parse time (workflow_scripts/stale_lock.py), and every output
is written atomically, so no killed job leaves a file Snakemake would take for incomplete.
"""
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.helpers.workflow import FAULTS_ARGS, FAULTS_RUN, copy_repo, snakemake, snakemake_env
from workflow_scripts.glue.tasks import TASKS

pytestmark = pytest.mark.workflow

# Where each stage's job shows that it runs: its hidden temporary, or (pretraining) its first checkpoint.
STAGES = [
    ("text extraction", "results/text/**/.part_*.tmp-*"),
    ("samples", "results/samples/**/.*.tmp-*"),
    ("pretraining", "results/runs/demo/state/*/latest.json"),
    ("fine-tuning", "logs/finetune/demo/*/*.log"),
    ("submission", "logs/submission/demo.log"),
]


# The run killed: the tiny run's command without the profile, whose rerun-incomplete would hide
# whether a kill leaves files Snakemake takes for incomplete.
KILLED_RUN = [a for a in FAULTS_RUN if a not in ("--profile", "profiles/local")]


def start(workdir: Path) -> subprocess.Popen:
    """The command, in its own process group (so killpg takes Snakemake and every job)."""
    return subprocess.Popen(KILLED_RUN, cwd=workdir, env=snakemake_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for(workdir: Path, pattern: str, proc: subprocess.Popen, timeout=300) -> None:
    deadline = time.time() + timeout
    while not list(workdir.glob(pattern)):
        assert proc.poll() is None, f"the run ended before {pattern} appeared:\n{proc.stdout.read()[-3000:]}"
        assert time.time() < deadline, f"no {pattern} after {timeout} s"
        time.sleep(0.005)


def datasets(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in f}


def zip_contents(path: Path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def assert_same_outputs(got: Path, want: Path) -> None:
    texts = sorted(p.relative_to(want) for p in want.glob("results/text/**/*.txt"))
    assert texts and texts == sorted(p.relative_to(got) for p in got.glob("results/text/**/*.txt"))
    assert all((got / t).read_bytes() == (want / t).read_bytes() for t in texts)
    shards = sorted(p.relative_to(want) for p in want.glob("results/samples/**/*.h5"))
    assert shards and shards == sorted(p.relative_to(got) for p in got.glob("results/samples/**/*.h5"))
    for shard in shards:
        mine, theirs = datasets(got / shard), datasets(want / shard)
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine), shard
    weights = "results/runs/demo/model/model.safetensors"
    assert (got / weights).read_bytes() == (want / weights).read_bytes(), "the resumed model differs"
    assert zip_contents(got / "submission.zip") == zip_contents(want / "submission.zip")


def test_a_sigkill_in_each_stage_then_the_same_command_finishes_as_if_never_killed(tiny_run, tmp_path):
    workdir = copy_repo(tiny_run.repo, tmp_path / "wd", tiny_run.resources)
    said = []
    for stage, running in STAGES:
        proc = start(workdir)
        wait_for(workdir, running, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        said.append(proc.communicate(timeout=60)[0])
        assert proc.returncode == -signal.SIGKILL, f"{stage}: the run ended before it was killed"
        assert list((workdir / ".snakemake" / "locks").glob("*.lock")), f"{stage}: the kill left no lock"
    final = start(workdir)
    said.append(final.communicate(timeout=600)[0])
    assert final.returncode == 0, said[-1][-4000:]
    # Each start after a kill removed the killed run's lock itself, and asked for nothing more.
    for stage, out in zip([s for s, _ in STAGES], said[1:], strict=True):
        assert "Removed the lock of Snakemake pid" in out, f"after the {stage} kill:\n{out[-3000:]}"
        assert "LockException" not in out and "IncompleteFilesException" not in out, out[-3000:]
    log = (workdir / "results/runs/demo/pretrain_log.jsonl").read_text()
    assert '"event": "resume"' in log, "pretraining started over instead of resuming its state"
    assert not [p for p in workdir.rglob(".*.tmp-*")], "a killed job's temporaries were left behind"
    assert_same_outputs(workdir, tiny_run.workdir)


def test_a_second_run_in_the_same_folder_refuses_and_the_first_finishes(tiny_run):
    """The reference run had the same command started beside it, in its folder, while it ran."""
    second = tiny_run.second
    assert second.returncode != 0
    said = second.stdout + second.stderr
    assert "Another Snakemake (pid " in said and "do not use --unlock while it runs" in said, said[-3000:]
    assert "LockException" in said or "Directory cannot be locked" in said, said[-3000:]
    assert "Removed the lock" not in second.stdout + second.stderr, "the live run's lock was taken for stale"
    zip_names = set(zip_contents(tiny_run.workdir / "submission.zip"))
    assert zip_names == {f"{t}.tsv" for t in TASKS if t != "MNLI"} | {"MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"}
    check = subprocess.run([sys.executable, "-m", "workflow_scripts.glue.validate_submission", "submission.zip"],
                           cwd=tiny_run.workdir, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Nothing to be done" in snakemake(tiny_run.workdir, "-n", *FAULTS_ARGS).stdout
