"""Test and benchmark input: a MediaWiki export written in Wikipedia's multistream bz2 layout.

Shared by tests/test_multistream.py and benchmarks/corpus_multistream.py.
"""
import bz2
import re
from pathlib import Path


def write_multistream(xml: bytes, dump: Path, pages_per_stream: int = 100, index: bool = True) -> list[int]:
    """Write a MediaWiki export as Wikipedia's multistream layout: a stream for the head (<siteinfo>),
    one per `pages_per_stream` pages, one for </mediawiki>; with `index`, the -index.txt.bz2 of
    `offset:page_id:title` lines beside it. Returns the stream offsets."""
    starts = [m.start() for m in re.finditer(rb"[ \t]*<page>", xml)]
    cuts = sorted({0, *starts[::pages_per_stream], xml.rindex(b"</mediawiki>"), len(xml)})
    offsets, lines, blob = [], [], bytearray()
    for begin, end in zip(cuts, cuts[1:], strict=False):
        offsets.append(len(blob))
        segment = xml[begin:end]
        for page in re.finditer(rb"<page>\s*<title>(.*?)</title>.*?<id>(\d+)</id>", segment, re.S):
            lines.append(b"%d:%s:%s\n" % (len(blob), page[2], page[1]))
        blob += bz2.compress(segment, 9)
    Path(dump).write_bytes(bytes(blob))
    if index:
        name = Path(dump).name
        Path(dump).with_name(name[:-len(".xml.bz2")] + "-index.txt.bz2").write_bytes(bz2.compress(b"".join(lines)))
    return offsets
