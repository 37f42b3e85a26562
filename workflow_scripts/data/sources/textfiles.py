"""Stream raw documents out of the user's own files: .txt, .jsonl, .parquet, each optionally .gz/.bz2/.zst.

`iter_documents(path, text_column, documents)` takes a file or a folder (searched recursively, in sorted
order, so the output never depends on the file system's listing order) and yields one string
per document:
- .txt: documents are separated by blank lines;
- .jsonl: one JSON object per line, a row whose text is its `text_column` field;
- .parquet: rows, the `text_column` column's values, read a batch at a time.
A row is a document unless the corpus's `documents:` block joins consecutive rows (row_documents).
Files are streamed (parquet by row batches), never loaded whole, except that a compressed
.parquet is first decompressed to a temporary file, since parquet needs random access.
"""
import bz2
import gzip
import io
import shutil
import tempfile
from pathlib import Path
from workflow_scripts.cli import json_lines
from workflow_scripts.data.sources.row_documents import RowGrouper, row_fields
from workflow_scripts.errors import BadInput

FORMATS = (".txt", ".jsonl", ".parquet")
# A .txt "document" (a block without blank lines) is cut at this many characters.
MAX_DOCUMENT_CHARS = 1_000_000
COMPRESSIONS = ("", ".gz", ".bz2", ".zst")


def split_suffix(path: Path) -> tuple[str, str]:
    """(format, compression) of a file name such as part.jsonl.zst, or ("", "") when not ours."""
    name = path.name.lower()
    for compression in COMPRESSIONS:
        for fmt in FORMATS:
            if name.endswith(fmt + compression):
                return fmt, compression
    return "", ""


def open_binary(path: Path, compression: str):
    if compression == ".gz":
        return gzip.open(path, "rb")
    if compression == ".bz2":
        return bz2.open(path, "rb")
    if compression == ".zst":
        return io.BufferedReader(_ZstdReader(path), buffer_size=1 << 20)
    return open(path, "rb")


class _ZstdReader(io.RawIOBase):
    """A .zst file as a byte stream that, like gzip and bz2, fails on a truncated file
    (zstandard's own stream_reader just stops early) and reads multi-frame files (pzstd)."""

    def __init__(self, path: Path):
        import zstandard

        self._file = open(path, "rb")
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._fed = False
        self._pending = b""

    def readable(self):
        return True

    def _decompress(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            if self._obj.eof:  # the next frame
                self._obj = self._dctx.decompressobj()
            out.append(self._obj.decompress(chunk))
            self._fed = True
            chunk = self._obj.unused_data if self._obj.eof else b""
        return b"".join(out)

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = self._file.read(1 << 20)
            if not chunk:
                if self._fed and not self._obj.eof:
                    raise EOFError("zstd file ended before the end-of-frame marker (truncated?)")
                return 0
            self._pending = self._decompress(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self):
        self._file.close()
        super().close()


def list_files(path: Path) -> list[Path]:
    """The input files under `path`, sorted; files of other kinds in a folder are skipped with a note."""
    if path.is_file():
        if not split_suffix(path)[0]:
            raise BadInput(f"corpus: {path} is not a .txt, .jsonl or .parquet file "
                             "(optionally .gz/.bz2/.zst compressed)")
        return [path]
    if not path.is_dir():
        raise BadInput(f"corpus: text source {path} does not exist")
    files, skipped = [], []
    for p in sorted(path.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts):
            (files if split_suffix(p)[0] else skipped).append(p)
    if skipped:
        print(f"corpus: skipping {len(skipped)} file(s) under {path} that are not .txt/.jsonl/.parquet, "
              f"e.g. {skipped[0]}", flush=True)
    if not files:
        raise BadInput(f"corpus: no .txt, .jsonl or .parquet files (optionally .gz/.bz2/.zst) under {path}")
    return files


def _txt_documents(stream, path: Path):
    lines, size, warned = [], 0, False
    for line in stream:
        if line.strip():
            lines.append(line)
            size += len(line)
            if size < MAX_DOCUMENT_CHARS:
                continue
            # No blank line for a million characters: not documents but one sentence per line,
            # most likely. Cut it, so memory stays bounded and documents stay document-sized.
            if not warned:
                print(f"corpus: {path} has a block of over {MAX_DOCUMENT_CHARS} characters without a blank "
                      "line; cutting it into documents of that size (separate documents by blank lines)",
                      flush=True)
                warned = True
        if lines:
            yield "".join(lines)
            lines, size = [], 0
    if lines:
        yield "".join(lines)


def _jsonl_rows(stream, path: Path, text_column: str, key_column: str | None):
    """(text, document id or None) per line; the id is the `key_column` field (documents.by: column)."""
    for number, row in json_lines(stream, f"corpus: {path}", "fix or remove that line, or move the file out of the corpus"):
        yield row_fields(row, f"{path} line {number}", text_column, key_column)


def _is_text_type(arrow_type) -> bool:
    """Whether a parquet column holds strings (plain, large, view or dictionary-encoded) or only nulls."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return (pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)
            or pa.types.is_string_view(arrow_type) or pa.types.is_null(arrow_type))


def _parquet_rows(path: Path, compression: str, text_column: str, key_column: str | None):
    """(text, document id or None) per row; the id is the `key_column` column (documents.by: column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with tempfile.TemporaryFile() as tmp:
        if compression:  # parquet needs random access: decompress to a temporary file first
            with open_binary(path, compression) as src:
                shutil.copyfileobj(src, tmp)
            tmp.seek(0)
        try:
            pf = pq.ParquetFile(tmp if compression else path)
            schema = pf.schema_arrow
            for column, key in ((text_column, "text_column"), (key_column, "documents.column")):
                if column is not None and column not in schema.names:
                    raise BadInput(f"corpus: {path} has no column `{column}` ({key}; it has: "
                                     f"{', '.join(schema.names)}): set {key} to one of those")
            column_type = schema.field(text_column).type
            if not _is_text_type(column_type):
                raise BadInput(f"corpus: {path}: column `{text_column}` holds {column_type}, not strings "
                                 "(text_column names the column with the text)")
            columns = [text_column] if key_column in (None, text_column) else [text_column, key_column]
            for batch in pf.iter_batches(batch_size=1024, columns=columns):
                texts = batch.column(0).to_pylist()
                keys = batch.column(columns.index(key_column)).to_pylist() if key_column else [None] * len(texts)
                yield from zip(texts, keys, strict=True)
        except pa.ArrowException as e:  # not parquet, or a corrupt page: ArrowInvalid & co.
            raise BadInput(f"corpus: cannot read parquet file {path}: {e}: write it again, or move it out "
                           "of the corpus") from None


def iter_file(path: Path, text_column: str = "text", grouper: RowGrouper | None = None):
    """A file's documents: blank-line blocks of a .txt; rows of a .jsonl/.parquet, grouped by `grouper`
    (config `documents:`; None: a row each). A document never spans two files."""
    fmt, compression = split_suffix(path)
    grouper = grouper or RowGrouper(None)
    try:
        if fmt == ".parquet":
            yield from grouper.group(_parquet_rows(path, compression, text_column, grouper.key_column))
            return
        with open_binary(path, compression) as raw:
            stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict")
            if fmt == ".txt":
                yield from _txt_documents(stream, path)
            else:
                yield from grouper.group(_jsonl_rows(stream, path, text_column, grouper.key_column))
    except UnicodeDecodeError as e:
        raise BadInput(f"corpus: {path} is not UTF-8 text ({e}): convert it (e.g. iconv -t UTF-8), or move "
                       "it out of the corpus") from None
    except (OSError, EOFError) + _zstd_errors(compression) as e:  # truncated or mislabelled archives
        raise BadInput(f"corpus: cannot read {path}: {e}: fetch or write it again, or move it out of the "
                       "corpus") from None


def _zstd_errors(compression: str) -> tuple:
    if compression != ".zst":
        return ()
    import zstandard

    return (zstandard.ZstdError,)


def iter_documents(path, text_column: str = "text", documents: dict | None = None):
    """Every document of a file or folder, files in sorted order; `documents` is the corpus's block
    (row_documents: how .jsonl/.parquet rows form documents; .txt files keep their blank-line blocks)."""
    grouper = RowGrouper(documents)
    files = list_files(Path(path))
    grouped = grouper.block["by"] != "row"
    if grouped and any(split_suffix(f)[0] == ".txt" for f in files):
        print(f"corpus: documents.by {grouper.block['by']} groups .jsonl/.parquet rows only: the .txt files "
              f"under {path} keep a document per blank-line block", flush=True)
    for file in files:
        yield from iter_file(file, text_column, grouper)
    if grouped:
        print(grouper.summary(), flush=True)
