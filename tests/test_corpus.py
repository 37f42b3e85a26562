"""Corpus extraction: the real Wikipedia excerpt, localized/old dumps, the user's files, Hugging Face datasets."""
import bz2
import gzip
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from workflow_scripts.data import corpus
from workflow_scripts.errors import BadInput


def documents(paths):
    """The documents of part files, each a list of sentence lines."""
    docs = []
    for path in paths:
        text = Path(path).read_text(encoding="utf-8")
        docs += [block.split("\n") for block in text.split("\n\n") if block]
    return docs


@pytest.fixture(scope="module")
def wiki_parts(wiki_dump, tmp_path_factory):
    out = tmp_path_factory.mktemp("wiki")
    parts = [out / "part_0.txt", out / "part_1.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "parts": 2}, parts)
    return parts, stats


# -- the real Wikipedia excerpt ----------------------------------------------------------------------


def test_no_markup_survives(wiki_parts):
    parts, _ = wiki_parts
    text = "".join(p.read_text(encoding="utf-8") for p in parts)
    for marker in ("{{", "}}", "[[", "]]", "<ref", "</ref", "{|", "|}", "<!--", "&nbsp;", "&amp;", "&quot;",
                   "thumb|", "'''", "__NOTOC__", "http://", "https://"):
        assert marker not in text, marker
    for line in text.split("\n"):
        assert not re.match(r"(File|Image|Category|Media):", line), line
        assert not re.match(r"=+[^=]+=+$", line), line  # headings
        assert not re.match(r"[|!{}]|[*#:;]+ ?[*#:;]", line), line  # table rows, list markers
    # a numbered list item from Animal Farm (the Seven Commandments) keeps its prose, not its "#"
    assert "\nNo animal shall wear clothes.\n" in text


def test_counts_match_the_raw_dump(wiki_dump, wiki_parts):
    """Redirects and non-article pages are dropped: counted independently on the raw XML."""
    parts, stats = wiki_parts
    raw = bz2.decompress(wiki_dump.read_bytes()).decode("utf-8")
    pages = re.findall(r"<page>.*?</page>", raw, re.S)
    articles = [p for p in pages if "<ns>0</ns>" in p]
    redirects = [p for p in articles if "<redirect" in p]
    assert stats.read == len(pages) == 206
    assert stats.dropped["not_an_article"] == len(pages) - len(articles)
    assert stats.dropped["redirect"] == len(redirects) > 50
    assert stats.min_chars == 200
    kept = len(articles) - len(redirects) - stats.dropped["empty_after_cleaning"] - stats.dropped[
        "shorter_than_min_chars"]
    assert stats.kept == kept == len(documents(parts)) > 90
    text = "".join(p.read_text(encoding="utf-8") for p in parts)
    assert not re.search(r"^#?redirect\b", text, re.M | re.I)
    assert "Nupedia and Wikipedia" not in text  # the namespace-4 page


def test_known_articles_start_cleanly(wiki_parts):
    parts, _ = wiki_parts
    first_lines = {doc[0] for doc in documents(parts)}
    assert ("Anarchism is a political philosophy that advocates self-governed societies based on "
            "voluntary institutions.") in first_lines
    # the Greek survives, the removed pronunciation template leaves no "(; "
    assert any(line.startswith("In Greek mythology, Achilles (Ἀχιλλεύς, Akhilleus) was a Greek hero")
               for line in first_lines)
    anarchism = next(doc for doc in documents(parts) if doc[0].startswith("Anarchism is a political"))
    assert anarchism[1].startswith("These are often described as stateless societies")
    assert not any(line.startswith(("See also", "References", "External links")) for line in anarchism)


def test_output_format(wiki_parts):
    parts, stats = wiki_parts
    for part in parts:
        text = part.read_text(encoding="utf-8")
        assert text.endswith("\n\n") and "\n\n\n" not in text and not text.startswith("\n")
        for line in text.split("\n"):
            assert line == line.strip()
            assert unicodedata.is_normalized("NFC", line)
    assert stats.sentences == sum(len(d) for d in documents(parts))


def test_parts_balanced_and_deterministic(wiki_dump, wiki_parts, tmp_path, monkeypatch):
    parts, _ = wiki_parts
    sizes = [len(p.read_text(encoding="utf-8")) for p in parts]
    largest_doc = max(len("\n".join(d)) + 2 for d in documents(parts))
    assert abs(sizes[0] - sizes[1]) <= largest_doc  # greedy to the smallest part
    # same input -> same bytes, also when worker processes clean (small batches: several rounds)
    monkeypatch.setattr(corpus, "POOL_BATCH_PER_WORKER", 4)
    again = [tmp_path / "a.txt", tmp_path / "b.txt"]
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "parts": 2}, again, workers=2)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in parts]


# -- other dumps: localized namespaces, other schema versions ------------------------------------------

LONG = "This sentence is long enough to make the article pass the minimum size check. " * 4


def write_dump(path: Path, version: str, namespaces: dict, pages: list, with_ns: bool = True) -> Path:
    ns_xml = "\n".join(f'<namespace key="{k}" case="first-letter">{v}</namespace>' if v else
                       f'<namespace key="{k}" case="first-letter" />' for k, v in namespaces.items())
    page_xml = []
    for title, ns, text, redirect in pages:
        page_xml.append(
            f"<page><title>{title}</title>" + (f"<ns>{ns}</ns>" if with_ns else "") + "<id>1</id>"
            + ('<redirect title="X" />' if redirect else "")
            + f'<revision><id>2</id><text xml:space="preserve">{text}</text></revision></page>')
    path.write_text(
        f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-{version}/" version="{version}" xml:lang="de">'
        f"<siteinfo><sitename>Wikipedia</sitename><namespaces>{ns_xml}</namespaces></siteinfo>"
        + "".join(page_xml) + "</mediawiki>", encoding="utf-8")
    return path


GERMAN = {-2: "Medium", 0: "", 1: "Diskussion", 6: "Datei", 14: "Kategorie"}


def test_localized_dump_new_schema(tmp_path):
    dump = write_dump(tmp_path / "dewiki.xml", "0.11", GERMAN, [
        ("Berlin", 0, "'''Berlin''' ist die Hauptstadt. [[Datei:B.jpg|mini|Das [[Tor]]]] " + LONG
         + "\n[[Kategorie:Stadt]]\n[[en:Berlin]]", False),
        ("Diskussion:Berlin", 1, "Talk page text that must not appear. " + LONG, False),
        ("Kategorie:Stadt", 14, "Category page text that must not appear. " + LONG, False),
        ("Hauptstadt Deutschlands", 0, "#WEITERLEITUNG [[Berlin]]", True),
    ])
    out = [tmp_path / "p.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(dump)}, out)
    text = out[0].read_text(encoding="utf-8")
    assert text.startswith("Berlin ist die Hauptstadt.\nThis sentence")
    assert "Datei" not in text and "Kategorie" not in text and "Tor" not in text and "en:" not in text
    assert "must not appear" not in text
    assert (stats.kept, stats.dropped["redirect"], stats.dropped["not_an_article"]) == (1, 1, 2)


def test_old_schema_without_ns_elements(tmp_path):
    """export-0.3 has no <ns>: the namespace comes from the title prefix; .xml.bz2 is read too."""
    dump = write_dump(tmp_path / "old.xml", "0.3", GERMAN, [
        ("Diskussion:Alt", None, "Talk. " + LONG, False), ("Alt", None, "Article text. " + LONG, False)],
        with_ns=False)
    packed = tmp_path / "old.xml.bz2"
    packed.write_bytes(bz2.compress(dump.read_bytes()))
    out = [tmp_path / "p.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(packed)}, out)
    assert out[0].read_text(encoding="utf-8").startswith("Article text.\n")
    assert stats.dropped["not_an_article"] == 1


def test_truncated_dump_is_one_clear_error(wiki_dump, tmp_path):
    cut = tmp_path / "cut.xml"
    cut.write_bytes(bz2.decompress(wiki_dump.read_bytes())[:200_000])
    out = [tmp_path / "p.txt"]
    with pytest.raises(BadInput, match=r"cannot read wikipedia dump .*cut\.xml"):
        corpus.extract({"type": "wikipedia", "path": str(cut)}, out)
    assert list(tmp_path.iterdir()) == [cut]  # no part, no temporary file left


# -- the user's text files ---------------------------------------------------------------------------


@pytest.fixture
def text_folder(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    root = tmp_path / "texts"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("Doc one line one. Still doc one.\nWrapped line of\ndoc one.\n\n\nDoc two here.\n")
    with gzip.open(root / "b.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write(json.dumps({"body": "Doc three.\n\nIts second paragraph.", "id": 1}) + "\n\n")
        f.write(json.dumps({"body": "Doc four has an accent: Cafe\u0301.", "id": 2}) + "\n")
    pq.write_table(pa.table({"body": ["Doc five from parquet.", None, "Doc six."], "n": [1, 2, 3]}),
                   root / "c.parquet", row_group_size=2)
    (root / "sub" / "d.txt.bz2").write_bytes(bz2.compress("Doc seven, compressed.\n".encode()))
    (root / "sub" / "e.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress((json.dumps({"body": "Doc eight, zstd."}) + "\n").encode()))
    (root / "README.md").write_text("Not a corpus file.")
    return root


def test_text_folder_all_formats(text_folder, tmp_path):
    out = [tmp_path / "p.txt"]
    stats = corpus.extract({"type": "text", "path": str(text_folder), "text_column": "body"}, out)
    # files in sorted order (a.txt, b.jsonl.gz, c.parquet, sub/d.txt.bz2, sub/e.jsonl.zst), README skipped
    assert documents(out) == [
        ["Doc one line one.", "Still doc one.", "Wrapped line of doc one."],
        ["Doc two here."],
        ["Doc three.", "Its second paragraph."],
        ["Doc four has an accent: Café."],  # NFC: e + combining acute -> é
        ["Doc five from parquet."], ["Doc six."], ["Doc seven, compressed."], ["Doc eight, zstd."]]
    assert "Cafe\u0301" not in out[0].read_text(encoding="utf-8")
    assert stats.read == 9 and stats.kept == 8 and stats.dropped["empty_after_cleaning"] == 1


def test_non_latin_scripts_are_kept(tmp_path):
    source = tmp_path / "world.txt"
    source.write_text("东京是日本的首都。它很大！\n\nयह एक वाक्य है। यह दूसरा है।\n\n"
                      "Москва — столица России. Она большая.\n\nهذه جملة. هل هذه جملة أخرى؟\n", encoding="utf-8")
    out = [tmp_path / "p.txt"]
    corpus.extract({"type": "text", "path": str(source)}, out)
    assert documents(out) == [["东京是日本的首都。", "它很大！"], ["यह एक वाक्य है।", "यह दूसरा है।"],
                              ["Москва — столица России.", "Она большая."], ["هذه جملة.", "هل هذه جملة أخرى؟"]]


def test_min_chars(tmp_path):
    source = tmp_path / "t.txt"
    source.write_text("Short.\n\nThis one is a good deal longer than the other.\n")
    out = [tmp_path / "p.txt"]
    stats = corpus.extract({"type": "text", "path": str(source), "min_chars": 20}, out)
    assert documents(out) == [["This one is a good deal longer than the other."]]
    assert stats.dropped["shorter_than_min_chars"] == 1 and stats.min_chars == 20


@pytest.mark.parametrize("content, message", [
    ("", r"no documents kept from .*empty\.txt"),
    ("\n\n   \n", r"no documents kept from .*empty\.txt"),
])
def test_empty_input_is_an_error(tmp_path, content, message):
    source = tmp_path / "empty.txt"
    source.write_text(content)
    out = [tmp_path / "out" / "p.txt"]
    with pytest.raises(BadInput, match=message):
        corpus.extract({"type": "text", "path": str(source)}, out)
    assert not list((tmp_path / "out").iterdir())  # nothing half-written left behind


def test_bad_inputs_name_the_file_and_row(tmp_path):
    out = [tmp_path / "p.txt"]
    missing = tmp_path / "nope"
    with pytest.raises(BadInput, match=r"text source .*nope does not exist"):
        corpus.extract({"type": "text", "path": str(missing)}, out)
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(BadInput, match=r"no \.txt, \.jsonl or \.parquet files .*emptydir"):
        corpus.extract({"type": "text", "path": str(tmp_path / "emptydir")}, out)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "Fine row."}\n{"content": "wrong key"}\n')
    with pytest.raises(BadInput, match=r"rows\.jsonl line 2 has no `text` field .*it has: content"):
        corpus.extract({"type": "text", "path": str(rows)}, out)
    rows.write_text('{"text": "Fine row."}\n{not json\n')
    with pytest.raises(BadInput, match=r"rows\.jsonl, line 2: not valid JSON"):
        corpus.extract({"type": "text", "path": str(rows)}, out)
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "t.parquet")
    with pytest.raises(BadInput, match=r"t\.parquet has no column `text` .*it has: content"):
        corpus.extract({"type": "text", "path": str(tmp_path / "t.parquet")}, out)
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(BadInput, match=r"notes\.md is not a \.txt, \.jsonl or \.parquet file"):
        corpus.extract({"type": "text", "path": str(tmp_path / "notes.md")}, out)
    assert not out[0].exists()


def test_truncated_archive_and_endless_block(tmp_path, monkeypatch, capsys):
    packed = tmp_path / "t.txt.gz"
    whole = gzip.compress("".join(f"Document {i}.\n\n" for i in range(5000)).encode())
    packed.write_bytes(whole[:len(whole) // 2])
    out = [tmp_path / "p.txt"]
    with pytest.raises(BadInput, match=r"cannot read .*t\.txt\.gz"):
        corpus.extract({"type": "text", "path": str(packed)}, out)
    import zstandard

    whole = zstandard.ZstdCompressor().compress("".join(f'{{"text": "Row {i}."}}\n' for i in range(5000)).encode())
    (tmp_path / "t.jsonl.zst").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(BadInput, match=r"cannot read .*t\.jsonl\.zst: .*truncated"):
        corpus.extract({"type": "text", "path": str(tmp_path / "t.jsonl.zst")}, out)
    # a file of sentences with no blank line at all is cut into bounded documents, with a warning
    from workflow_scripts.data.sources import textfiles

    monkeypatch.setattr(textfiles, "MAX_DOCUMENT_CHARS", 100)
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"Sentence number {i}.\n" for i in range(30)))
    stats = corpus.extract({"type": "text", "path": str(lines)}, out)
    docs = documents(out)
    assert stats.kept == len(docs) == 6 and sum(map(len, docs)) == 30
    assert "without a blank line" in capsys.readouterr().out


@pytest.mark.parametrize("compression", ["gz", "bz2", "zst"])
def test_truncated_compressed_parquet_is_one_line(tmp_path, compression):
    """A compressed parquet is decompressed to a temporary file before pyarrow sees it: a cut archive
    fails there, and says so in one line."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    buffer = io.BytesIO()
    pq.write_table(pa.table({"text": [f"Document number {i} of many." for i in range(5000)]}), buffer)
    compress = {"gz": gzip.compress, "bz2": bz2.compress, "zst": zstandard.ZstdCompressor().compress}[compression]
    whole = compress(buffer.getvalue())
    packed = tmp_path / f"t.parquet.{compression}"
    packed.write_bytes(whole[:len(whole) // 2])
    out = [tmp_path / "out" / "p.txt"]
    with pytest.raises(BadInput, match=rf"^corpus: cannot read .*t\.parquet\.{compression}: ") as err:
        corpus.extract({"type": "text", "path": str(packed)}, out)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_parquet_text_column_must_hold_strings(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [1, 2, 3]}), tmp_path / "ids.parquet")
    out = [tmp_path / "out" / "p.txt"]
    with pytest.raises(BadInput, match=r"ids\.parquet: column `text` holds int64, not strings"):
        corpus.extract({"type": "text", "path": str(tmp_path / "ids.parquet")}, out)
    # strings stored dictionary-encoded (a pandas category) are strings too
    pq.write_table(pa.table({"text": pa.array(["First document.", "Second one."]).dictionary_encode()}),
                   tmp_path / "cat.parquet")
    corpus.extract({"type": "text", "path": str(tmp_path / "cat.parquet")}, out)
    assert documents(out) == [["First document."], ["Second one."]]


def test_fewer_documents_than_parts_is_a_warning_and_leaves_a_part_empty(tmp_path, capsys):
    source = tmp_path / "t.txt"
    source.write_text("One document.\n\nTwo documents.\n")
    out = [tmp_path / f"p{i}.txt" for i in range(3)]
    corpus.extract({"type": "text", "path": str(source), "parts": 3}, out)
    assert re.search(r"WARNING: \S+t\.txt gave 2 documents, fewer than parts=3: 1 part\(s\) stay empty",
                     capsys.readouterr().out)
    assert sorted(p.read_text() for p in out) == ["", "One document.\n\n", "Two documents.\n\n"]


# -- Hugging Face datasets (offline: local files in the hub's formats) ---------------------------------


@pytest.fixture
def hf_files(tmp_path):
    data = tmp_path / "my_dataset" / "data"
    data.mkdir(parents=True)
    with open(data / "train-00000.jsonl", "w") as f:
        for i in range(3):
            f.write(json.dumps({"text": f"Row {i} first sentence. Row {i} second sentence.", "label": i}) + "\n")
    return tmp_path / "my_dataset"


def test_huggingface_builder_with_data_files(hf_files, tmp_path):
    out = [tmp_path / "p.txt"]
    stats = corpus.extract({"type": "huggingface", "name": "json", "path": str(hf_files / "data" / "*.jsonl"),
                            "split": "train", "text_column": "text", "config": None}, out)
    assert documents(out)[0] == ["Row 0 first sentence.", "Row 0 second sentence."]
    assert stats.kept == 3


def test_huggingface_local_dataset_folder_and_saved_dataset(hf_files, tmp_path):
    out = [tmp_path / "p.txt"]
    corpus.extract({"type": "huggingface", "name": str(hf_files), "split": "train"}, out)
    assert len(documents(out)) == 3
    import datasets

    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"body": ["Saved one.", "Saved two."]})}
                         ).save_to_disk(str(saved))
    corpus.extract({"type": "huggingface", "name": str(saved), "split": "train", "text_column": "body"}, out)
    assert documents(out) == [["Saved one."], ["Saved two."]]
    with pytest.raises(BadInput, match=r"split 'test': no such split \(it has: train\)"):
        corpus.extract({"type": "huggingface", "name": str(saved), "split": "test", "text_column": "body"}, out)


def test_huggingface_missing_column(hf_files, tmp_path):
    out = [tmp_path / "p.txt"]
    with pytest.raises(BadInput, match=r"has no column `body` \(text_column; it has: text, label\)"):
        corpus.extract({"type": "huggingface", "name": str(hf_files), "text_column": "body"}, out)


def test_huggingface_hub_unreachable_is_one_clear_line(repo_root, tmp_path):
    spec = json.dumps({"type": "huggingface", "name": "bookcorpus", "split": "train", "text_column": "text"})
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.corpus", "--source", spec,
                          "--out", str(tmp_path / "p.txt")], cwd=repo_root, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith(
        "corpus: cannot load Hugging Face dataset 'bookcorpus', split 'train':")
    assert "Traceback" not in run.stderr and not (tmp_path / "p.txt").exists()


# -- the command line the rule runs --------------------------------------------------------------------


def test_cli_as_the_rule_calls_it(repo_root, tmp_path):
    source = tmp_path / "t.txt"
    source.write_text("First document. It has two sentences.\n\nSecond document.\n")
    spec = json.dumps({"type": "text", "path": str(source), "parts": 2, "min_chars": None})
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.corpus", "--source", spec,
                          "--out", str(tmp_path / "part_0.txt"), str(tmp_path / "part_1.txt")],
                         cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "part_0.txt").read_text() == "First document.\nIt has two sentences.\n\n"
    assert (tmp_path / "part_1.txt").read_text() == "Second document.\n\n"
    assert "2 kept" in run.stdout
    source.write_text("")
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.corpus", "--source", spec,
                          "--out", str(tmp_path / "part_0.txt"), str(tmp_path / "part_1.txt")],
                         cwd=repo_root, capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0 and "no documents kept" in run.stderr  # one line, no traceback


def test_source_defaults_are_the_schemas(repo_root):
    """Entries written by hand take the schema's defaults ($defs.corpus): the one list in code follows it."""
    import yaml

    properties = yaml.safe_load((repo_root / "config/schema.yaml").read_text())["$defs"]["corpus"]["properties"]
    assert corpus.SOURCE_DEFAULTS == {k: properties[k]["default"] for k in corpus.SOURCE_DEFAULTS}
