"""A real tiny workflow on English + Russian Wikipedia with a WordPiece trained on both, through pretraining
(issue 10: every language kept, and no single part stops the run). Config: tests/configs/languages-trained.yaml.

The default English tokenizer on the same pair of scripts is tests/test_workflow_mixed.py's run."""
import json
import re

import h5py
import pytest

from tests.helpers.russian_wiki import ARTICLES, write_russian_dump
from tests.helpers.workflow import copy_repo, snakemake
from workflow_scripts.data import samples
from workflow_scripts.report import make_report

pytestmark = pytest.mark.workflow

CONFIG = ("--configfile", "tests/configs/languages-trained.yaml", "--replace-workflow-config")
SHARDS = {"wiki": "wiki/part_0", "ru": "ru/part_0", "note": "note/part_0"}  # note/part_1 is empty


@pytest.fixture(scope="module")
def trained(tmp_path_factory, repo_root, resources):
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("languages"), resources)
    (workdir / "lang-data").mkdir()
    write_russian_dump(workdir / "lang-data/ruwiki.xml")
    (workdir / "lang-data/note.txt").write_text("A single short note: its corpus has one document for two parts.\n")
    snakemake(workdir, "--cores", "2", "models", *CONFIG)
    return workdir


def stats(workdir, name):
    """The stats of the shard named CORPUS/part_I."""
    return json.loads((workdir / f"results/samples/stats/{name}.json").read_text())


def test_both_scripts_are_kept_and_the_trained_vocabulary_fits_them(trained):
    wiki, ru = stats(trained, SHARDS["wiki"]), stats(trained, SHARDS["ru"])
    assert ru["documents"]["used"] == 1 + len(ARTICLES) and ru["documents"]["low_chars_per_token_dropped"] == 0
    assert wiki["documents"]["used"] == 4 and wiki["train"]["samples"] > 0 and ru["train"]["samples"] > 0
    # Trained on both, the vocabulary spells Russian in pieces of words, not letter by letter (~1.2
    # characters per token and ~80% one-letter pieces under bert-base-uncased: tests/test_workflow_mixed.py).
    fit = ru["tokenizer_fit"]
    assert fit["spelled_rate"] < 0.25 and fit["unk_rate"] == 0 and fit["chars_per_token"] > 1.8
    assert not any("tokenizer fits" in w for w in ru["warnings"] + wiki["warnings"])
    tokenizer, _ = samples.load_tokenizer(trained / "results/tokenizer")
    with h5py.File(trained / f"results/samples/train/{SHARDS['ru']}.h5") as f:
        text = tokenizer.decode(f["input_ids"][:4].ravel().tolist())
    assert sum("\u0400" <= ch <= "\u04ff" for ch in text) > 100


def test_an_empty_part_is_a_warning_and_the_run_finishes(trained):
    empty = stats(trained, "note/part_1")
    assert empty["corpus"] == "note" and empty["train"]["samples"] == empty["valid"]["samples"] == 0
    assert empty["empty_reason"] == "no document (corpus note has fewer documents than parts)"
    assert "WARNING: text part results/text/note/part_1.txt holds no document" in (
        trained / "logs/samples/note/part_1.log").read_text()
    assert "fewer than parts=2: 1 part(s) stay empty" in (trained / "logs/corpus/note.log").read_text()
    log = [json.loads(line) for line in (trained / "results/runs/tiny/pretrain_log.jsonl").open()]
    assert log[-1]["event"] == "end" and log[-1]["reason"] == "max_steps" and log[-1]["step"] == 2
    assert re.search(r"train shard \S*note/part_1\.h5: no samples .*skipped", (trained / "logs/pretrain/tiny.log").read_text())
    assert stats(trained, SHARDS["note"])["train"]["samples"] > 0  # the note itself trains (a one-document part holds out nothing)
    assert (trained / "results/runs/tiny/model/model.safetensors").is_file()


def test_the_data_report_names_both_corpora_and_the_empty_part(trained, tmp_path):
    out = tmp_path / "data.md"
    make_report.main(["--table-out", str(tmp_path / "glue.md"), "--curves-out", str(tmp_path / "c.png"),
                      "--data-out", str(out), "--sample-stats",
                      *map(str, sorted((trained / "results/samples/stats").glob("*/*.json")))])
    md = out.read_text()
    for corpus in ("wiki", "ru"):
        assert re.search(rf"^\| {corpus} \| 1 \| [\d,]+ \|", md, re.M), corpus
    assert "| note | 2 (1 empty) |" in md
    assert "- corpus note: 1 of 2 parts gave no samples" in md and "- the tokenizer fits" not in md
