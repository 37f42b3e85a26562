"""Corpus-stage filters and their records: size caps, document hashes, stats JSON, cross-corpus duplicates."""
import json
import subprocess
import sys

import numpy as np
import pytest

from workflow_scripts.data import corpus, dedup
from workflow_scripts.errors import BadInput


def documents(path):
    return [block.split("\n") for block in path.read_text(encoding="utf-8").split("\n\n") if block]


@pytest.fixture(scope="module")
def wiki(wiki_dump, tmp_path_factory):
    """The real excerpt in 2 parts, with hashes and stats."""
    out = tmp_path_factory.mktemp("wiki") / "wiki"
    parts = [out / "part_0.txt", out / "part_1.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "parts": 2}, parts,
                           hashes_out=out / "doc_hashes.npz", stats_out=out / "stats.json")
    return out, parts, stats


def test_hashes_name_every_kept_document_and_its_part(wiki):
    out, parts, stats = wiki
    with np.load(out / "doc_hashes.npz") as f:
        hashes, part, names = f["hash"], f["part"], list(f["part_names"])
    assert names == ["part_0.txt", "part_1.txt"] and hashes.dtype == np.uint64
    assert len(hashes) == len(part) == stats.kept
    # Reading order, part by part: each part's hashes are its documents' texts, in file order.
    for p, path in enumerate(parts):
        texts = ["\n".join(doc) for doc in documents(path)]
        assert [corpus.document_hash(t) for t in texts] == hashes[part == p].tolist()
    assert len(np.unique(hashes)) == len(hashes)  # the excerpt has no two equal articles


def test_stats_json_records_reads_drops_and_parts(wiki):
    out, parts, stats = wiki
    record = json.loads((out / "stats.json").read_text())
    assert record["documents_read"] == 206 and record["documents_kept"] == stats.kept == 98
    assert record["dropped"] == {"empty_after_cleaning": 1, "not_an_article": 1, "redirect": 99,
                                 "shorter_than_min_chars": 7}
    assert record["documents_read"] == record["documents_kept"] + sum(record["dropped"].values())
    assert record["min_chars"] == 200 and record["stopped_at"] is None
    assert [p["file"] for p in record["parts"]] == ["part_0.txt", "part_1.txt"]
    assert sum(p["documents"] for p in record["parts"]) == 98
    assert [p["size_characters"] for p in record["parts"]] == [len(p.read_text(encoding="utf-8")) for p in parts]


@pytest.mark.parametrize("cap, kept, workers", [({"max_documents": 10}, 10, 1), ({"max_documents": 10}, 10, 2),
                                                 ({"max_chars": 100_000}, None, 1)])
def test_size_caps_stop_reading(wiki_dump, wiki, tmp_path, cap, kept, workers):
    full_out, _, _ = wiki
    parts = [tmp_path / "part_0.txt", tmp_path / "part_1.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "parts": 2, **cap}, parts,
                           stats_out=tmp_path / "stats.json", hashes_out=tmp_path / "h.npz", workers=workers)
    record = json.loads((tmp_path / "stats.json").read_text())
    key, value = next(iter(cap.items()))
    assert record["stopped_at"] == f"{key}={value}"
    assert record["documents_read"] == (record["documents_kept"] + sum(record["dropped"].values())
                                        + record["read_past_cap"])
    if workers == 1:
        assert record["read_past_cap"] == 0 and record["documents_read"] < 206  # the rest was never read
    if kept is not None:
        assert stats.kept == kept
    else:  # stops at the first document that reaches the cap
        longest = max(sum(map(len, d)) for p in parts for d in documents(p))
        assert 100_000 <= stats.characters < 100_000 + longest
    # The capped corpus is the full one's first documents, in reading order (which the hashes keep).
    with np.load(tmp_path / "h.npz") as capped, np.load(full_out / "doc_hashes.npz") as full:
        assert capped["hash"].tolist() == full["hash"][:stats.kept].tolist()
    assert sum(len(documents(p)) for p in parts) == stats.kept


def write_corpus(tmp_path, name, texts, parts=1):
    """A text corpus through the corpus stage; returns its hashes file."""
    source = tmp_path / f"{name}.txt"
    source.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "text" / name
    corpus.extract({"type": "text", "path": str(source), "parts": parts},
                   [out / f"part_{i}.txt" for i in range(parts)], hashes_out=out / "doc_hashes.npz")
    return out / "doc_hashes.npz"


def test_duplicates_across_and_within_corpora_keep_the_first(tmp_path):
    a = write_corpus(tmp_path, "a", ["Alpha one.", "Beta two.", "Alpha one.", "Gamma three."], parts=2)
    # b repeats a's Beta (reflowed: the same text after cleaning) and has one of its own twice.
    b = write_corpus(tmp_path, "b", ["Delta four.", "Beta\ntwo.", "Delta four.", "Epsilon five."])
    out_a, out_b = a.parent / "duplicates.json", b.parent / "duplicates.json"
    found_a = dedup.find_duplicates([], a, out_a)
    found_b = dedup.find_duplicates([a], b, out_b)  # b after a in config order
    assert json.loads(out_a.read_text()) == found_a and json.loads(out_b.read_text()) == found_b
    assert {k: v for k, v in found_a.items() if k != "parts"} == {
        "corpus": "a", "earlier": [], "documents": 4, "duplicates": 1, "duplicate_of": {"a": 1}}
    assert {k: v for k, v in found_b.items() if k != "parts"} == {
        "corpus": "b", "earlier": ["a"], "documents": 4, "duplicates": 2, "duplicate_of": {"a": 1, "b": 1}}
    # Each file names its own corpus's parts, relative to its folder; check the drops by text.
    assert set(found_a["parts"]) == {"part_0.txt", "part_1.txt"} and set(found_b["parts"]) == {"part_0.txt"}
    kept = []
    for out, found in ((out_a, found_a), (out_b, found_b)):
        for key, entry in found["parts"].items():
            docs = documents(out.parent / key)
            assert entry["documents"] == len(docs)
            assert all(" ".join(docs[i]) in ("Alpha one.", "Beta two.", "Delta four.") for i in entry["drop"])
            kept += [" ".join(d) for i, d in enumerate(docs) if i not in entry["drop"]]
    assert sorted(kept) == ["Alpha one.", "Beta two.", "Delta four.", "Epsilon five.", "Gamma three."]
    assert found_b["parts"]["part_0.txt"]["drop"] == [1, 2]  # the kept Beta is a's, the kept Delta b's first
    # Config order decides which copy stays: b first keeps b's Beta, and b alone drops only its own repeat.
    assert dedup.find_duplicates([], b, tmp_path / "b_first.json")["duplicate_of"] == {"b": 1}
    swapped = dedup.find_duplicates([b], a, tmp_path / "a_second.json")
    assert swapped["duplicate_of"] == {"a": 1, "b": 1} and swapped["duplicates"] == 2


def test_a_corpus_drop_list_ignores_later_corpora(tmp_path):
    """What makes one file per corpus possible: adding or editing a later corpus leaves it unchanged."""
    a = write_corpus(tmp_path, "a", ["One.", "Two.", "One."])
    b = write_corpus(tmp_path, "b", ["Two.", "Three."])
    alone = dedup.find_duplicates([], a, tmp_path / "text" / "alone.json")
    assert alone["parts"] == {"a/part_0.txt": {"documents": 3, "drop": [2]}}
    c = write_corpus(tmp_path, "c", ["Three.", "One.", "Four."])
    found_c = dedup.find_duplicates([a, b], c, tmp_path / "text" / "c.json")
    assert found_c["duplicate_of"] == {"a": 1, "b": 1} and found_c["parts"]["c/part_0.txt"]["drop"] == [0, 1]
    # The order of the earlier corpora names the kept copy, but never changes what is dropped.
    reordered = dedup.find_duplicates([b, a], c, tmp_path / "text" / "c2.json")
    assert reordered["parts"] == found_c["parts"] and reordered["earlier"] == ["b", "a"]


def test_part_drops_finds_its_entry_from_any_working_directory(tmp_path, monkeypatch):
    a = write_corpus(tmp_path, "a", ["One.", "One.", "Two."])
    out = tmp_path / "text" / "a" / "duplicates.json"
    dedup.find_duplicates([], a, out)
    assert dedup.part_drops(out, tmp_path / "text" / "a" / "part_0.txt") == (3, {1})
    monkeypatch.chdir(tmp_path)
    assert dedup.part_drops("text/a/duplicates.json", "text/a/part_0.txt") == (3, {1})
    with pytest.raises(BadInput, match=r"has no entry for part_9\.txt"):
        dedup.part_drops(out, tmp_path / "text" / "a" / "part_9.txt")
    write_corpus(tmp_path, "b", ["Three."])
    with pytest.raises(BadInput, match=r"has no entry for \.\./b/part_0\.txt \(written for another corpus"):
        dedup.part_drops(out, tmp_path / "text" / "b" / "part_0.txt")


def test_dedup_cli_logs_counts_and_rejects_bad_files(repo_root, tmp_path):
    a = write_corpus(tmp_path, "a", ["One.", "Two."])
    b = write_corpus(tmp_path, "b", ["Two.", "Three."])
    out = tmp_path / "text" / "b" / "duplicates.json"
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.dedup", "--earlier", str(a), "--hashes", str(b),
                          "--out", str(out)], cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "b: 2 documents, 1 exact duplicates (the kept copy in: 1 of a), checked against 1 earlier" in run.stdout
    assert json.loads(out.read_text())["parts"] == {"part_0.txt": {"documents": 2, "drop": [0]}}
    # The first corpus in config order: no --earlier files (the rule passes the flag with none).
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.dedup", "--earlier", "--hashes", str(a),
                          "--out", str(tmp_path / "a.json")], cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 0 and "a: 2 documents, 0 exact duplicates, checked against 0 earlier" in run.stdout
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.dedup", "--earlier", str(tmp_path / "bad.npz"),
                          "--hashes", str(b), "--out", str(tmp_path / "d.json")],
                         cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "bad.npz is not a document-hash file" in run.stderr and not (tmp_path / "d.json").exists()
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.dedup", "--earlier", str(b),
                          "--hashes", str(b), "--out", str(tmp_path / "d.json")],
                         cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 1 and "two hash files in one folder" in run.stderr


def test_corpus_cli_writes_hashes_and_stats(repo_root, tmp_path):
    source = tmp_path / "t.jsonl"
    source.write_text("".join(json.dumps({"text": f"Document number {i}."}) + "\n" for i in range(5)))
    spec = json.dumps({"type": "text", "path": str(source), "parts": 2, "max_documents": 3, "weight": 2.0})
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.corpus", "--source", spec, "--out",
                          str(tmp_path / "part_0.txt"), str(tmp_path / "part_1.txt"), "--hashes",
                          str(tmp_path / "h.npz"), "--stats", str(tmp_path / "s.json")],
                         cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "max_documents=3 reached" in run.stdout
    assert json.loads((tmp_path / "s.json").read_text())["documents_kept"] == 3
    with np.load(tmp_path / "h.npz") as f:
        assert len(f["hash"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.npz", "part_0.txt", "part_1.txt", "s.json", "t.jsonl"]
