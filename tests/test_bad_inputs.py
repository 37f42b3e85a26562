"""Bad inputs: each stops in one line and loses nothing that was made; a killed run is recovered.

One table of cases (config, corpora, tokenizer, shards, GLUE, odd paths), one parametrized test:
the parse-time ones as dry runs of one copy of a finished tiny run, the rest (a file whose content
only a job reads) as real runs of their own copy. Besides: a pretraining run shorter than
checkpoint_interval_minutes still checkpoints, so a SIGKILL resumes it; and the README's
`snakemake --unlock` recovery works as written for a lock the workflow cannot vouch for.
"""
import bz2
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.pretrain_run import command, events, recipe, resumed, run
from tests.helpers.workflow import FAULTS_ARGS, copy_repo, snakemake, tree_hashes, write_config
from workflow_scripts.pretrain import state


def test_checkpoint_cadence_is_the_interval_or_a_tenth_of_the_budget():
    demo = {"checkpoint_interval_minutes": 30, "total_training_time": 0.02}        # 72 s of training
    assert state.checkpoint_interval_s(demo) == pytest.approx(7.2)
    assert state.checkpoint_interval_s({**demo, "total_training_time": 24}) == 30 * 60
    assert state.checkpoint_interval_s({**demo, "checkpoint_interval_minutes": 0.05}) == pytest.approx(3.0)
    # max_steps: its time is not known beforehand; the budget still bounds the cadence
    assert state.checkpoint_interval_s({**demo, "total_training_time": 1.0, "max_steps": 3}) == 6 * 60


# --- bad inputs: one table, one test -------------------------------------------------------
# Each case breaks one input of the finished tiny run (tests/configs/faults-tiny.yaml, the
# `tiny_run` fixture) and runs the user's command again with one more --configfile. Parse-time
# cases are dry runs of one shared copy; `real` cases need a job to read the input, so each runs for
# real in its own copy. Every case: exit non-zero, one line naming what is wrong (and what to do),
# no traceback, and every file under results/ that the edit does not make stale unchanged.

ODD = "odd dir 'q' $x & (1)"        # spaces, quotes, $ and & in a user's folder name
GLUE = "demo/glue_smoke"
WIKI = "resources/enwiki-excerpt.xml.bz2"


@dataclass
class Case:
    id: str
    edit: dict                                  # merged over the tiny run's config
    named: tuple                                # what the one line must hold
    make: Callable[[Path], None] | None = None  # writes the broken input into the copy
    log: str | None = None                      # a real run's failing job: its log
    stale: tuple = ()                           # results/ paths the edit reruns (their old files may go)


def write(rel: str, data: bytes):
    def make(workdir: Path):
        (workdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (workdir / rel).write_bytes(data)
    return make


def glue_copy(name: str, task: str, edit: Callable[[list], list]):
    """demo/glue_smoke copied to NAME with TASK/train.tsv's lines passed through `edit`."""
    def make(workdir: Path):
        shutil.copytree(workdir / GLUE, workdir / name, dirs_exist_ok=True)
        train = workdir / name / task / "train.tsv"
        train.write_text("".join(edit(train.read_text().splitlines(keepends=True))))
    return make


def tokenizer_copy(name: str, keep: tuple, extra: dict | None = None):
    def make(workdir: Path):
        (workdir / name).mkdir(exist_ok=True)
        for f in keep:
            shutil.copy(workdir / "resources/bert-base-uncased" / f, workdir / name / f)
        for f, data in (extra or {}).items():
            (workdir / name / f).write_bytes(data)
    return make


TRUNCATED_SHARD = "results/samples/train/wiki/part_0.h5"


def truncate_first_train_shard(workdir: Path):
    shard = workdir / TRUNCATED_SHARD
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


def corpus(name: str, kind: str, path: str) -> dict:
    return {"corpora": {name: {"type": kind, "path": path, "parts": 1}}}


def glue_task(path: str, task: str) -> dict:
    return {"glue": {"source": "dir", "path": path}, "finetune": {"tasks": [task]}}


def run_of(**keys) -> dict:
    return {"runs": {"demo": keys}}


def new_corpus(name: str) -> tuple:
    return (f"results/text/{name}/", f"results/benchmarks/corpus/{name}")


GLUE_STALE = ("results/runs/demo/glue/", "results/benchmarks/finetune/")
PRETRAIN_STALE = ("results/runs/", "results/benchmarks/pretrain/", "results/benchmarks/finetune/")

CASES = [
    # config: nested typos, wrong types, out-of-range values, cross-key conflicts, odd names
    Case("typo-nested", {"samples": {"mask_lm_prob": 0.2}}, ("config key samples", "unknown key 'mask_lm_prob'",
                                                               "masked_lm_prob")),
    Case("typo-deep", run_of(optimizer={"lrr": 1e-3}), ("runs.demo.optimizer", "unknown key 'lrr'", "lr")),
    Case("typo-top-level", {"finetunes": {"seeds": [1]}}, ("unknown key 'finetunes'", "finetune")),
    Case("type-budget", run_of(total_training_time="two hours"),
         ("runs.demo.total_training_time", "'two hours' is not of type 'number'")),
    Case("type-tasks", {"finetune": {"tasks": "CoLA"}}, ("finetune.tasks", "'CoLA'")),
    Case("type-parts", {"corpora": {"wiki": {"parts": "2"}}}, ("corpora.wiki.parts", "'2'")),
    Case("range-mask-prob", {"samples": {"masked_lm_prob": 1.5}}, ("samples.masked_lm_prob", "1.5")),
    Case("range-parts", {"corpora": {"wiki": {"parts": 0}}}, ("corpora.wiki.parts", "0")),
    Case("enum-model", run_of(model={"type": "gpt"}), ("runs.demo.model.type", "'gpt'")),
    Case("enum-task", {"finetune": {"tasks": ["CoLA", "FOO"]}}, ("finetune.tasks", "'FOO'")),
    Case("enum-glue-source", {"glue": {"source": "ftp"}}, ("glue.source", "'ftp'")),
    Case("enum-corpus-type", {"corpora": {"wiki": {"type": "pdf"}}}, ("corpora.wiki", "'pdf'")),
    Case("cross-batch", run_of(batch_size=32, implementation={"micro_batch_size": 12}),
         ("runs.demo.batch_size", "multiple of", "micro_batch_size (12)")),
    Case("cross-step-schedule", run_of(max_steps=None), ("runs.demo", "schedule.by", "max_steps")),
    Case("cross-seq-length", {"samples": {"max_seq_length": 1024}},
         ("samples.max_seq_length", "1024", "max_position_embeddings")),
    Case("odd-corpus-name", {"corpora": {"my wiki": {"type": "wikipedia", "path": WIKI}}}, ("corpora", "my wiki")),
    Case("odd-run-name", {"runs": {"demo;ls": {}}}, ("runs", "demo;ls")),
    # corpora, checked at parse time
    Case("corpus-missing", {"corpora": {"wiki": {"path": "resources/no-such.xml.bz2"}}},
         ("corpora.wiki.path", "resources/no-such.xml.bz2", "does not exist", "fix the path")),
    Case("corpus-missing-odd-path", {"corpora": {"wiki": {"path": f"{ODD}/dump.xml.bz2"}}},
         ("corpora.wiki.path", f"{ODD}/dump.xml.bz2", "does not exist")),
    Case("text-folder-missing", corpus("mine", "text", "my texts/"), ("corpora.mine.path", "my texts/")),
    Case("text-folder-no-text-files", corpus("mine", "text", "notes only"), ("no .txt, .jsonl or .parquet files",
                                                                             "notes only"),
         make=write("notes only/readme.md", b"not a corpus file\n")),
    Case("text-file-wrong-kind", corpus("mine", "text", "tables/rows.csv"), ("tables/rows.csv", ".txt"),
         make=write("tables/rows.csv", b"a,b\n1,2\n")),
    # tokenizer
    Case("tokenizer-no-vocab", {"tokenizer": {"pretrained": "tok-1"}}, ("tok-1", "tokenizer.json", "vocab.txt"),
         make=tokenizer_copy("tok-1", ("tokenizer_config.json", "special_tokens_map.json"))),
    Case("tokenizer-empty-folder", {"tokenizer": {"pretrained": "tok-0"}}, ("tok-0", "tokenizer.json", "vocab.txt"),
         make=tokenizer_copy("tok-0", ())),
    Case("tokenizer-corrupt-json", {"tokenizer": {"pretrained": "tok-bad"}}, ("tok-bad/tokenizer.json",),
         make=tokenizer_copy("tok-bad", ("tokenizer_config.json",), {"tokenizer.json": b'{"version": "1.0", "mod'})),
    Case("tokenizer-missing-folder", {"tokenizer": {"pretrained": "./no/such/tok"}}, ("./no/such/tok", "no such folder")),
    # GLUE files, checked at parse time
    Case("glue-folder-missing", {"glue": {"source": "dir", "path": "no/such/glue"}}, ("no/such/glue", "CoLA")),
    Case("glue-missing-test-split", {"glue": {"source": "dir", "path": "glue-no-rte-test"}},
         ("task RTE", "glue-no-rte-test/RTE/test.tsv", "finetune.tasks"),
         make=lambda w: (shutil.copytree(w / GLUE, w / "glue-no-rte-test", dirs_exist_ok=True),
                         (w / "glue-no-rte-test/RTE/test.tsv").unlink(missing_ok=True))),
    Case("glue-missing-dev-split", {"glue": {"source": "dir", "path": "glue-no-stsb-dev"}},
         ("task STS-B", "glue-no-stsb-dev/STS-B/dev.tsv"),
         make=lambda w: (shutil.copytree(w / GLUE, w / "glue-no-stsb-dev", dirs_exist_ok=True),
                         (w / "glue-no-stsb-dev/STS-B/dev.tsv").unlink(missing_ok=True))),
    Case("glue-stilts-without-mnli", {"glue": {"source": "dir", "path": "glue-no-mnli"},
                                      "finetune": {"tasks": ["RTE"], "stilts": ["RTE"]}},
         ("task MNLI", "finetune.stilts"),
         make=lambda w: (shutil.copytree(w / GLUE, w / "glue-no-mnli", dirs_exist_ok=True),
                         shutil.rmtree(w / "glue-no-mnli/MNLI", ignore_errors=True))),
    # corpora whose content is broken: the extraction job finds it (real runs)
    Case("text-empty-file", corpus("mine", "text", "empty/a.txt"), ("empty/a.txt", "no documents", "point the corpus at files"), make=write("empty/a.txt", b""),
         log="logs/corpus/mine.log", stale=new_corpus("mine")),
    Case("wiki-0-byte-bz2", corpus("wiki2", "wikipedia", "dumps/empty.xml.bz2"), ("dumps/empty.xml.bz2", "download it again"),
         make=write("dumps/empty.xml.bz2", b""), log="logs/corpus/wiki2.log", stale=new_corpus("wiki2")),
    Case("wiki-truncated-bz2", corpus("wiki2", "wikipedia", f"{ODD}/cut.xml.bz2"), (f"{ODD}/cut.xml.bz2", "truncated", "download it again"),
         make=lambda w: write(f"{ODD}/cut.xml.bz2", (w / WIKI).read_bytes()[:200_000])(w),
         log="logs/corpus/wiki2.log", stale=new_corpus("wiki2")),
    Case("wiki-malformed-xml", corpus("wiki2", "wikipedia", "dumps/bad.xml.bz2"), ("dumps/bad.xml.bz2", "not an XML export"),
         make=write("dumps/bad.xml.bz2", bz2.compress(b"<mediawiki><page><title>A</title><text>x</page>")),
         log="logs/corpus/wiki2.log", stale=new_corpus("wiki2")),
    Case("text-non-utf8", corpus("mine", "text", ODD), (f"{ODD}/latin1.txt", "not UTF-8", "convert it"),
         make=write(f"{ODD}/latin1.txt", "Caf\u00e9 au lait.\n".encode("latin-1")),
         log="logs/corpus/mine.log", stale=new_corpus("mine")),
    Case("jsonl-broken", corpus("mine", "text", "jl"), ("jl/a.jsonl", "line 2", "not valid JSON"),
         make=write("jl/a.jsonl", b'{"text": "A line."}\n{"text": "cut\n'), log="logs/corpus/mine.log",
         stale=new_corpus("mine")),
    Case("parquet-broken", corpus("mine", "text", "pq"), ("pq/a.parquet", "parquet", "write it again"),
         make=write("pq/a.parquet", b"PAR1 this is not a parquet file"), log="logs/corpus/mine.log",
         stale=new_corpus("mine")),
    # a shard cut short, read when pretraining reruns (an lr edit)
    # The damaged shard itself is moved aside (NAME.corrupt) so that the next run rebuilds it.
    Case("shard-truncated", run_of(optimizer={"lr": 5e-4}), (TRUNCATED_SHARD, "moved aside", "rebuilds it"),
         make=truncate_first_train_shard, log="logs/pretrain/demo.log", stale=PRETRAIN_STALE + (TRUNCATED_SHARD,)),
    # GLUE rows a fine-tuning trial reads
    Case("glue-missing-column", glue_task("glue-col", "SST-2"), ("glue-col/SST-2/train.tsv", "'sentence'"),
         make=glue_copy("glue-col", "SST-2", lambda rows: ["sentense\tlabel\n", *rows[1:]]),
         log="logs/finetune/demo/SST-2/lr0.0001_bs16_ep1_seed1.log", stale=GLUE_STALE),
    Case("glue-bad-label", glue_task("glue-label", "SST-2"), ("glue-label/SST-2/train.tsv", "'7'"),
         make=glue_copy("glue-label", "SST-2", lambda rows: [rows[0], "a fine film .\t7\n", *rows[1:]]),
         log="logs/finetune/demo/SST-2/lr0.0001_bs16_ep1_seed1.log", stale=GLUE_STALE),
    Case("glue-score-not-a-number", glue_task("glue-score", "STS-B"), ("glue-score/STS-B/train.tsv", "'high'"),
         make=glue_copy("glue-score", "STS-B", lambda rows: [rows[0], rows[1].rsplit("\t", 1)[0] + "\thigh\n",
                                                             *rows[2:]]),
         log="logs/finetune/demo/STS-B/lr0.0001_bs16_ep1_seed1.log", stale=GLUE_STALE),
]


@pytest.fixture(scope="module")
def parse_copy(tiny_run, tmp_path_factory):
    """One copy of the finished tiny run for every dry-run case (they stop before any job)."""
    return Path(shutil.copytree(tiny_run.workdir, tmp_path_factory.mktemp("bad_inputs") / "wd", symlinks=True))


def assert_one_clear_line(text: str, named: tuple) -> str:
    assert "Traceback" not in text and 'File "' not in text, text[-3000:]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert lines and all(n in lines[-1] for n in named), text[-3000:]
    return lines[-1]


def assert_kept(before: dict, after: dict, stale: tuple) -> None:
    kept = {f: h for f, h in before.items() if not f.startswith(tuple(s.removeprefix("results/") for s in stale))}
    lost = [f for f in kept if f not in after]
    changed = [f for f in kept if f in after and after[f] != kept[f]]
    assert not lost and not changed, f"lost {lost[:5]}, changed {changed[:5]}"


@pytest.mark.workflow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_input_stops_in_one_line_and_loses_nothing(case, tiny_run, parse_copy, tmp_path):
    workdir = parse_copy if case.log is None else Path(
        shutil.copytree(tiny_run.workdir, tmp_path / "wd", symlinks=True))
    if case.make:
        case.make(workdir)
    before = tree_hashes(workdir / "results")
    edit = write_config(workdir / f"edit-{case.id}.yaml", case.edit)
    dry = ["-n"] if case.log is None else []
    proc = snakemake(workdir, *dry, *FAULTS_ARGS, edit, check=False, timeout=600)
    assert proc.returncode != 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if case.log is None:
        said = [line for line in proc.stderr.strip().splitlines() if not line.startswith("Using profile ")]
        assert len(said) == 1, proc.stderr                     # Snakemake's profile notice aside
        assert_one_clear_line(proc.stdout + proc.stderr, case.named)
    else:
        assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
        assert_one_clear_line((workdir / case.log).read_text(), case.named)
    assert_kept(before, tree_hashes(workdir / "results"), case.stale)


def test_the_table_holds_thirty_cases_of_every_kind():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    assert sum(c.log is not None for c in CASES) >= 10


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
    """kill -9 of Snakemake's whole process group mid-job leaves its lock and the job's temps. A lock
    whose holder the workflow cannot vouch for (here: its record gone, as for a lock held from another
    machine) makes the same command refuse with the lock message; the README's `snakemake --unlock`,
    then the same command, finishes the job, and the killed job's hidden temps are gone. (With the
    record in place the same command alone recovers: tests/test_faults.py.)"""
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
    record = workdir / ".snakemake" / "lock_owner.json"
    assert json.loads(record.read_text())["pid"] == proc.pid       # the killed Snakemake held the lock
    record.unlink()

    refused = subprocess.run(same, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "--unlock" in refused.stdout + refused.stderr

    for cmd in ([sys.executable, "-m", "snakemake", "--unlock"], same):
        done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (workdir / target).stat().st_size > 0
    assert not list(parts.glob(".*.tmp-*")), "the killed job's temporaries were left behind"
