"""Faults and bad inputs: each stops in one line before anything made is touched, and a kill is recovered.

Dry runs of a copied demo with a broken input (a corpus path, a tokenizer folder without its
vocabulary, a GLUE folder or one task's file that is missing) stop at parse time; a pretraining
run shorter than checkpoint_interval_minutes still checkpoints, so a SIGKILL resumes it; a
SIGKILL of Snakemake itself leaves its lock, and the README's recovery (`snakemake --unlock`,
then the same command) works as written and leaves no stale temporaries.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.pretrain_run import command, events, recipe, resumed, run
from tests.helpers.workflow import copy_repo, snakemake, write_config
from workflow_scripts.glue.tasks import TASKS
from workflow_scripts.pretrain import state


def test_checkpoint_cadence_is_the_interval_or_a_tenth_of_the_budget():
    demo = {"checkpoint_interval_minutes": 30, "total_training_time": 0.02}        # 72 s of training
    assert state.checkpoint_interval_s(demo) == pytest.approx(7.2)
    assert state.checkpoint_interval_s({**demo, "total_training_time": 24}) == 30 * 60
    assert state.checkpoint_interval_s({**demo, "checkpoint_interval_minutes": 0.05}) == pytest.approx(3.0)
    # max_steps: its time is not known beforehand; the budget still bounds the cadence
    assert state.checkpoint_interval_s({**demo, "total_training_time": 1.0, "max_steps": 3}) == 6 * 60


# --- parse-time checks: dry runs of the demo with one input broken ---------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory, repo_root, resources):
    """A copy of the repo with a finished-looking text part, which no failed check may touch."""
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("bad_inputs"), resources)
    made = workdir / "results" / "text" / "wiki" / "part_0.txt"
    made.parent.mkdir(parents=True)
    made.write_text("A sentence made before.\n\n")
    return workdir


def tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def stops_in_one_line(workdir: Path, override: dict, *named: str) -> str:
    """A dry run with `override` as --configfile: exit non-zero, one line on stderr naming `named`,
    no traceback, results/ unchanged."""
    before = tree_hashes(workdir / "results")
    edit = write_config(workdir / "edit.yaml", override)
    proc = snakemake(workdir, "-n", "--cores", "1", "--configfile", edit, check=False, timeout=300)
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and 'File "' not in proc.stdout + proc.stderr
    assert all(n in lines[0] for n in named), lines[0]
    assert tree_hashes(workdir / "results") == before
    return lines[0]


@pytest.mark.workflow
def test_a_corpus_path_that_does_not_exist(demo):
    line = stops_in_one_line(demo, {"corpora": {"wiki": {"type": "wikipedia", "path": "resources/no-such.xml.bz2",
                                                         "parts": 2}}}, "corpora.wiki.path", "no-such.xml.bz2")
    assert "does not exist" in line


@pytest.mark.workflow
def test_a_text_corpus_folder_that_does_not_exist(demo):
    stops_in_one_line(demo, {"corpora": {"wiki": {"type": "wikipedia", "path": "resources/enwiki-excerpt.xml.bz2",
                                                  "parts": 2},
                                         "mine": {"type": "text", "path": "my texts/", "parts": 1}}},
                      "corpora.mine.path", "my texts/")


@pytest.mark.workflow
def test_a_text_corpus_folder_without_text_files(demo):
    (demo / "notes only").mkdir(exist_ok=True)
    (demo / "notes only" / "readme.md").write_text("not a corpus file\n")
    stops_in_one_line(demo, {"corpora": {"wiki": {"type": "wikipedia", "path": "resources/enwiki-excerpt.xml.bz2",
                                                  "parts": 2},
                                         "mine": {"type": "text", "path": "notes only", "parts": 1}}},
                      "no .txt, .jsonl or .parquet files", "notes only")


@pytest.mark.workflow
@pytest.mark.parametrize("kept", [["tokenizer_config.json", "special_tokens_map.json"], []])
def test_a_tokenizer_folder_without_its_vocabulary(demo, bert_tokenizer_dir, kept):
    bad = demo / f"tok-{len(kept)}"
    bad.mkdir(exist_ok=True)
    for name in kept:
        shutil.copy(bert_tokenizer_dir / name, bad / name)
    stops_in_one_line(demo, {"tokenizer": {"pretrained": str(bad)}}, str(bad), "tokenizer.json", "vocab.txt")


@pytest.mark.workflow
def test_a_glue_folder_that_does_not_exist(demo):
    stops_in_one_line(demo, {"glue": {"source": "dir", "path": "no/such/glue"}}, "no/such/glue", "CoLA")


@pytest.mark.workflow
@pytest.mark.parametrize("missing", ["RTE/test.tsv", "STS-B/dev.tsv"])
def test_a_task_whose_file_is_missing(demo, missing):
    glue = demo / f"glue-{missing.replace('/', '-')}"
    if not glue.exists():
        shutil.copytree(demo / "demo" / "glue_smoke", glue)
        (glue / missing).unlink()
    task = missing.split("/")[0]
    stops_in_one_line(demo, {"glue": {"source": "dir", "path": str(glue)}}, f"task {task}", str(glue / missing))
    # A config that does not ask for the task plans fine.
    tasks = [t for t in TASKS if t != task]
    edit = write_config(demo / "edit.yaml", {"glue": {"source": "dir", "path": str(glue)}, "finetune": {"tasks": tasks}})
    snakemake(demo, "-n", "--cores", "1", "--configfile", edit, timeout=300)


@pytest.mark.workflow
def test_stilts_checks_mnli_though_tasks_leave_it_out(demo):
    glue = demo / "glue-no-mnli"
    if not glue.exists():
        shutil.copytree(demo / "demo" / "glue_smoke", glue)
        shutil.rmtree(glue / "MNLI")
    stops_in_one_line(demo, {"glue": {"source": "dir", "path": str(glue)},
                             "finetune": {"tasks": ["RTE"], "stilts": ["RTE"]}},
                      "task MNLI", "finetune.stilts")


# --- kills ----------------------------------------------------------------------------------


@pytest.mark.workflow  # a real run, ~30 s here
def test_sigkill_of_a_run_shorter_than_the_checkpoint_interval_resumes(pretrain_shards, bert_tokenizer_dir, tmp_path):
    """12 s of budget against the default 30-minute interval (the demo's case): checkpoints still come
    every 1.2 s of training, so a kill -9 mid-run resumes from one instead of starting over."""
    repo = Path(__file__).resolve().parents[1]
    rec = recipe(12)
    assert "checkpoint_interval_minutes" not in rec                     # the schema default, 30
    proc = subprocess.Popen(command(pretrain_shards, bert_tokenizer_dir, tmp_path, rec), cwd=repo,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = None
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        pointers = list((tmp_path / "state").glob("*/latest.json"))
        if pointers:
            latest = json.loads(pointers[0].read_text())
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before any periodic checkpoint"
    assert latest and latest["reason"] is None and latest["step"] >= 1

    again = run(pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert again.returncode == 0, again.stdout + again.stderr
    log = events(tmp_path / "log.jsonl")
    assert [resumed(e) for e in log if e["event"] == "resume"] == [
        {"event": "resume", "step": latest["step"], "elapsed_s": latest["elapsed_s"]}]
    assert log[-1]["event"] == "end" and log[-1]["reason"] == "budget"


@pytest.mark.workflow  # a real text-extraction job killed, ~20 s here
def test_readme_recovery_after_a_sigkill_of_snakemake(repo_root, resources, tmp_path):
    """kill -9 of Snakemake's whole process group mid-job leaves its lock and the job's temps. The same
    command then refuses with the lock message; the README's `snakemake --unlock`, then the same
    command, finishes the job, and the killed job's hidden temps are gone."""
    readme = (repo_root / "README.md").read_text()
    assert "    snakemake --unlock\n" in readme and "the same command" in readme
    workdir = copy_repo(repo_root, tmp_path / "wd", resources)
    target = "results/text/wiki/part_0.txt"
    same = [sys.executable, "-m", "snakemake", "--cores", "1", "--profile", "profiles/local", target]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(same, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    parts = workdir / "results" / "text" / "wiki"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(parts.glob(".part_*.tmp-*")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    stale = list(parts.glob(".part_*.tmp-*"))
    assert stale and list((workdir / ".snakemake" / "locks").iterdir()) and not (workdir / target).exists()

    refused = subprocess.run(same, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr

    for cmd in ([sys.executable, "-m", "snakemake", "--unlock"], same):
        done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (workdir / target).stat().st_size > 0
    assert not list(parts.glob(".*.tmp-*")), "the killed job's temporaries were left behind"
