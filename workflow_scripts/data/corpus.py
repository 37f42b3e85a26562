"""One corpus source -> N text parts: one sentence per line, a blank line after each document.

    python -m workflow_scripts.data.corpus --source '<json corpus entry>' --out part_0.txt ... part_{N-1}.txt
        [--hashes doc_hashes.npz] [--stats stats.json] [--workers N]

The source is one entry of config `corpora:` (schema $defs.corpus). Documents are streamed from
the source (wikipedia dump, the user's text files, or a Hugging Face dataset), cleaned (wikitext
markup removed for wikipedia; Unicode NFC, whitespace collapsed, sentences split for all), and
each kept document goes whole to the part that holds the fewest characters so far, so parts are
balanced by size and the result depends only on the input. Parts are written under temporary
names and renamed at the end, all together, only when the run succeeds.

A .jsonl/.parquet or Hugging Face row is a document, unless the entry's `documents` block joins
consecutive rows (sources/row_documents.py); a joined row stays a paragraph of its own, so no
sentence spans two rows.

Size caps: reading stops once `max_documents` documents, or `max_chars` characters (of
sentences, as min_chars counts them), have been kept; the document that reaches max_chars is
kept. The rest of the source is never read.

--hashes writes, per kept document in the order read, a 64-bit hash of its text as written
(sentences joined by newlines: NFC, whitespace collapsed) and its part: arrays `hash` (uint64),
`part` (uint32) and `part_names` (the part file names), for workflow_scripts.data.dedup.
--stats writes what was read, kept and dropped (and why) as JSON (see `CorpusCounts.record`).

By hand, an entry may leave out keys that have a schema default: they take SOURCE_DEFAULTS
(the schema's defaults; tests/test_corpus.py keeps the two equal).
"""
import argparse
import contextlib
import hashlib
import heapq
import itertools
import os
import re
import time
import unicodedata
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.cli import json_object, one_line_errors
from workflow_scripts.data.sentences import split_sentences
from workflow_scripts.data.sources import row_documents
from workflow_scripts.errors import BadInput

# Default minimum document size (characters after cleaning) when the source leaves it null:
# Wikipedia stubs and leftovers of list pages carry little text; the user's own documents are
# kept as given.
DEFAULT_MIN_CHARS = {"wikipedia": 200, "text": 1, "huggingface": 1}
# The schema's defaults ($defs.corpus) of the keys extraction reads, for entries written by hand.
SOURCE_DEFAULTS = {"config": None, "split": "train", "text_column": "text", "min_chars": None,
                   "max_documents": None, "max_chars": None, "documents": {"by": "row"}}
# Control and format characters that survive extraction (soft hyphens, zero-width spaces, BOMs)
# except the joiners some scripts need (ZWJ/ZWNJ in Devanagari, Persian, emoji).
_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\u2060\ufeff]")
_BLANK_LINE = re.compile(r"\n\s*\n")
# Documents handed to the worker pool per worker and round (bounds memory: two rounds in flight).
POOL_BATCH_PER_WORKER = 64


def plain_paragraphs(text: str) -> list[str]:
    """Paragraphs of a plain-text document: blank lines separate them, single newlines are wrapping."""
    return [p for p in _BLANK_LINE.split(text) if p.strip()]


def document_sentences(paragraphs: list[str]) -> list[str]:
    """NFC-normalized, whitespace-collapsed sentences of a document, in order."""
    sentences = []
    for paragraph in paragraphs:
        if not unicodedata.is_normalized("NFC", paragraph):
            paragraph = unicodedata.normalize("NFC", paragraph)
        if _INVISIBLE.search(paragraph):
            paragraph = _INVISIBLE.sub("", paragraph)
        sentences.extend(split_sentences(" ".join(paragraph.split())))
    return sentences


def text_sentences(text: str) -> list[str]:
    """A plain-text document (text files, Hugging Face rows) -> its sentences."""
    return document_sentences(plain_paragraphs(text))


class WikiSentences:
    """An article's wikitext -> its sentences; a picklable callable, so worker processes can run it."""

    def __init__(self, namespaces: dict):
        from workflow_scripts.data.sources.wikitext import WikitextCleaner

        self.cleaner = WikitextCleaner(namespaces)

    def __call__(self, wikitext: str) -> list[str]:
        return document_sentences(self.cleaner.paragraphs(wikitext))


def _wiki_articles(dump, counts: "CorpusCounts"):
    """The wikitext of namespace-0 non-redirect pages; counts the others into `counts`."""
    for page in dump.pages():
        counts.read += 1
        if page.ns != 0:
            counts.dropped[NOT_AN_ARTICLE] += 1
        elif page.redirect or page.text[:32].lstrip()[:9].upper() == "#REDIRECT":  # old exports: no <redirect>
            counts.dropped[REDIRECT] += 1
        else:
            yield page.text


def _counted(texts, counts: "CorpusCounts"):
    for text in texts:
        counts.read += 1
        yield text


def open_source(source: dict, counts: "CorpusCounts", workers: int = 1, pool=None):
    """(raw documents, function raw document -> sentences) for one corpus entry.

    The split lets the expensive second half run in worker processes while this process streams.
    """
    kind = source["type"]
    row_documents.check_source(kind, source["documents"])
    if kind == "wikipedia":
        from workflow_scripts.data.sources.wikidump import WikiDump

        # With worker processes, decompression gets a process too (bz2 is ~half the work): the
        # pool's, stream groups in parallel, for a multistream dump; else an external bzip2.
        dump = WikiDump(source["path"], external_bz2=workers > 1, pool=pool, workers=workers)
        return _wiki_articles(dump, counts), WikiSentences(dump.read_namespaces())
    if kind == "text":
        from workflow_scripts.data.sources import textfiles

        texts = textfiles.iter_documents(source["path"], source["text_column"], source["documents"])
    elif kind == "huggingface":
        from workflow_scripts.data.sources import hfdataset

        texts = hfdataset.iter_documents(source["name"], source["config"], source["split"], source["text_column"],
                                         source.get("path"), source["documents"])
    else:
        raise BadInput(f"corpus: unknown source type {kind!r} (allowed: wikipedia, text, huggingface)")
    return _counted(texts, counts), text_sentences


def _allow_open_files(n: int) -> None:
    """Every part stays open for the whole run: lift the soft open-file limit if parts need it."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < n:
        wanted = n if hard == resource.RLIM_INFINITY else min(n, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        if wanted < n:
            raise BadInput(f"corpus: {n - 64} parts need {n} open files, the limit is {hard}; lower `parts`")


class PartWriter:
    """Writes documents to N part files, each document to the currently smallest part.

    Files are written under temporary names beside their targets; `commit` renames them all,
    `abort` removes them, so a failed or killed run never leaves a part that looks whole.
    """

    def __init__(self, outputs: list[Path]):
        self.outputs = outputs
        self.temps = [atomic.temp_path(p) for p in outputs]
        for p in outputs:
            p.parent.mkdir(parents=True, exist_ok=True)
        _allow_open_files(len(outputs) + 64)
        self.files = [open(t, "w", encoding="utf-8", newline="\n") for t in self.temps]
        self.sizes = [0] * len(outputs)
        self.documents = [0] * len(outputs)
        self._heap = [(0, i) for i in range(len(outputs))]  # (characters written, part index)

    def write(self, text: str) -> int:
        """Write one document (its sentences joined by newlines); returns the part it went to."""
        size, i = heapq.heappop(self._heap)
        block = text + "\n\n"
        self.files[i].write(block)
        self.sizes[i] = size + len(block)
        self.documents[i] += 1
        heapq.heappush(self._heap, (self.sizes[i], i))
        return i

    def _close(self):
        for f in self.files:
            f.close()

    def commit(self) -> None:
        self._close()
        for temp, out in zip(self.temps, self.outputs, strict=True):
            os.replace(temp, out)

    def abort(self) -> None:
        # Closing may fail again on a full disk (the buffer cannot be flushed): the temps go anyway.
        for f in self.files:
            with contextlib.suppress(OSError):
                f.close()
        for temp in self.temps:
            atomic.discard(temp)


def describe(source: dict) -> str:
    return source.get("path") or source.get("name") or source["type"]


def _in_pool(pool, function, items, batch: int):
    """function(item) for each item, in order, computed by `pool` a batch at a time.

    Pool.imap would read the whole input ahead into memory; here at most two batches are alive:
    the one the workers compute while this process reads the next.
    """
    pending = None
    items = iter(items)
    while True:
        chunk = list(itertools.islice(items, batch))
        job = pool.map_async(function, chunk, chunksize=8) if chunk else None
        if pending is not None:
            yield from pending.get()
        if job is None:
            return
        pending = job


def _stop_pool(pool) -> None:
    """After an error. Pool.terminate() can wait forever on its task thread after a worker error with
    tasks still queued (seen once in CI), and after the kill it waits for a queue lock a killed worker
    may hold. Kill the workers first, then give terminate() a second in a daemon thread: the error is
    on its way up, and nothing after it needs the pool's threads to have finished."""
    import threading

    for worker in pool._pool:
        worker.kill()
    stopper = threading.Thread(target=pool.terminate, daemon=True)
    stopper.start()
    stopper.join(timeout=1)


def document_hash(text: str) -> int:
    """64-bit hash of a document's text: blake2b, in C, the same on every machine and run.
    At 6M documents the chance that two different ones collide is ~1e-6."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _cap_reached(source: dict, counts: "CorpusCounts") -> str | None:
    if source["max_documents"] is not None and counts.kept >= source["max_documents"]:
        return f"max_documents={source['max_documents']}"
    if source["max_chars"] is not None and counts.characters >= source["max_chars"]:
        return f"max_chars={source['max_chars']}"
    return None


# Why a document is dropped: its key in CorpusCounts.dropped and the stats JSON -> its words in the log.
NOT_AN_ARTICLE, REDIRECT, EMPTY, SHORT = "not_an_article", "redirect", "empty_after_cleaning", "shorter_than_min_chars"


@dataclass
class CorpusCounts:
    """What one extraction read, kept and dropped (by reason); min_chars is the threshold it applied."""

    min_chars: int
    read: int = 0
    kept: int = 0
    sentences: int = 0
    characters: int = 0
    read_past_cap: int = 0  # with worker processes: documents in hand when a size cap stopped reading
    dropped: Counter = field(default_factory=Counter)

    def reason(self, key: str) -> str:
        return {NOT_AN_ARTICLE: "not an article (namespace != 0)", REDIRECT: "redirect", EMPTY: "empty after cleaning",
                SHORT: f"shorter than min_chars={self.min_chars}"}[key]

    def drops(self) -> str:
        """The drops by reason for the log ("" if none), in the order of their words."""
        words = sorted((self.reason(k), v) for k, v in self.dropped.items() if v)
        return "; ".join(f"dropped: {w}: {v}" for w, v in words)

    def record(self, source: dict, writer: "PartWriter", stopped: str | None, seconds: float) -> dict:
        """The stats JSON: documents read and kept, each drop reason's count, the cap that stopped reading
        (with worker processes, a few documents are read past it: read = kept + dropped + read_past_cap), parts."""
        dropped = {key: count for _, key, count in sorted((self.reason(k), k, v) for k, v in self.dropped.items() if v)}
        return {"source": describe(source), "type": source["type"], "documents_read": self.read,
                "documents_kept": self.kept, "sentences": self.sentences, "characters": self.characters,
                "dropped": dropped, "min_chars": self.min_chars, "stopped_at": stopped,
                "read_past_cap": self.read_past_cap,
                "parts": [{"file": out.name, "documents": docs, "size_characters": size}
                          for out, size, docs in zip(writer.outputs, writer.sizes, writer.documents, strict=True)],
                "seconds": round(seconds, 3)}


class KeptDocuments:
    """Per kept document, in the order read: its 64-bit hash and its part (12 bytes each)."""

    def __init__(self):
        self.hashes, self.parts = array("Q"), array("I")

    def add(self, text: str, part: int) -> None:
        self.parts.append(part)
        self.hashes.append(document_hash(text))

    def save(self, path: Path, outputs: list[Path]) -> None:
        """The .npz for workflow_scripts.data.dedup: arrays hash, part and part_names."""
        import numpy as np

        with atomic.replacing(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, hash=np.frombuffer(self.hashes, dtype=np.uint64),
                     part=np.frombuffer(self.parts, dtype=np.uint32), part_names=np.array([p.name for p in outputs]))


def _write_documents(documents, raw, writer: PartWriter, kept: KeptDocuments, source: dict, counts: CorpusCounts,
                     progress_every: int) -> str | None:
    """Keep or drop each cleaned document (a list of sentences) until the source ends or a size cap is
    reached; returns the cap that stopped reading, or None."""
    start = time.monotonic()
    stopped = None
    next_report = progress_every
    for sentences in documents:
        chars = sum(map(len, sentences))
        if not sentences:
            counts.dropped[EMPTY] += 1
        elif chars < counts.min_chars:
            counts.dropped[SHORT] += 1
        else:
            text = "\n".join(sentences)
            kept.add(text, writer.write(text))
            counts.kept += 1
            counts.sentences += len(sentences)
            counts.characters += chars
            stopped = _cap_reached(source, counts)
        if counts.read >= next_report or stopped:
            next_report += progress_every
            rate = counts.read / max(time.monotonic() - start, 1e-9)
            print(f"corpus: {counts.read} documents read, {counts.kept} kept, {rate:.0f} documents/s", flush=True)
        if stopped:
            print(f"corpus: {stopped} reached: the rest of {describe(source)} is not read", flush=True)
            raw.close()  # stops the reader (and an external bzip2) now
            # Worker processes had documents in hand: read, but neither kept nor dropped.
            counts.read_past_cap = counts.read - counts.kept - sum(counts.dropped.values())
            return stopped
    return None


def _check_enough(source: dict, counts: CorpusCounts, parts: int) -> None:
    if counts.kept == 0:
        raise BadInput(f"corpus: no documents kept from {describe(source)} "
                       f"({counts.read} read; {counts.drops() or 'nothing dropped'}): point the corpus at files "
                       "holding text, or relax its filters")
    if counts.kept < parts:
        # A warning, not an error (issue 10): an empty part gives empty shards, which training skips.
        print(f"corpus: WARNING: {describe(source)} gave {counts.kept} documents, fewer than parts={parts}: "
              f"{parts - counts.kept} part(s) stay empty (their shards too); lower `parts` for this corpus", flush=True)


def extract(source: dict, outputs: list[Path], progress_every: int = 10000, workers: int = 1,
            hashes_out: Path | None = None, stats_out: Path | None = None) -> CorpusCounts:
    """Stream `source` into the `outputs` parts; returns the counts that were logged.

    With workers > 1, cleaning and sentence splitting run in that many processes while this one
    reads and writes (and, for a multistream dump, they decompress it too); results come back in
    input order, so the parts are identical either way.
    """
    source = {**SOURCE_DEFAULTS, **source}
    min_chars = source["min_chars"]
    counts = CorpusCounts(DEFAULT_MIN_CHARS.get(source["type"], 1) if min_chars is None else min_chars)
    start = time.monotonic()
    pool = writer = None
    kept = KeptDocuments()
    try:
        if workers > 1:
            import multiprocessing

            pool = multiprocessing.Pool(workers)
        raw, to_sentences = open_source(source, counts, workers, pool)
        writer = PartWriter(outputs)
        if pool is not None:
            documents = _in_pool(pool, to_sentences, raw, batch=POOL_BATCH_PER_WORKER * workers)
        else:
            documents = map(to_sentences, raw)
        stopped = _write_documents(documents, raw, writer, kept, source, counts, progress_every)
        _check_enough(source, counts, len(outputs))
    except BaseException:
        if writer is not None:
            writer.abort()
        if pool is not None:
            _stop_pool(pool)
        raise
    if pool is not None:   # every result is in: the workers exit at once (_stop_pool's path is for errors)
        pool.close()
        pool.join()
    writer.commit()
    elapsed = time.monotonic() - start
    if hashes_out is not None:
        kept.save(hashes_out, outputs)
    rate = counts.read / max(elapsed, 1e-9)
    print(f"corpus: done in {elapsed:.1f} s: {counts.read} documents read ({rate:.0f}/s), "
          f"{counts.kept} kept, {counts.sentences} sentences, {counts.characters} characters", flush=True)
    if counts.drops():
        print(f"corpus: {counts.drops()}", flush=True)
    for out, size, docs in zip(outputs, writer.sizes, writer.documents, strict=True):
        print(f"corpus: {out}: {docs} documents, {size} characters", flush=True)
    if stats_out is not None:
        atomic.write_json(stats_out, counts.record(source, writer, stopped, elapsed))
    return counts


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="one corpus entry of the config, as JSON")
    parser.add_argument("--out", required=True, nargs="+", type=Path, help="the part files to write")
    parser.add_argument("--progress-every", type=int, default=10000, help="log a line every N documents read")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes that clean and split documents (the reading stays in one); 1 = none")
    parser.add_argument("--hashes", type=Path, help="write the kept documents' 64-bit hashes here (.npz)")
    parser.add_argument("--stats", type=Path, help="write the counts (read, kept, dropped by reason) here (.json)")
    args = parser.parse_args(argv)
    source = json_object(args.source, "--source", "corpus", required=("type",))
    if len(set(args.out)) != len(args.out):
        raise BadInput("corpus: --out lists the same file twice")
    extract(source, args.out, args.progress_every, max(args.workers, 1), args.hashes, args.stats)


if __name__ == "__main__":
    main()
