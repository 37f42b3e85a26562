"""Decompress a multistream .bz2 (many bz2 streams end to end) in worker processes, bytes in file order.

Wikipedia's pages-articles-multistream dumps are one bz2 stream per 100 pages (plus a first
stream holding <siteinfo> and a last one holding </mediawiki>), with an index
(`...-multistream-index.txt.bz2`, lines `offset:page_id:title`) giving each stream's byte
offset. pbzip2 writes the same layout, cut at arbitrary byte positions. Streams decompress
independently, so consecutive streams are grouped into tasks of about GROUP_BYTES compressed
bytes and a process pool decompresses them while this process consumes the results IN ORDER:
the reader yields exactly the bytes the serial `bz2.open(...).read()` would, so everything
downstream (XML parsing, cleaning, parts) is byte-identical to the serial path.

Stream starts come from the index when it sits beside the dump, else from scanning the file
for a stream header followed by the first block's magic number ("BZh" level "1AY&SY"): a
stream's first block starts byte-aligned right after its 4-byte header, while later blocks
are bit-aligned anywhere. A false match needs a later block's magic to fall byte-aligned
right after four bytes that happen to read "BZh1".."BZh9" (~3e-10 per block, ~1e-5 for a
20 GB dump); it would make that task fail to decompress, loudly, never change the text.
"""
import bz2
import collections
import io
import re
from pathlib import Path
from workflow_scripts.errors import BadInput

GROUP_BYTES = 4 << 20      # compressed bytes per decompression task (~16 MB of XML) at most ...
MIN_TASKS_PER_WORKER = 8   # ... but a small dump is still cut into this many tasks per worker
SCAN_BLOCK = 32 << 20      # bytes read at a time when scanning for stream headers
DETECT_BYTES = 64 << 20    # a file counts as multistream if a 2nd stream starts this early
_BLOCK_MAGIC = b"1AY&SY"   # 0x314159265359, the first block's magic, after "BZh" + level
_LEVELS = frozenset(b"123456789")


def index_for(dump: Path) -> Path | None:
    """The -index file Wikipedia publishes beside a multistream dump, if it is there."""
    name = dump.name
    candidates = []
    if name.endswith(".xml.bz2"):  # enwiki-2024-pages-articles-multistream.xml.bz2
        candidates.append(name[:-len(".xml.bz2")] + "-index.txt.bz2")
    m = re.fullmatch(r"(.*-multistream)(\d+)\.xml-(p\d+p\d+)\.bz2", name)  # the dump split in files
    if m:
        candidates.append(f"{m[1]}-index{m[2]}.txt-{m[3]}.bz2")
    for candidate in candidates:
        path = dump.with_name(candidate)
        if path.is_file():
            return path
    return None


def _is_stream_start(data: bytes, i: int) -> bool:
    """Whether the block magic at data[i] is preceded by a stream header ("BZh" + level)."""
    return i >= 4 and data[i - 4:i - 1] == b"BZh" and data[i - 1] in _LEVELS


def scan_stream_starts(path: Path, limit: int | None = None):
    """Byte offsets of the stream headers in the file (0 first), in order, found by scanning."""
    last = -1
    with open(path, "rb") as f:
        pos, tail = 0, b""  # tail: the end of the previous block, for a header across the seam
        while limit is None or pos < limit:
            block = f.read(SCAN_BLOCK)
            if not block:
                return
            data = tail + block
            start = pos - len(tail)  # file offset of data[0]
            i = data.find(_BLOCK_MAGIC, 4)
            while i >= 0:
                if _is_stream_start(data, i) and start + i - 4 > last:
                    last = start + i - 4
                    yield last
                i = data.find(_BLOCK_MAGIC, i + 1)
            pos += len(block)
            tail = data[-(4 + len(_BLOCK_MAGIC) - 1):]


def index_stream_starts(index: Path):
    """Byte offsets of the page streams listed in a multistream index, in order (0 first)."""
    yield 0
    last = 0
    with bz2.open(index, "rb") as f:
        for number, line in enumerate(f, 1):
            head = line.split(b":", 1)[0]
            try:
                offset = int(head)
            except ValueError:
                raise BadInput(f"corpus: {index} line {number} does not start with a byte offset: "
                                 f"{line[:60]!r}") from None
            if offset < last:
                raise BadInput(f"corpus: {index} line {number}: offset {offset} goes backwards")
            if offset > last:
                yield offset
                last = offset


def group_ranges(starts, size: int, group_bytes: int):
    """(begin, end) byte ranges of whole streams, each at least group_bytes long (but the last)."""
    begin = 0
    for offset in starts:
        if offset - begin >= group_bytes:
            yield begin, offset
            begin = offset
    if begin < size:
        yield begin, size


def decompress_range(path: str, begin: int, end: int) -> bytes:
    """The decompressed bytes of the whole streams in [begin, end) (run in a worker process)."""
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(end - begin)
        following = f.read(3)  # the next stream's header, unless this range ends the file
    for offset, head in ((begin, data[:3]), (end, following)):
        if head and head != b"BZh":
            raise OSError(f"no bz2 stream starts at byte {offset} (index does not match the dump?)")
    try:
        return bz2.decompress(data)  # reads every stream in the range; fails on a cut one
    except (OSError, EOFError, ValueError) as e:
        raise OSError(f"bytes {begin}-{end}: {e}") from None


class ParallelReader(io.RawIOBase):
    """A read-only byte stream over the decompressed dump; `pool` decompresses up to `ahead` ranges early."""

    def __init__(self, path: Path, ranges, pool, ahead: int):
        self._path, self._ranges, self._pool, self._ahead = str(path), iter(ranges), pool, max(ahead, 1)
        self._pending = collections.deque()
        self._buffer, self._pos = memoryview(b""), 0
        self._fill()

    def _fill(self):
        while len(self._pending) < self._ahead:
            span = next(self._ranges, None)
            if span is None:
                return
            self._pending.append(self._pool.apply_async(decompress_range, (self._path, *span)))

    def readable(self):
        return True

    def readinto(self, buffer) -> int:
        while self._pos >= len(self._buffer):
            if not self._pending:
                return 0
            self._buffer, self._pos = memoryview(self._pending.popleft().get()), 0
            self._fill()
        n = min(len(buffer), len(self._buffer) - self._pos)
        buffer[:n] = self._buffer[self._pos:self._pos + n]
        self._pos += n
        return n


def stream_starts(path: Path):
    """(stream starts, where they come from) of a multistream file; None if it is a single stream.

    A single-stream file is told apart by scanning its head only: a multistream dump has a small
    first stream (the <siteinfo>), pbzip2 one stream per 900 kB block.
    """
    path = Path(path)
    index = index_for(path)
    if index is not None:
        return index_stream_starts(index), f"stream offsets from {index.name}"
    head = scan_stream_starts(path, limit=DETECT_BYTES)
    if next(head, None) != 0 or next(head, None) is None:
        return None
    return scan_stream_starts(path), "stream offsets found by scanning for bz2 stream headers"


def open_parallel(path: Path, pool, workers: int):
    """(ParallelReader over the dump, a note saying where the stream offsets came from), or None
    when the file is a single stream."""
    found = stream_starts(path)
    if found is None:
        return None
    starts, how = found
    size = Path(path).stat().st_size
    ranges = group_ranges(starts, size, min(GROUP_BYTES, size // (MIN_TASKS_PER_WORKER * workers) + 1))
    return ParallelReader(path, ranges, pool, ahead=2 * workers), how

