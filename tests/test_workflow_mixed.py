"""A real tiny workflow on mixed sources: the dump (by file:// URL, capped) + a folder of .txt + a .jsonl,
with weights and planted cross-source duplicates, run up to the samples.

The folder and the jsonl hold real articles too: the ones past the dump corpus's max_documents cap,
so nothing repeats by accident. Planted: one dump article in the jsonl, one folder article in the
jsonl. Config order (wiki, folder, rows) keeps the dump's and the folder's copies.
Config: tests/configs/mixed-corpora.yaml, with the paths of the data written here.
"""
import gzip
import json
import re

import h5py
import pytest

from tests.helpers.workflow import copy_repo, feature_config, planned_jobs, snakemake, write_config
from workflow_scripts.data import corpus, samples

pytestmark = pytest.mark.workflow

CONFIG = ("--configfile", "mixed-corpora.yaml", "--replace-workflow-config")
WIKI_CAP = feature_config("mixed-corpora")["corpora"]["wiki"]["max_documents"]


def sentences_of(path):
    return [block.split("\n") for block in path.read_text(encoding="utf-8").split("\n\n") if block]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, repo_root, resources, wiki_dump):
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("mixed"), resources)
    # Own resources/ (the download lands there), not the shared one copy_repo links.
    (workdir / "resources").unlink()
    (workdir / "resources").mkdir()
    (workdir / "resources" / "bert-base-uncased").symlink_to(resources / "bert-base-uncased")
    data = workdir / "mixed-data"  # the feature config's relative paths
    data.mkdir()
    cleaned = data / "cleaned.txt"
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump)}, [cleaned])
    articles = sentences_of(cleaned)  # in dump order; the capped wiki corpus keeps the first WIKI_CAP
    # A folder article that reads back as the same sentences when its lines are re-split (most do).
    shared = next(a for a in articles[WIKI_CAP:WIKI_CAP + 20] if corpus.text_sentences(" ".join(a)) == a)
    folder = data / "mine"
    (folder / "more").mkdir(parents=True)
    (folder / "a.txt").write_text("\n\n".join(" ".join(a) for a in articles[WIKI_CAP:WIKI_CAP + 10]) + "\n")
    with gzip.open(folder / "more" / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("\n\n".join(" ".join(a) for a in articles[WIKI_CAP + 10:WIKI_CAP + 20]) + "\n")
    rows = articles[WIKI_CAP + 20:WIKI_CAP + 30] + [articles[3], shared]
    # One sentence per paragraph: the jsonl rows clean to exactly these sentences.
    (data / "rows.jsonl").write_text("".join(json.dumps({"text": "\n\n".join(a)}) + "\n" for a in rows))
    config = feature_config("mixed-corpora")
    config["corpora"]["wiki"]["path"] = wiki_dump.resolve().as_uri()
    assert (workdir / config["corpora"]["folder"]["path"]) == folder
    assert (workdir / config["corpora"]["rows"]["path"]).is_file()
    write_config(workdir / "mixed-corpora.yaml", config)
    snakemake(workdir, "--cores", "2", "samples", *CONFIG)
    return workdir, config


def shard_stats(workdir, name):
    """The stats of a shard named CORPUS/part_I."""
    return json.loads((workdir / f"results/samples/stats/{name}.json").read_text())


def test_url_source_downloaded_once_and_capped(mixed, wiki_dump):
    workdir, _ = mixed
    assert (workdir / "resources/corpora/wiki/enwiki-excerpt.xml.bz2").read_bytes() == wiki_dump.read_bytes()
    wiki = json.loads((workdir / "results/text/wiki/stats.json").read_text())
    assert wiki["documents_kept"] == WIKI_CAP and wiki["stopped_at"] == f"max_documents={WIKI_CAP}"
    for name, kept in (("folder", 20), ("rows", 12)):
        stats = json.loads((workdir / f"results/text/{name}/stats.json").read_text())
        assert stats["documents_kept"] == kept and stats["documents_read"] == kept


def test_planted_duplicates_are_removed_across_sources(mixed):
    workdir, _ = mixed
    found = {name: json.loads((workdir / f"results/text/{name}/duplicates.json").read_text())
             for name in ("wiki", "folder", "rows")}
    assert [found[n]["documents"] for n in found] == [WIKI_CAP, 20, 12]
    assert [found[n]["earlier"] for n in found] == [[], ["wiki"], ["wiki", "folder"]]  # config order
    assert found["rows"]["duplicate_of"] == {"wiki": 1, "folder": 1} and found["rows"]["duplicates"] == 2
    assert found["wiki"]["duplicates"] == found["folder"]["duplicates"] == 0
    assert found["rows"]["parts"]["part_0.txt"]["drop"] == [10, 11]
    rows = shard_stats(workdir, "rows/part_0")
    assert rows["documents"]["read"] == 12 and rows["documents"]["duplicates_dropped"] == 2
    assert "2 skipped as duplicates" in (workdir / "logs/samples/rows/part_0.log").read_text()
    assert "rows: 12 documents, 2 exact duplicates" in (workdir / "logs/corpus/rows.duplicates.log").read_text()


def test_weights_change_the_sample_counts_as_designed(mixed, bert_tokenizer_dir, tmp_path):
    workdir, config = mixed
    folder, rows, wiki = (shard_stats(workdir, f"{c}/part_0") for c in ("folder", "rows", "wiki"))
    assert (wiki["weight"], folder["weight"], rows["weight"]) == (1.0, 2.0, 0.5)
    # dup_factor 2 x weight: 2, 4 and 1 pass(es) per train document.
    assert wiki["train"]["document_passes"] == 2 * wiki["documents"]["train"]
    assert folder["train"]["document_passes"] == 4 * folder["documents"]["train"]
    assert rows["train"]["document_passes"] == rows["documents"]["train"]
    # Without short targets or NSP every pass packs alike: weight 2 gives exactly twice the samples of
    # weight 1 on the same part (built here with the rule's own spec).
    log = (workdir / "logs/samples/folder/part_0.log").read_text()
    spec = json.loads(log.split("samples: spec ", 1)[1].splitlines()[0])
    counts = samples.build_shards(spec, workdir / "results/tokenizer", workdir / "results/text/folder/part_0.txt",
                                  samples.Part("folder", 0),
                                  tmp_path / "t.h5", tmp_path / "v.h5", weight=1.0,
                                  duplicates=workdir / "results/text/folder/duplicates.json")
    assert folder["train"]["samples"] == 2 * counts.train_samples > 0
    assert folder["valid"]["samples"] == counts.valid_samples  # valid: once, whatever the weight


def test_sample_statistics_are_logged_and_within_bounds(mixed):
    workdir, _ = mixed
    for name in ("wiki/part_0", "wiki/part_1", "folder/part_0", "rows/part_0"):
        stats = shard_stats(workdir, name)
        with h5py.File(workdir / f"results/samples/train/{name}.h5") as f:
            real = f["input_mask"][:].sum(axis=1)
            predicted = (f["masked_lm_positions"][:] > 0).sum()
        train = stats["train"]
        assert train["samples"] == len(real) > 0
        assert train["tokens_per_sample"] == pytest.approx(real.mean(), abs=1e-3)
        assert train["padding_fraction"] == pytest.approx(1 - real.mean() / 128, abs=1e-5)
        assert train["masked_fraction"] == pytest.approx(predicted / (real - 2).sum(), abs=1e-5)
        # Full articles packed to 128 (no short targets): few padded slots; 15% of tokens predicted.
        assert 110 < train["tokens_per_sample"] <= 128 and train["padding_fraction"] < 0.15
        assert train["masked_fraction"] == pytest.approx(0.15, abs=0.01)
        assert stats["documents"]["low_chars_per_token_dropped"] == 0  # real prose passes the filter
        log = (workdir / f"logs/samples/{name}.log").read_text()
        assert "real tokens per sample" in log and "masked 0.1" in log and "padding 0.0" in log


def test_a_weight_edit_reruns_only_that_corpus_samples(mixed, tmp_path):
    workdir, config = mixed
    edited = json.loads(json.dumps(config))
    edited["corpora"]["folder"]["weight"] = 3.0
    try:
        write_config(workdir / "mixed-corpora.yaml", edited)
        jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG))
    finally:
        write_config(workdir / "mixed-corpora.yaml", config)
    assert jobs == {"make_samples": 1, "samples": 1}, jobs
    assert planned_jobs(snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG)) == {}


def edited_plan(workdir, config, corpus, **changes):
    """(rule -> job count, {wildcard name: planned values}) of a dry run of `samples` after editing
    one corpus's settings; the config is restored after."""
    edited = json.loads(json.dumps(config))
    edited["corpora"][corpus].update(changes)
    try:
        write_config(workdir / "mixed-corpora.yaml", edited)
        proc = snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG)
    finally:
        write_config(workdir / "mixed-corpora.yaml", config)
    planned = {}
    for line in re.findall(r"^\s+wildcards: (.+)$", proc.stdout + proc.stderr, re.M):
        for name, value in (w.split("=", 1) for w in line.split(", ")):
            planned.setdefault(name, set()).add(value)
    return planned_jobs(proc), planned


def test_a_corpus_edit_redoes_only_its_own_and_later_corpora_duplicates_and_samples(mixed):
    workdir, config = mixed
    # The last corpus (rows, one part): its text, its duplicates, its one shard; wiki's and folder's stay.
    jobs, planned = edited_plan(workdir, config, "rows", max_documents=11)
    assert jobs == {"extract_text_rows": 1, "find_duplicate_documents": 1, "make_samples": 1, "samples": 1}, jobs
    assert planned == {"corpus": {"rows"}, "part": {"0"}}
    # The first corpus: every later corpus's drop list may change with it, so all shards are redone.
    jobs, planned = edited_plan(workdir, config, "wiki", max_documents=WIKI_CAP - 1)
    assert jobs == {"extract_text_wiki": 1, "find_duplicate_documents": 3, "make_samples": 4, "samples": 1}, jobs
    assert planned == {"corpus": {"wiki", "folder", "rows"}, "part": {"0", "1"}}
    assert planned_jobs(snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG)) == {}


def shard_files(workdir, corpora):
    """{path: (bytes, mtime_ns)} of every samples output (shards, stats) of the named corpora."""
    found = {}
    for split in ("train", "valid", "stats"):
        for name in corpora:
            for path in sorted((workdir / "results/samples" / split / name).iterdir()):
                found[path] = (path.read_bytes(), path.stat().st_mtime_ns)
    return found


def test_adding_a_corpus_leaves_the_earlier_corpora_shards_untouched(mixed):
    """Issue 14: shards are named by corpus and part, so a corpus added between folder and rows makes
    only its own shard and redoes rows (whose drop list now also checks it), never wiki's or folder's.
    Runs last in this module and restores the finished state."""
    workdir, config = mixed
    before = shard_files(workdir, ["wiki", "folder"])
    rows_before = shard_files(workdir, ["rows"])
    articles = sentences_of(workdir / "mixed-data/cleaned.txt")[WIKI_CAP + 30:WIKI_CAP + 34]
    (workdir / "mixed-data/extra.txt").write_text("\n\n".join(" ".join(a) for a in articles) + "\n")
    edited = json.loads(json.dumps(config))
    edited["corpora"] = {"wiki": config["corpora"]["wiki"], "folder": config["corpora"]["folder"],
                         "extra": {"type": "text", "path": "mixed-data/extra.txt"}, "rows": config["corpora"]["rows"]}
    try:
        write_config(workdir / "mixed-corpora.yaml", edited)
        proc = snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG)
        assert planned_jobs(proc) == {"extract_text_extra": 1, "find_duplicate_documents": 2, "make_samples": 2,
                                      "samples": 1}, planned_jobs(proc)
        snakemake(workdir, "--cores", "2", "samples", *CONFIG)
        assert shard_files(workdir, ["wiki", "folder"]) == before  # not rerun: same bytes, same mtimes
        # rows reran, and its shards come out byte for byte as before: its seed is its name's, not a position.
        assert {p: b for p, (b, _) in shard_files(workdir, ["rows"]).items() if "stats" not in p.parts} == \
            {p: b for p, (b, _) in rows_before.items() if "stats" not in p.parts}
        assert shard_stats(workdir, "extra/part_0")["documents"]["read"] == len(articles)
    finally:
        write_config(workdir / "mixed-corpora.yaml", config)
    snakemake(workdir, "--cores", "2", "samples", *CONFIG)  # the original config, finished again
    assert shard_files(workdir, ["wiki", "folder"]) == before
