"""Multistream dumps decompressed in parallel give the serial path's bytes; URL sources download once.

The multistream file is built from the real excerpt as Wikipedia builds pages-articles-multistream:
a first bz2 stream holding the <siteinfo> head, one stream per PAGES_PER_STREAM pages, a last
stream holding </mediawiki>, and an -index.txt.bz2 of `offset:page_id:title` lines.
"""
import bz2
from pathlib import Path

import pytest
from tests.helpers.multistream_data import write_multistream

from workflow_scripts.data import corpus
from workflow_scripts.data.sources import download, multistream
from workflow_scripts.errors import BadInput

PAGES_PER_STREAM = 10


def build_multistream(xml: bytes, dump: Path, pages_per_stream: int = PAGES_PER_STREAM, index: bool = True):
    return write_multistream(xml, dump, pages_per_stream, index)


@pytest.fixture(scope="module")
def xml(wiki_dump) -> bytes:
    return bz2.decompress(wiki_dump.read_bytes())


@pytest.fixture(scope="module")
def serial_parts(wiki_dump, tmp_path_factory):
    """The real excerpt (one bz2 stream) extracted by one process: the reference bytes."""
    out = tmp_path_factory.mktemp("serial")
    parts = [out / "part_0.txt", out / "part_1.txt"]
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "parts": 2}, parts)
    return [p.read_bytes() for p in parts]


def extract(dump: Path, out: Path, workers: int):
    parts = [out / "part_0.txt", out / "part_1.txt"]
    stats = corpus.extract({"type": "wikipedia", "path": str(dump), "parts": 2}, parts, workers=workers)
    return [p.read_bytes() for p in parts], stats


def test_layout_is_wikipedias(xml, tmp_path):
    dump = tmp_path / "enwiki-test-pages-articles-multistream.xml.bz2"
    offsets = build_multistream(xml, dump)
    assert len(offsets) == 2 + -(-206 // PAGES_PER_STREAM)  # head, 21 page streams, tail
    assert bz2.decompress(dump.read_bytes()) == xml  # bz2 reads concatenated streams as one
    assert multistream.index_for(dump) == tmp_path / "enwiki-test-pages-articles-multistream-index.txt.bz2"
    # Both ways of finding the streams find exactly the ones written.
    assert list(multistream.scan_stream_starts(dump)) == offsets
    assert list(multistream.index_stream_starts(multistream.index_for(dump))) == offsets[:-1]  # tail not indexed
    # The split-file naming of the big wikis finds its index too.
    split = tmp_path / "enwiki-test-pages-articles-multistream3.xml-p151574p311329.bz2"
    split.write_bytes(b"")
    (tmp_path / "enwiki-test-pages-articles-multistream-index3.txt-p151574p311329.bz2").write_bytes(b"")
    assert multistream.index_for(split).name == "enwiki-test-pages-articles-multistream-index3.txt-p151574p311329.bz2"


def test_scan_finds_headers_across_read_blocks(xml, tmp_path, monkeypatch):
    dump = tmp_path / "x.xml.bz2"
    offsets = build_multistream(xml, dump, index=False)
    for block in (7, 4096, 65536):  # stream headers straddle the seams between blocks
        monkeypatch.setattr(multistream, "SCAN_BLOCK", block)
        assert list(multistream.scan_stream_starts(dump)) == offsets


@pytest.mark.parametrize("with_index", [True, False], ids=["index", "scan"])
def test_parallel_decompression_is_byte_identical(xml, serial_parts, tmp_path, monkeypatch, capsys, with_index):
    dump = tmp_path / "enwiki-test-pages-articles-multistream.xml.bz2"
    build_multistream(xml, dump, index=with_index)
    monkeypatch.setattr(multistream, "GROUP_BYTES", 64 << 10)  # ~20 tasks from 1.7 MB
    monkeypatch.setattr(corpus, "POOL_BATCH_PER_WORKER", 8)
    parallel, stats = extract(dump, tmp_path, workers=2)
    log = capsys.readouterr().out
    assert "is multistream: 2 processes decompress its streams" in log
    assert ("index.txt.bz2" in log) == with_index and ("scanning" in log) == (not with_index)
    assert parallel == serial_parts
    assert stats.read == 206
    # One process reads the multistream file through the serial path: the same bytes too.
    (tmp_path / "one").mkdir()
    assert extract(dump, tmp_path / "one", workers=1)[0] == serial_parts


def test_single_stream_file_takes_the_ordinary_path(wiki_dump, serial_parts, tmp_path, capsys):
    assert multistream.stream_starts(wiki_dump) is None
    parallel, _ = extract(wiki_dump, tmp_path, workers=2)
    assert "multistream" not in capsys.readouterr().out
    assert parallel == serial_parts


def test_broken_multistream_is_one_clear_error(xml, tmp_path, monkeypatch):
    dump = tmp_path / "enwiki-test-pages-articles-multistream.xml.bz2"
    offsets = build_multistream(xml, dump)
    monkeypatch.setattr(multistream, "GROUP_BYTES", 64 << 10)
    data = bytearray(dump.read_bytes())
    middle = offsets[len(offsets) // 2]
    data[middle + 100:middle + 140] = bytes(40)  # garble one stream
    dump.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BadInput, match=r"cannot read wikipedia dump .*multistream\.xml\.bz2.*bytes \d+-\d+"):
        extract(dump, out, workers=2)
    assert not list(out.iterdir())  # no part, no temporary file
    # An index that does not belong to the dump is caught at the first wrong offset.
    build_multistream(xml, dump)
    index = multistream.index_for(dump)
    index.write_bytes(bz2.compress(b"100000:1:A\n300000:2:B\n"))
    with pytest.raises(BadInput, match=r"no bz2 stream starts at byte 100000 \(index does not match the dump\?\)"):
        extract(dump, out, workers=2)
    index.write_bytes(bz2.compress(b"garbage line\n"))
    with pytest.raises(BadInput, match=r"index\.txt\.bz2 line 1 does not start with a byte offset"):
        extract(dump, out, workers=2)


# -- a URL path: downloaded once, atomically ------------------------------------------------------


def test_file_url_download(wiki_dump, tmp_path):
    url = wiki_dump.resolve().as_uri()
    assert download.is_url(url) and not download.is_url(str(wiki_dump))
    assert download.url_filename(url) == "enwiki-excerpt.xml.bz2"
    assert download.url_filename("https://dumps.wikimedia.org/enwiki/latest/a%20b.xml.bz2?x=1") == "a b.xml.bz2"
    out = tmp_path / "resources" / "corpora" / "wiki" / "enwiki-excerpt.xml.bz2"
    download.main(["--url", url, "--out", str(out)])
    assert out.read_bytes() == wiki_dump.read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary file left
    with pytest.raises(SystemExit, match=r"download: cannot fetch file:///.*nope\.xml\.bz2"):
        download.main(["--url", (tmp_path / "nope.xml.bz2").as_uri(), "--out", str(tmp_path / "n.xml.bz2")])
    assert not (tmp_path / "n.xml.bz2").exists()
    with pytest.raises(SystemExit, match="is not an http"):
        download.main(["--url", str(wiki_dump), "--out", str(tmp_path / "x")])
