"""A real tiny workflow on mixed sources: the dump (by file:// URL, capped) + a folder of .txt + a .jsonl
of sentence rows joined into articles by an id column, with weights and planted cross-source
duplicates, + a Russian Wikipedia dump under the English tokenizer, run up to the samples.

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

from tests.helpers.russian_wiki import ARTICLES, write_russian_dump
from tests.helpers.workflow import copy_repo, feature_config, planned_jobs, snakemake, write_config
from workflow_scripts.data import corpus, samples
from workflow_scripts.report import make_report

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
    # A sentence per row with its article's id (documents.by: column joins them back into articles).
    (data / "rows.jsonl").write_text("".join(json.dumps({"text": sentence, "article": i}) + "\n"
                                             for i, a in enumerate(rows) for sentence in a))
    write_russian_dump(workdir / config_path("ru"))
    config = feature_config("mixed-corpora")
    config["corpora"]["wiki"]["path"] = wiki_dump.resolve().as_uri()
    assert (workdir / config["corpora"]["folder"]["path"]) == folder
    assert (workdir / config["corpora"]["rows"]["path"]).is_file()
    write_config(workdir / "mixed-corpora.yaml", config)
    snakemake(workdir, "--cores", "2", "samples", *CONFIG)
    return workdir, config


def config_path(name):
    return feature_config("mixed-corpora")["corpora"][name]["path"]


def shard_stats(workdir, name):
    """The stats of a shard named CORPUS/part_I."""
    return json.loads((workdir / f"results/samples/stats/{name}.json").read_text())


def test_url_source_downloaded_once_and_capped(mixed, wiki_dump):
    workdir, _ = mixed
    assert (workdir / "resources/corpora/wiki/enwiki-excerpt.xml.bz2").read_bytes() == wiki_dump.read_bytes()
    wiki = json.loads((workdir / "results/text/wiki/stats.json").read_text())
    assert wiki["documents_kept"] == WIKI_CAP and wiki["stopped_at"] == f"max_documents={WIKI_CAP}"
    for name, kept in (("folder", 20), ("rows", 12), ("ru", 1 + len(ARTICLES))):
        stats = json.loads((workdir / f"results/text/{name}/stats.json").read_text())
        assert stats["documents_kept"] == kept and stats["documents_read"] == kept
    # the jsonl's sentence rows came back as their 12 articles, each sentence a line
    rows = [json.loads(line) for line in (workdir / "mixed-data/rows.jsonl").read_text().splitlines()]
    articles = [[r["text"] for r in rows if r["article"] == i] for i in range(12)]
    assert sentences_of(workdir / "results/text/rows/part_0.txt") == articles
    assert f"{len(rows)} rows -> 12 documents (documents.by column" in (workdir / "logs/corpus/rows.log").read_text()


def test_planted_duplicates_are_removed_across_sources(mixed):
    workdir, _ = mixed
    found = {name: json.loads((workdir / f"results/text/{name}/duplicates.json").read_text())
             for name in ("wiki", "folder", "rows")}
    assert [found[n]["documents"] for n in found] == [WIKI_CAP, 20, 12]  # (ru: tested below)
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
    assert jobs == {"make_samples": 1, "report_data": 1, "samples": 1}, jobs
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
    # The last corpus (ru, one part): its text, its duplicates, its one shard; the others' stay.
    jobs, planned = edited_plan(workdir, config, "ru", max_documents=5)
    assert jobs == {"extract_text_ru": 1, "find_duplicate_documents": 1, "make_samples": 1, "report_data": 1, "samples": 1}, jobs
    assert planned == {"corpus": {"ru"}, "part": {"0"}}
    # rows: its own, and the duplicates and shard of ru after it; wiki's and folder's stay.
    jobs, planned = edited_plan(workdir, config, "rows", max_documents=11)
    assert jobs == {"extract_text_rows": 1, "find_duplicate_documents": 2, "make_samples": 2, "report_data": 1, "samples": 1}, jobs
    assert planned == {"corpus": {"rows", "ru"}, "part": {"0"}}
    # The first corpus: every later corpus's drop list may change with it, so all shards are redone.
    jobs, planned = edited_plan(workdir, config, "wiki", max_documents=WIKI_CAP - 1)
    assert jobs == {"extract_text_wiki": 1, "find_duplicate_documents": 4, "make_samples": 5, "report_data": 1, "samples": 1}, jobs
    assert planned == {"corpus": {"wiki", "folder", "rows", "ru"}, "part": {"0", "1"}}
    # How rows form documents is the corpus's too; a by: row block (the default, written out or not)
    # is not handed to the job, so corpora extracted before the block existed stay done.
    # One plan checks both: rows regrouped, folder's default block spelled out.
    spelled_out = json.loads(json.dumps(config))
    spelled_out["corpora"]["folder"]["documents"] = {"by": "row", "chars": 10}
    jobs, planned = edited_plan(workdir, spelled_out, "rows", documents={"by": "chars", "chars": 5000})
    write_config(workdir / "mixed-corpora.yaml", config)
    assert planned == {"corpus": {"rows", "ru"}, "part": {"0"}}, jobs  # ru comes after rows
    assert planned_jobs(snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG)) == {}


def test_a_cyrillic_corpus_is_kept_under_the_english_tokenizer_and_named_in_the_report(mixed, tmp_path):
    """Issue 10: the absolute min_chars_per_token 3.0 used to drop every Russian article (~1.2 characters
    per token under bert-base-uncased), leave the part empty and stop the DAG."""
    workdir, _ = mixed
    ru, wiki = shard_stats(workdir, "ru/part_0"), shard_stats(workdir, "wiki/part_0")
    assert ru["corpus"] == "ru" and ru["documents"]["read"] == ru["documents"]["used"] == 1 + len(ARTICLES)
    assert ru["documents"]["low_chars_per_token_dropped"] == 0 and ru["train"]["samples"] > 0
    assert ru["tokenizer_fit"]["chars_per_token"] < 2 and wiki["tokenizer_fit"]["chars_per_token"] > 4
    # Both corpora's samples are in the shards: Cyrillic pieces in ru's, none in wiki's.
    tokenizer, _ = samples.load_tokenizer(workdir / "results/tokenizer")
    for name, cyrillic in (("ru/part_0", True), ("wiki/part_0", False)):
        with h5py.File(workdir / f"results/samples/train/{name}.h5") as f:
            text = tokenizer.decode(f["input_ids"][:8].ravel().tolist())
        assert (sum("\u0400" <= ch <= "\u04ff" for ch in text) > 100) == cyrillic
    # The poor fit is said once in ru's log, and not in wiki's.
    log = (workdir / "logs/samples/ru/part_0.log").read_text()
    assert log.count("WARNING: the tokenizer fits corpus ru poorly") == 1 and "tokenizer: {train:" in log
    assert "WARNING" not in (workdir / "logs/samples/wiki/part_0.log").read_text()
    # The data report (as the report rule writes it) names both corpora, and ru's fit once.
    stats = sorted((workdir / "results/samples/stats").glob("*/*.json"))
    out = tmp_path / "data.md"
    make_report.main(["--table-out", str(tmp_path / "glue.md"), "--curves-out", str(tmp_path / "c.png"),
                      "--data-out", str(out), "--sample-stats", *map(str, stats)])
    md = out.read_text()
    assert re.search(r"^\| wiki \| 2 \| [\d,]+ \|", md, re.M) and re.search(r"^\| ru \| 1 \| [\d,]+ \|", md, re.M)
    assert md.count("- the tokenizer fits corpus ru poorly") == 1 and "corpus wiki" not in md


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
    only its own shard and redoes rows and ru (whose drop lists now also check it), never wiki's or folder's.
    Runs last in this module and restores the finished state."""
    workdir, config = mixed
    before = shard_files(workdir, ["wiki", "folder"])
    later_before = shard_files(workdir, ["rows", "ru"])
    articles = sentences_of(workdir / "mixed-data/cleaned.txt")[WIKI_CAP + 30:WIKI_CAP + 34]
    (workdir / "mixed-data/extra.txt").write_text("\n\n".join(" ".join(a) for a in articles) + "\n")
    edited = json.loads(json.dumps(config))
    edited["corpora"] = {"wiki": config["corpora"]["wiki"], "folder": config["corpora"]["folder"],
                         "extra": {"type": "text", "path": "mixed-data/extra.txt"}, "rows": config["corpora"]["rows"],
                         "ru": config["corpora"]["ru"]}
    try:
        write_config(workdir / "mixed-corpora.yaml", edited)
        proc = snakemake(workdir, "-n", "--cores", "2", "samples", *CONFIG)
        assert planned_jobs(proc) == {"extract_text_extra": 1, "find_duplicate_documents": 3, "make_samples": 3,
                                      "report_data": 1, "samples": 1}, planned_jobs(proc)
        snakemake(workdir, "--cores", "2", "samples", *CONFIG)
        assert shard_files(workdir, ["wiki", "folder"]) == before  # not rerun: same bytes, same mtimes
        # rows and ru reran, and their shards come out byte for byte as before: a seed is its corpus's
        # name's, not a position.
        assert {p: b for p, (b, _) in shard_files(workdir, ["rows", "ru"]).items() if "stats" not in p.parts} == \
            {p: b for p, (b, _) in later_before.items() if "stats" not in p.parts}
        assert shard_stats(workdir, "extra/part_0")["documents"]["read"] == len(articles)
    finally:
        write_config(workdir / "mixed-corpora.yaml", config)
    snakemake(workdir, "--cores", "2", "samples", *CONFIG)  # the original config, finished again
    assert shard_files(workdir, ["wiki", "folder"]) == before
