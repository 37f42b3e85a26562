"""Documents from consecutive rows (.jsonl lines, .parquet rows, Hugging Face rows): a corpus's `documents:` block.

A row is one document unless the block says otherwise:
  by: row        each row is a document (the default)
  by: column     consecutive rows with the same value in `column` (a book or article id) form one
  by: rows       every `rows` rows form one
  by: blank_row  an empty (or all-whitespace) row ends one; the blank row itself is dropped
  by: chars      rows are added until the next would take the document past `chars` characters
For every `by` but row, `chars` also caps a document (default 1,000,000, the cut .txt files get),
so a column that never changes, or a dataset without blank rows, still gives bounded documents.
A single row longer than `chars` is a document of its own: rows are never cut.

Rows are joined with a blank line between them. The corpus stage splits a document into
paragraphs at blank lines and into sentences within a paragraph, so a row's end is always a
sentence end and no sentence spans two rows: a sentence-per-row dataset keeps one sentence per row.
Streaming: one document's rows (at most `chars` characters plus one row) are held at a time.
"""
from workflow_scripts.errors import BadInput

BY = ("row", "column", "rows", "blank_row", "chars")
# The schema's defaults of the block's keys (tests/test_row_documents.py keeps the two equal).
DEFAULTS = {"by": "row", "column": None, "rows": None, "chars": 1_000_000}
ROW_SOURCES = ("text", "huggingface")


def settings(block: dict | None, where: str = "corpus: ") -> dict:
    """The block with defaults filled, checked; `where` starts each error line (e.g. "config key corpora.books.")."""
    block = dict(block or {})
    unknown = sorted(set(block) - set(DEFAULTS))
    if unknown:
        raise BadInput(f"{where}documents: unknown key {', '.join(map(repr, unknown))} "
                       f"(allowed: {', '.join(DEFAULTS)})")
    block = {**DEFAULTS, **{k: v for k, v in block.items() if v is not None}}
    by = block["by"]
    if by not in BY:
        raise BadInput(f"{where}documents.by: {by!r} is not one of {', '.join(BY)}")
    # by: column needs `column`, by: rows needs `rows`; either set for another `by` would do nothing.
    for key, what in (("column", "the column holding each row's document id"), ("rows", "rows per document")):
        if by == key and block[key] is None:
            raise BadInput(f"{where}documents: by {by} needs documents.{key} ({what})")
        if by != key and block[key] is not None:
            raise BadInput(f"{where}documents.{key}: only read with by: {key} (by is {by}); drop it or set by: {key}")
    for key in ("rows", "chars"):
        value = block[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BadInput(f"{where}documents.{key}: {value!r} is not a whole number >= 1")
    if by == "column" and not isinstance(block["column"], str):
        raise BadInput(f"{where}documents.column: {block['column']!r} is not a column name")
    return block


def check_source(source_type: str, block: dict | None, where: str = "corpus: ") -> dict:
    """settings() for a corpus of `source_type`: a wikipedia dump has no rows to group."""
    block = settings(block, where)
    if block["by"] != "row" and source_type not in ROW_SOURCES:
        raise BadInput(f"{where}documents: a {source_type} corpus makes a document of each article; "
                       f"documents.by {block['by']} applies to text (.jsonl/.parquet) and huggingface rows")
    return block


def row_fields(row, where: str, text_column: str, key_column: str | None) -> tuple:
    """(text, document id or None) of one row read as a dict (a .jsonl line, a datasets row); `where`
    names the row in errors ("file.jsonl line 3")."""
    for column, key in ((text_column, "text_column"), (key_column, "documents.column")):
        if column is not None and (not isinstance(row, dict) or column not in row):
            keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise BadInput(f"corpus: {where} has no `{column}` field ({key}; it has: {keys}): set {key} to one of those")
    text = row[text_column]
    if text is not None and not isinstance(text, str):
        raise BadInput(f"corpus: {where}: `{text_column}` is a {type(text).__name__}, not a string: fix those rows, "
                       "or set text_column to a field of strings")
    return text or "", None if key_column is None else row[key_column]


class RowGrouper:
    """Groups (text, key) rows into document strings; counts rows and documents for the log.

    `key` is the row's value in the id column with by: column, and ignored otherwise. One grouper
    can take several row streams (one per file): a document never spans two of them.
    """

    def __init__(self, block: dict | None, where: str = "corpus: "):
        self.block = settings(block, where)
        self.rows = self.documents = self.cut_at_chars = 0

    @property
    def key_column(self) -> str | None:
        """The column sources must read beside the text (by: column), else None."""
        return self.block["column"] if self.block["by"] == "column" else None

    def group(self, rows):
        """Yield each document's text: its rows' texts (None counts as empty) joined by blank lines."""
        by, n_rows, cap = self.block["by"], self.block["rows"], self.block["chars"]
        if by == "row":
            for text, _ in rows:
                self.rows += 1
                self.documents += 1
                yield text or ""
            return
        texts, size, taken, key_now = [], 0, 0, None  # the open document: texts, characters, rows, id
        for text, key in rows:
            self.rows += 1
            text = text or ""
            blank = not text.strip()
            new_id = by == "column" and taken and key != key_now
            too_long = not blank and texts and size + len(text) > cap
            ends_here = by == "blank_row" and blank
            if new_id or too_long or ends_here:
                if too_long and not new_id and by != "chars":
                    self.cut_at_chars += 1
                if texts:
                    yield self._close(texts)
                texts, size, taken = [], 0, 0
            if ends_here:
                continue
            key_now, taken = key, taken + 1
            if not blank:
                texts.append(text)
                size += len(text)
            if by == "rows" and taken == n_rows:
                if texts:
                    yield self._close(texts)
                texts, size, taken = [], 0, 0
        if texts:
            yield self._close(texts)

    def _close(self, texts: list) -> str:
        self.documents += 1
        return "\n\n".join(texts)

    def summary(self) -> str:
        """One log line: rows read, documents made, and how many the char cap cut (by: column/rows/blank_row)."""
        block = self.block
        how = {"column": f"column {block['column']!r}", "rows": f"{block['rows']} rows", "blank_row": "blank rows",
               "chars": f"up to {block['chars']} characters", "row": "one per row"}[block["by"]]
        line = f"corpus: {self.rows} rows -> {self.documents} documents (documents.by {block['by']}: {how})"
        if self.cut_at_chars:
            line += (f"; {self.cut_at_chars} cut at documents.chars={block['chars']} (check that the "
                     f"{'column changes between documents' if block['by'] == 'column' else 'boundaries exist'})")
        return line
