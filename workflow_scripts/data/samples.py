"""Masked-LM samples from one text part: create_pretraining_data semantics, tokenized once, packed and masked in numpy.

Semantics follow Google's create_pretraining_data.py as adapted by academic-budget-bert
(dataset/data/create_pretraining_data.py), and the HDF5 layout is theirs, so their loader
reads our shards:
- a document's sentences are packed greedily into segments of `target` tokens, target =
  max_seq_length - 2 (- 3 with NSP), or, with probability short_seq_prob per document, a
  random target in [2, target] (drawn once per document, as the reference does);
- with NSP a segment is split at a random sentence into A and B; half the time (always
  for a one-sentence segment) B is replaced by a random span of another document, and the
  unused sentences are put back; the pair is truncated from random ends, longer side first;
- masked_lm_prob of the real tokens ([CLS]/[SEP]/padding excluded) are predicted, at least
  1 and at most max_predictions_per_seq; of those 80% become [MASK], 10% a random
  non-special token, 10% stay. Whole-word masking picks words (a piece plus its ##
  continuations) in random order and skips a word that would overflow the budget.

samples.packing documents replaces the segments with sequence packing of whole documents for the
modern model type (workflow_scripts.data.packing: [CLS] doc [SEP] per document, best-fit into rows,
each token's document recorded); masking is the same.

What differs from the reference, and why:
- The text is tokenized ONCE (Rust tokenizer, big batches); each of the dup_factor passes
  re-packs and re-masks the token arrays in numpy. Nothing is done per token in Python.
- Memory is bounded (flat as the part grows): the part is read and tokenized in chunks of
  about CHUNK_CHARS characters of whole documents, and documents are packed and masked in
  pools of >= POOL_TOKENS tokens and >= POOL_DOCS documents per split. NSP's random next
  document and the row shuffle stay within a pool (the reference shuffles the whole file;
  training shuffles again anyway). One giant document (no blank lines) is held whole.
- The number of predictions is masked_lm_prob times the real tokens without [CLS]/[SEP]
  (the reference counts them too: 19 vs 19 at 128 tokens, it matters only for short rows),
  and a random replacement is never a special token (the reference draws any vocab entry).
- Documents go to the valid shard with probability valid_fraction (drawn from their own
  seeded stream, so changing masking settings never moves a document across the split);
  if the part has >= 2 documents and valid_fraction > 0, at least one is valid and at
  least one is train. A single-document part holds out nothing (whatever its draw): its valid
  shard has 0 rows.
- Valid documents are packed and masked once (dup_factor 1): re-masking them only
  lengthens evaluation without adding text. The shard's attrs record dup_factor 1. Their
  rows are drawn from a stream of their own, so dup_factor and corpus weights leave the
  valid shard unchanged and validation losses stay comparable across such edits.

Before packing, three filters drop whole documents, each counted in the log and the stats
JSON: exact duplicates named by the duplicates file (workflow_scripts.data.dedup: the first copy
across all corpora is kept), documents with too few characters per token (Cramming's filter
against tables, code and text the vocabulary cannot spell), and documents without a token.
The characters-per-token threshold is judged per corpus (issue 10: an absolute 3.0 dropped a
whole Cyrillic corpus under an English vocabulary, which spells it ~1.2 characters per token):
it is min(samples.min_chars_per_token, samples.min_chars_per_token_relative x the part's median),
the median taken over the part's first documents (CPT_SAMPLE_CHARS characters; parts get their
corpus's documents interleaved, so that is a sample of the corpus). A document far below its own
corpus's norm still goes; a script the tokenizer spells in short pieces does not.

How well the tokenizer fits the part (characters per token, the [UNK] rate, the share of tokens
that are one-character word pieces, i.e. text spelled letter by letter) goes in the stats JSON;
the log warns once when the fit is poor, and when the train samples hold on average under half of
max_seq_length real tokens. A part left with no text (all filtered, or a corpus with fewer
documents than parts) is a warning, not an error: its shards are written with 0 rows and the
loader skips them (workflow_scripts.pretrain.batches fails in one line if every shard is empty).

A corpus `weight` w makes each train document go through dup_factor x w passes (fractions
drawn per document: document_passes), so a weight-2 corpus shows each of its documents twice as
often as a weight-1 corpus. Each row records its pass and
its document's number in the part (shard_format.ROW_IDS: pass_index, document_index), so the
loader can read an epoch pass-major and count the distinct documents a run has read.
Same text, tokenizer, spec, part (corpus name and part number), weight and duplicates give
byte-identical files.
"""
import argparse
import contextlib
import hashlib
import itertools
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.cli import json_object, one_line_errors
from workflow_scripts.data import shard_format, tokenizer_fit
from workflow_scripts.errors import BadInput

CHUNK_CHARS = 1 << 20     # characters of text read and tokenized at a time
# Documents are packed and masked in pools of at least this many tokens and documents: bounds
# memory (~100 MB peak RSS at dup_factor 10) while NSP still finds other documents to draw from.
POOL_TOKENS = 1 << 18
POOL_DOCS = 16
ENCODE_BATCH = 8192       # sentences per encode_batch call: big enough for Rayon, small enough to free Encodings
HDF5_ROWS_PER_CHUNK = 1024  # HDF5 chunk rows: appends stay cheap, whole-dataset reads stay fast
HDF5_ROOM_BYTES = 1 << 20   # free space kept beyond a block's own bytes, for HDF5's metadata (see _check_room)
HDF5_CACHE_BYTES = 8 << 20  # what h5py's chunk caches may hold unwritten (1 MiB per dataset by default)
# gzip-1 after byte-shuffle: files 4x smaller than raw; whole-shard reads still decode
# ~190k samples/s per core, far above what training consumes (see benchmarks/README.md).
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
# The `samples:` keys the builder reads: the rule passes the whole schema-filled section.
SPEC_KEYS = ("max_seq_length", "masked_lm_prob", "max_predictions_per_seq", "dup_factor", "short_seq_prob", "nsp",
             "whole_word_masking", "valid_fraction", "min_chars_per_token", "seed")


# ---------------------------------------------------------------- reading

def read_documents(path: Path):
    """Yield documents (lists of stripped non-blank lines) from a one-sentence-per-line file."""
    doc = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    doc.append(line)
                elif doc:
                    yield doc
                    doc = []
    except UnicodeDecodeError as e:
        raise BadInput(f"samples: {path} is not UTF-8 text ({e.reason} at byte {e.start} of a read block)") from None
    if doc:
        yield doc


def document_chunks(path: Path, chunk_chars: int):
    """Yield (documents, is_last) groups of whole documents holding about chunk_chars characters."""
    chunk, size, pending = [], 0, None
    for doc in read_documents(path):
        chunk.append(doc)
        size += sum(map(len, doc))
        if size >= chunk_chars:
            # Hold one chunk back so the caller learns which chunk is the last.
            if pending is not None:
                yield pending, False
            pending, chunk, size = chunk, [], 0
    if chunk:
        if pending is not None:
            yield pending, False
        pending = chunk
    if pending is not None:
        yield pending, True


# ---------------------------------------------------------------- tokenizer

class Vocab:
    """The token ids masking needs, read from a Rust tokenizer."""

    def __init__(self, tokenizer, source: Path):
        import numpy as np

        ids = {}
        for name in ("[CLS]", "[SEP]", "[MASK]", "[PAD]"):
            ids[name] = tokenizer.token_to_id(name)
            if ids[name] is None:
                raise BadInput(f"samples: tokenizer {source} has no {name} token (a BERT WordPiece vocab is needed)")
        self.cls, self.sep, self.mask, self.pad = ids["[CLS]"], ids["[SEP]"], ids["[MASK]"], ids["[PAD]"]
        self.size = tokenizer.get_vocab_size()
        self.unk = tokenizer.token_to_id("[UNK]")  # None for a vocabulary without one
        special = [i for i, tok in tokenizer.get_added_tokens_decoder().items() if tok.special]
        special += [self.cls, self.sep, self.mask, self.pad]
        # Random replacements never insert [CLS]/[SEP]/[PAD]/[MASK]/[UNK] into the text.
        self.replacements = np.setdiff1d(np.arange(self.size, dtype=np.int32), np.array(special, dtype=np.int32))
        self.tokenizer = tokenizer
        self._continuation = self._spelled = None

    @property
    def continuation(self):
        """Bool lookup table over ids: True for word-continuation pieces (##xx)."""
        if self._continuation is None:
            self._continuation = self._lookup(lambda token: token.startswith("##"))
        return self._continuation

    @property
    def spelled(self):
        """Bool lookup table over ids: True for one-character continuation pieces (##x), a word spelled out."""
        if self._spelled is None:
            self._spelled = self._lookup(lambda token: token.startswith("##") and len(token) == 3)
        return self._spelled

    def _lookup(self, wanted):
        import numpy as np

        lut = np.zeros(self.size, dtype=bool)
        for token, i in self.tokenizer.get_vocab().items():
            if i < self.size and wanted(token):
                lut[i] = True
        return lut


def load_tokenizer(folder: Path):
    """The folder's Rust tokenizer (special tokens, padding and truncation off) and the sha1 of its file."""
    from tokenizers import Tokenizer

    file = folder / "tokenizer.json"
    if file.is_file():
        tokenizer = Tokenizer.from_file(str(file))
    elif (folder / "vocab.txt").is_file():
        from transformers import AutoTokenizer

        file = folder / "vocab.txt"
        tokenizer = AutoTokenizer.from_pretrained(str(folder)).backend_tokenizer
    else:
        raise BadInput(f"samples: tokenizer folder {folder} has neither tokenizer.json nor vocab.txt")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer, hashlib.sha1(file.read_bytes()).hexdigest()


class Corpus:
    """A chunk's documents as flat token ids.

    tokens: int32 [T]; sent: int64 [S+1] token offsets of sentences (sentence s is
    tokens[sent[s]:sent[s+1]], never empty); doc: int64 [D+1] sentence offsets of documents.
    """

    def __init__(self, tokens, sent, doc):
        self.tokens, self.sent, self.doc = tokens, sent, doc

    @property
    def num_docs(self):
        return len(self.doc) - 1

    @staticmethod
    def merge(pieces) -> "Corpus":
        """One corpus of the chosen documents of several: pieces are (corpus, document indices)."""
        import numpy as np

        tokens, sent_len, doc_len = [], [], []
        for corpus, docs in pieces:
            for d in docs:
                s0, s1 = corpus.doc[d], corpus.doc[d + 1]
                tokens.append(corpus.tokens[corpus.sent[s0]:corpus.sent[s1]])
                sent_len.append(np.diff(corpus.sent[s0:s1 + 1]))
                doc_len.append(s1 - s0)
        sent = np.zeros(sum(map(len, sent_len)) + 1, np.int64)
        np.cumsum(np.concatenate(sent_len), out=sent[1:])
        doc = np.zeros(len(doc_len) + 1, np.int64)
        np.cumsum(doc_len, out=doc[1:])
        return Corpus(np.concatenate(tokens), sent, doc)


class Pool:
    """Documents of one split waiting to be packed; flushed into the shard once big enough."""

    def __init__(self, writer):
        self.writer = writer
        self.pieces, self.passes, self.numbers, self.tokens, self.docs = [], [], [], 0, 0

    def add(self, corpus: Corpus, docs, passes, numbers) -> None:
        """Pool these documents (indices into corpus; numbers: their numbers in the text part), each
        to be packed and masked passes[i] times."""
        import numpy as np

        docs, passes, numbers = np.asarray(docs), np.asarray(passes), np.asarray(numbers)
        keep = passes > 0
        docs, passes, numbers = docs[keep], passes[keep], numbers[keep]
        if len(docs):
            # A copy of just these documents, so the pool never keeps a whole chunk alive.
            piece = Corpus.merge([(corpus, docs)])
            self.pieces.append(piece)
            self.passes.append(passes)
            self.numbers.append(numbers)
            self.docs += piece.num_docs
            self.tokens += len(piece.tokens)

    def ready(self) -> bool:
        return self.tokens >= POOL_TOKENS and self.docs >= POOL_DOCS

    def flush(self, rng, spec: dict, vocab) -> None:
        """Pass j packs and masks (a fresh draw) every pooled document with more than j passes; rows
        appended, each with its pass and document number (shard_format.ROW_IDS)."""
        import numpy as np

        if not self.pieces:
            return
        corpus = Corpus.merge([(piece, range(piece.num_docs)) for piece in self.pieces])
        passes, numbers = np.concatenate(self.passes), np.concatenate(self.numbers)
        for j in range(int(passes.max())):
            self.writer.append(make_rows(corpus, np.flatnonzero(passes > j), rng, spec, vocab, numbers, j))
        self.pieces, self.passes, self.numbers, self.tokens, self.docs = [], [], [], 0, 0


KEPT, EMPTY, LOW_CPT = 0, 1, 2  # what tokenize_documents did with each document


def encode_sentences(tokenizer, sentences: list):
    """Token ids of every sentence, in big batches -> (int64 [S] tokens per sentence, int32 [T] all ids)."""
    import numpy as np

    lengths, flat = [], []
    for i in range(0, len(sentences), ENCODE_BATCH):
        ids = [e.ids for e in tokenizer.encode_batch_fast(sentences[i:i + ENCODE_BATCH], add_special_tokens=False)]
        lengths.append(np.fromiter(map(len, ids), dtype=np.int64, count=len(ids)))
        flat.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32))
    return (np.concatenate(lengths) if lengths else np.zeros(0, np.int64),
            np.concatenate(flat) if flat else np.zeros(0, np.int32))


def document_tokens(tokenizer, documents: list):
    """int64 [D]: each document's token count."""
    import numpy as np

    lengths, _ = encode_sentences(tokenizer, [s for d in documents for s in d])
    doc_of_sentence = np.repeat(np.arange(len(documents)), [len(d) for d in documents])
    return np.bincount(doc_of_sentence, weights=lengths, minlength=len(documents)).astype(np.int64)


def part_median_chars_per_token(tokenizer, text: Path, drop: set) -> float | None:
    """The median characters per token of the part's first documents, duplicates skipped (tokenizer_fit)."""
    unique = (doc for i, doc in enumerate(read_documents(text)) if i not in drop)
    return tokenizer_fit.median_chars_per_token(unique, lambda sample: document_tokens(tokenizer, sample))


def tokenize_documents(tokenizer, documents, min_chars_per_token: float = 0.0):
    """Tokenize every sentence once, in big batches -> (Corpus of the kept documents, status int8 [D]).

    Sentences with no tokens are dropped; a document is dropped as EMPTY when none of its
    sentences has a token, as LOW_CPT when its characters (sentences joined by spaces) per
    token fall below min_chars_per_token: tables, code, lists of numbers and text the
    vocabulary cannot spell (Cramming's filter, as characters per token).
    """
    import numpy as np

    lengths, tokens = encode_sentences(tokenizer, [s for d in documents for s in d])
    nd = len(documents)
    doc_of_sentence = np.repeat(np.arange(nd), [len(d) for d in documents])
    doc_tokens = np.bincount(doc_of_sentence, weights=lengths, minlength=nd)
    status = np.where(doc_tokens > 0, KEPT, EMPTY).astype(np.int8)
    if min_chars_per_token > 0:
        doc_chars = tokenizer_fit.document_chars(documents)
        status[(status == KEPT) & (doc_chars < min_chars_per_token * doc_tokens)] = LOW_CPT
    keep = (lengths > 0) & (status[doc_of_sentence] == KEPT)
    if (status == LOW_CPT).any():
        tokens = tokens[np.repeat(keep, lengths)]
    per_doc = np.bincount(doc_of_sentence[keep], minlength=nd)[status == KEPT]
    sent = np.zeros(int(keep.sum()) + 1, np.int64)
    np.cumsum(lengths[keep], out=sent[1:])
    doc = np.zeros(len(per_doc) + 1, np.int64)
    np.cumsum(per_doc, out=doc[1:])
    return Corpus(tokens, sent, doc), status


def document_passes(rng, n: int, passes: float):
    """Times each of n train documents is packed and masked: passes = dup_factor x corpus weight.

    A fractional part p becomes one more pass with probability p, drawn per document (so a
    weight of 1.5 at dup_factor 2 gives each document 3 passes, and 0.25 at dup_factor 2 gives
    half the documents 1 pass and the other half none), from its own seeded stream: weights
    never change which documents are valid, nor how any document is masked.
    """
    import numpy as np

    whole = int(np.floor(passes + 1e-9))
    fraction = passes - whole
    if fraction < 1e-9:  # 10 x 0.3 is 3.0000000000000004: an integer, no draws
        return np.full(n, whole, np.int64)
    return whole + (rng.random(n) < fraction).astype(np.int64)


# ---------------------------------------------------------------- packing

def pack(corpus: Corpus, docs, rng, max_seq_length: int, short_seq_prob: float, nsp: bool):
    """Segments for the given documents (indices into corpus): token ranges A (and B) after truncation.

    Returns int64 arrays a_start, a_len, b_start, b_len (b_len 0 without NSP), a bool
    is_random_next and the document of each segment (an index into docs). Vectorized over
    documents: each round cuts the next segment of every document that still has sentences left.
    """
    import numpy as np

    C = corpus.sent  # C[s] = token offset of sentence s; strictly increasing
    max_tokens = max_seq_length - (3 if nsp else 2)
    docs = np.asarray(docs, dtype=np.int64)
    nd = len(docs)
    first, end = corpus.doc[docs], corpus.doc[docs + 1]  # sentence ranges [first, end)
    target = np.full(nd, max_tokens, np.int64)
    short = rng.random(nd) < short_seq_prob
    target[short] = rng.integers(2, max_tokens + 1, size=int(short.sum()))
    pos = first.copy()
    out = []
    active = np.flatnonzero(pos < end)
    while len(active):
        p, e_doc, t = pos[active], end[active], target[active]
        # Add sentences until the segment holds >= target tokens or the document ends.
        e = np.minimum(np.searchsorted(C, C[p] + t, side="left"), e_doc)
        k = e - p  # sentences in the segment, >= 1
        if not nsp:
            a_start, a_len = C[p], C[e] - C[p]
            b_start = b_len = np.zeros(len(active), np.int64)
            random_next = np.zeros(len(active), bool)
            nxt = e
        else:
            a_end = np.ones(len(active), np.int64)
            multi = k >= 2
            a_end[multi] = rng.integers(1, k[multi])  # 1..k-1 sentences go to A
            a_start, a_len = C[p], C[p + a_end] - C[p]
            random_next = (k == 1) | (rng.random(len(active)) < 0.5)
            # Actual next: the rest of the segment.
            b_start, b_len = C[p + a_end].copy(), C[e] - C[p + a_end]
            nxt = e.copy()
            r = np.flatnonzero(random_next)
            if len(r):
                own = active[r]
                if nd >= 2:
                    other = rng.integers(0, nd - 1, size=len(r))
                    other += other >= own  # never the document itself
                else:  # the reference falls back to the same document, labelled "not random"
                    other = own
                    random_next[r] = False
                start = rng.integers(first[other], end[other])
                want = np.maximum(t[r] - a_len[r], 1)
                b_end = np.minimum(np.searchsorted(C, C[start] + want, side="left"), end[other])
                b_start[r], b_len[r] = C[start], C[b_end] - C[start]
                nxt[r] = p[r] + a_end[r]  # unused sentences of the segment are put back
        out.append((a_start, a_len, b_start, b_len, random_next, active))
        pos[active] = nxt
        active = active[nxt < e_doc]
    if not out:
        z = np.zeros(0, np.int64)
        return z, z, z, z, np.zeros(0, bool), z
    a_start, a_len, b_start, b_len, random_next, doc_of = (np.concatenate(x) for x in zip(*out, strict=True))
    # Truncation needs no sequential state: once for all segments, not per round.
    return (*truncate(a_start, a_len, b_start, b_len, max_tokens, rng), random_next, doc_of)


def truncate(a_start, a_len, b_start, b_len, max_tokens, rng):
    """truncate_seq_pair in closed form: cut the longer side (B on ties) one token at a time from a random end.

    Where both sides get cut they end at ceil(M/2) (A) and floor(M/2) (B); the number of cuts
    taken from the front of a side is Binomial(cuts, 1/2).
    """
    import numpy as np

    excess = np.maximum(a_len + b_len - max_tokens, 0)
    cut_a = np.where(a_len - b_len >= excess, excess, 0)
    cut_b = np.where((b_len - a_len >= excess) & (cut_a == 0), excess, 0)
    both = (excess > 0) & (cut_a == 0) & (cut_b == 0)
    cut_a = np.where(both, a_len - (max_tokens + 1) // 2, cut_a)
    cut_b = np.where(both, b_len - max_tokens // 2, cut_b)
    a_start = a_start + rng.binomial(cut_a, 0.5)
    b_start = b_start + rng.binomial(cut_b, 0.5)
    return a_start, a_len - cut_a, b_start, b_len - cut_b


# ---------------------------------------------------------------- rows and masking

def materialize(tokens, a_start, a_len, b_start, b_len, nsp: bool, max_seq_length: int, vocab: Vocab):
    """[CLS] A [SEP] (B [SEP]) [PAD]... as int32 ids [N, L], plus segment ids, real-token mask, candidates."""
    import numpy as np

    pos = np.arange(max_seq_length)[None, :]
    la, lb = a_len[:, None], b_len[:, None]
    in_a = (pos >= 1) & (pos <= la)
    in_b = (pos >= la + 2) & (pos < la + 2 + lb)
    src = np.where(in_a, a_start[:, None] + pos - 1, np.where(in_b, b_start[:, None] + pos - la - 2, 0))
    ids = np.where(in_a | in_b, tokens[src], np.int32(vocab.pad)).astype(np.int32)
    ids[:, 0] = vocab.cls
    length = la + 2 + (lb + 1 if nsp else 0)
    ids[(pos == la + 1) | (nsp & (pos == length - 1))] = vocab.sep
    real = pos < length
    segment = nsp & (pos >= la + 2) & real
    return ids, segment, real, in_a | in_b


def choose_positions(cand, k, rng, max_predictions: int, vocab: Vocab, ids, whole_word: bool):
    """Bool [N, L]: exactly k[i] chosen candidate positions per row (fewer with whole words, as the reference)."""
    import numpy as np

    n, length = cand.shape
    if not whole_word:
        # Unique random keys (random high bits, position low bits); the k smallest are chosen.
        keys = (rng.integers(0, 1 << 40, size=(n, length), dtype=np.int64) << 10) | np.arange(length)
        keys[~cand] = np.iinfo(np.int64).max
        p = min(max_predictions, length)
        smallest = np.sort(np.partition(keys, p - 1, axis=1)[:, :p], axis=1)
        threshold = smallest[np.arange(n), k - 1]
        return keys <= threshold[:, None]
    # Whole words: a word starts at a candidate that is not a ## piece or follows a non-candidate.
    prev_cand = np.zeros_like(cand)
    prev_cand[:, 1:] = cand[:, :-1]
    start = cand & (~vocab.continuation[ids] | ~prev_cand)
    word = np.cumsum(start, axis=1)  # word number per position, 1-based within the row
    rows = np.repeat(np.arange(n), length).reshape(n, length)
    flat = (rows * (length + 1) + word)[cand]
    word_len = np.bincount(flat, minlength=n * (length + 1)).reshape(n, length + 1)
    keys = rng.random((n, length + 1))
    keys[word_len == 0] = 2.0
    order = np.argsort(keys, axis=1)  # words in random order, empty slots last
    budget = k.astype(np.int64).copy()
    picked = np.zeros((n, length + 1), bool)
    r = np.arange(n)
    for j in range(int((word_len > 0).sum(axis=1).max(initial=0))):
        w = order[:, j]
        wl = word_len[r, w]
        take = (wl > 0) & (wl <= budget)  # a word that would overflow is skipped, later ones still tried
        picked[r[take], w[take]] = True
        budget -= np.where(take, wl, 0)
    return picked[rows, word] & cand


def mask_rows(ids, cand, rng, spec: dict, vocab: Vocab):
    """Apply masking to ids in place; return masked_lm_positions and masked_lm_ids [N, P] (zero-padded)."""
    import numpy as np

    n, length = ids.shape
    p = spec["max_predictions_per_seq"]
    n_cand = cand.sum(axis=1)
    k = np.minimum(min(p, length), np.maximum(1, np.rint(n_cand * spec["masked_lm_prob"]).astype(np.int64)))
    k = np.minimum(k, n_cand)
    chosen = choose_positions(cand, k, rng, p, vocab, ids, spec["whole_word_masking"])
    rr, cc = np.nonzero(chosen)  # row-major: positions ascending within a row
    rank = (np.cumsum(chosen, axis=1) - 1)[rr, cc]
    positions = np.zeros((n, p), np.int32)
    labels = np.zeros((n, p), np.int32)
    positions[rr, rank] = cc
    labels[rr, rank] = ids[rr, cc]
    u = rng.random(len(rr))
    random_ids = vocab.replacements[rng.integers(0, len(vocab.replacements), size=len(rr))]
    ids[rr, cc] = np.where(u < 0.8, vocab.mask, np.where(u < 0.9, random_ids, ids[rr, cc]))
    return positions, labels


def make_rows(corpus: Corpus, docs, rng, spec: dict, vocab: Vocab, numbers=None, pass_index: int = 0) -> dict:
    """One pass over the documents: pack, lay out, mask, shuffle. Returns the shard's datasets for these rows.

    numbers: the part's number of each corpus document (default: its index), written per row as
    document_index, with pass_index (shard_format.ROW_IDS)."""
    import numpy as np

    nsp, length = spec["nsp"], spec["max_seq_length"]
    docs = np.asarray(docs, dtype=np.int64)
    if spec_value(spec, "packing") == "documents":
        return make_packed_rows(corpus, docs, rng, spec, vocab, numbers, pass_index)
    a_start, a_len, b_start, b_len, random_next, doc_of = pack(corpus, docs, rng, length, spec["short_seq_prob"], nsp)
    ids, segment, real, cand = materialize(corpus.tokens, a_start, a_len, b_start, b_len, nsp, length, vocab)
    positions, labels = mask_rows(ids, cand, rng, spec, vocab)
    order = rng.permutation(len(ids))
    rows = {"input_ids": ids[order], "input_mask": real[order].astype(np.int8),
            "segment_ids": segment[order].astype(np.int8),
            "masked_lm_positions": positions[order], "masked_lm_ids": labels[order]}
    if nsp:
        rows[shard_format.NSP.name] = random_next[order].astype(np.int8)
    document = docs[doc_of[order]]
    rows[shard_format.PASS.name] = np.full(len(ids), pass_index, shard_format.PASS.dtype)
    rows[shard_format.DOCUMENT.name] = (document if numbers is None else np.asarray(numbers)[document]).astype(
        shard_format.DOCUMENT.dtype)
    return rows


def make_packed_rows(corpus: Corpus, docs, rng, spec: dict, vocab: Vocab, numbers=None, pass_index: int = 0) -> dict:
    """make_rows for samples.packing documents: whole documents packed into rows (workflow_scripts.data.packing),
    masked as segments are, shuffled; each token's document in token_document_ids, each row's first in
    document_index."""
    import numpy as np
    from workflow_scripts.data.packing import pack_documents

    numbers = np.arange(corpus.num_docs) if numbers is None else np.asarray(numbers)
    packed = pack_documents(corpus, docs, numbers, rng, spec["max_seq_length"], vocab)
    ids = packed["ids"]
    positions, labels = mask_rows(ids, packed["candidates"], rng, spec, vocab)
    order = rng.permutation(len(ids))
    token_documents = packed["token_documents"][order]
    return {"input_ids": ids[order], "input_mask": packed["real"][order].astype(np.int8),
            "segment_ids": np.zeros(ids.shape, np.int8),
            "masked_lm_positions": positions[order], "masked_lm_ids": labels[order],
            shard_format.TOKEN_DOCUMENTS.name: token_documents,
            shard_format.PASS.name: np.full(len(ids), pass_index, shard_format.PASS.dtype),
            shard_format.DOCUMENT.name: token_documents[:, 0].astype(shard_format.DOCUMENT.dtype)}


# ---------------------------------------------------------------- writing

class ShardWriter:
    """Appends row blocks to resizable HDF5 datasets under a temp name; close() renames it into place."""

    def __init__(self, path: Path, spec: dict, attrs: dict):
        import h5py

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = atomic.temp_path(self.path)
        self.file = h5py.File(self.tmp, "w")
        tails = {"L": (spec["max_seq_length"],), "P": (spec["max_predictions_per_seq"],), None: ()}
        for d in shard_format.layout(spec["nsp"], spec_value(spec, "packing") == "documents"):
            tail = tails[d.width]
            self.file.create_dataset(d.name, shape=(0, *tail), maxshape=(None, *tail), dtype=d.dtype,
                                     chunks=(HDF5_ROWS_PER_CHUNK, *tail), **COMPRESSION)
        self.attrs = attrs
        self.rows = 0
        self.stats = {"real_tokens": 0, "candidates": 0, "masked": 0}

    def append(self, rows: dict) -> None:
        n = len(rows["input_ids"])
        tight = self._check_room(rows)
        for name, data in rows.items():
            ds = self.file[name]
            ds.resize(self.rows + n, axis=0)
            ds[self.rows:] = data
        if tight:   # near full: nothing left cached, so an abort's close has nothing to write
            self.file.flush()
        self.rows += n
        real = int(rows["input_mask"].sum())
        self.stats["real_tokens"] += real
        if shard_format.TOKEN_DOCUMENTS.name in rows:    # packed: a [CLS] and a [SEP] per document
            from workflow_scripts.data.packing import document_runs

            specials = 2 * int(document_runs(rows[shard_format.TOKEN_DOCUMENTS.name]).sum())
        else:
            specials = 2 * n + (n if shard_format.NSP.name in rows else 0)
        self.stats["candidates"] += real - specials
        self.stats["masked"] += int((rows["masked_lm_positions"] > 0).sum())

    def _check_room(self, rows: dict) -> bool:
        """Stop with disk_full's line before a block the disk has no room for; True where room is
        tight (the caller then flushes after the block: flushing every block costs ~10% here, as
        partial chunks are recompressed). HDF5 must not meet a full disk itself: it reports it from
        object deallocation, if at all, then crashes in flush or close (h5py 3.16), leaving a temp
        that keeps the disk full."""
        from workflow_scripts import disk_full

        need = sum(a.nbytes for a in rows.values()) + HDF5_ROOM_BYTES   # uncompressed: an upper bound
        free = disk_full.free_space(self.tmp)[1]
        if free < need:
            written = self.tmp.stat().st_size
            raise disk_full.DiskFull(disk_full.line(self.path, written, written + need))
        return free < 4 * need + HDF5_CACHE_BYTES

    def close(self) -> None:
        self.file.attrs.update({**self.attrs, "num_samples": self.rows})
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        # Should HDF5 still meet a full disk, its close writes again and can crash: emptying the temp
        # first frees its space for that last write (the temp is discarded anyway).
        with contextlib.suppress(Exception):
            if self.file.id.valid:
                os.ftruncate(self.file.id.get_vfd_handle(), 0)
        with contextlib.suppress(Exception):
            self.file.close()
        atomic.discard(self.tmp)

    def statistics(self, length: int) -> dict:
        """samples; tokens_per_sample (real ones, [CLS]/[SEP] included); masked_fraction (of the
        non-special real tokens, predicted); padding_fraction (of all max_seq_length slots)."""
        n = max(self.rows, 1)
        s = self.stats
        return {"samples": self.rows, "tokens_per_sample": round(s["real_tokens"] / n, 3),
                "masked_fraction": round(s["masked"] / max(s["candidates"], 1), 5),
                "padding_fraction": round(1 - s["real_tokens"] / (n * length), 5) if self.rows else 0.0}

    def summary(self, length: int) -> str:
        st = self.statistics(length)
        return (f"{st['samples']} samples, {st['tokens_per_sample']:.1f} real tokens per sample, "
                f"masked {st['masked_fraction']:.4f} of non-special tokens, padding {st['padding_fraction']:.4f}")


# ---------------------------------------------------------------- driver

def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: the latter also counts the
    parent's memory when it was spawned (vfork + exec), so under Snakemake it reports Snakemake."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; bytes on macOS


# Children of SeedSequence((seed, corpus key, part number)): see part_seed. Valid rows have their own
# stream, so dup_factor and weights (which change how much the train side draws) never change the
# valid samples.
SPLIT_STREAM, SAMPLE_STREAM, WEIGHT_STREAM, VALID_STREAM = 0, 1, 2, 3


@dataclass(frozen=True)
class Part:
    """Which text part a shard holds: its corpus's name and its number in that corpus."""

    corpus: str
    index: int


def part_seed(seed: int, part: Part) -> list:
    """The entropy words of a part's streams: the config seed, a key of the corpus NAME (not its
    position in the config) and the part's number, so adding, removing or reordering another corpus
    leaves every other part's samples as they were, and no two parts share a stream. The key is the
    first 8 bytes of the name's SHA-256 (Python's hash() differs per process)."""
    key = int.from_bytes(hashlib.sha256(part.corpus.encode("utf-8")).digest()[:8], "big")
    return [seed % (1 << 64), key, part.index]
# Above this share of a part's documents, the characters-per-token filter prints a warning.
CPT_WARN_FRACTION = 0.25


@dataclass
class PartCounts:
    """What one text part gave: documents read, dropped by each filter and used, and their samples."""

    text: Path
    part: Part
    weight: float
    dup_factor: int
    min_chars_per_token: float    # as configured
    chars_per_token_threshold: float = 0.0  # as applied (tokenizer_fit.threshold)
    median_chars_per_token: float | None = None
    documents_read: int = 0
    duplicates_dropped: int = 0
    low_chars_per_token_dropped: int = 0
    empty_dropped: int = 0
    documents: int = 0            # used: read less the dropped ones
    sentences: int = 0
    tokens: int = 0
    train_documents: int = 0      # train documents with at least one pass
    valid_documents: int = 0
    weighted_out: int = 0         # train documents the weight gave no pass
    train_document_passes: int = 0
    train_samples: int = 0
    valid_samples: int = 0
    seconds: float = 0.0
    tokenize_seconds: float = 0.0
    fit: tokenizer_fit.Fit = field(default_factory=tokenizer_fit.Fit)
    warnings: list = field(default_factory=list)

    @property
    def corpus(self) -> str:
        return self.part.corpus

    def add_chunk(self, read: int, unique: int, status, corpus: Corpus, is_valid, passes) -> None:
        """Count a chunk: `read` documents, `unique` of them not duplicates, tokenize_documents' status
        of those, and per kept document its split and passes."""
        self.documents_read += read
        self.duplicates_dropped += read - unique
        self.low_chars_per_token_dropped += int((status == LOW_CPT).sum())
        self.empty_dropped += int((status == EMPTY).sum())
        self.documents += len(is_valid)
        self.sentences += len(corpus.sent) - 1
        self.tokens += len(corpus.tokens)
        self.valid_documents += int(is_valid.sum())
        train = passes[~is_valid]
        self.train_documents += int((train > 0).sum())
        self.weighted_out += int((train == 0).sum())
        self.train_document_passes += int(train.sum())

    def no_text_reason(self) -> str | None:
        """Why a part gave no sample (None if it has text): no document, no token, or emptied by the filters."""
        if self.tokens:
            return None
        if self.documents_read == 0:
            return f"no document (corpus {self.corpus} has fewer documents than parts)"
        if self.documents_read == self.empty_dropped:
            return "no text (no non-blank line with a token)"
        return (f"no text left after the filters: of {self.documents_read} documents, {self.duplicates_dropped} are "
                f"duplicates of earlier ones, {self.low_chars_per_token_dropped} are below {self._threshold_words()} "
                "(samples.min_chars_per_token: 0 switches that filter off)")

    def no_text_message(self) -> str:
        return f"text part {self.text} holds {self.no_text_reason()}: its shards are empty and training skips them"

    def _threshold_words(self) -> str:
        applied, configured = self.chars_per_token_threshold, self.min_chars_per_token
        if applied == 0:
            return "the characters-per-token filter (off: min_chars_per_token 0)"
        if self.median_chars_per_token is None or applied == configured:
            return f"{applied:g} characters per token (min_chars_per_token)"
        return (f"{applied:.2f} characters per token (min_chars_per_token {configured:g}, lowered to "
                f"min_chars_per_token_relative x this part's median {self.median_chars_per_token:.2f})")

    def summary(self) -> list:
        """The log lines on the documents: what each filter dropped, the split, the weight's passes."""
        return [f"samples: {self.documents_read} documents read: {self.duplicates_dropped} skipped as duplicates, "
                 f"{self.low_chars_per_token_dropped} below {self._threshold_words()}, {self.empty_dropped} "
                 f"without a token; {self.documents} used ({self.train_documents} train, {self.valid_documents} "
                 f"valid, {self.weighted_out} left out by weight {self.weight:g})",
                 f"samples: weight {self.weight:g} x dup_factor {self.dup_factor}: {self.train_document_passes} "
                 f"train document passes ({self.train_document_passes / max(self.train_documents, 1):.2f} each)"]

    def check_samples(self, train_stats: dict, max_seq_length: int) -> None:
        """Add the warnings the part's samples call for: none at all, short on average, a poor tokenizer fit."""
        fit = self.fit.record(self.median_chars_per_token, self.chars_per_token_threshold)
        low = self.low_chars_per_token_dropped
        if low > CPT_WARN_FRACTION * max(self.documents_read - self.duplicates_dropped, 1):
            self.warnings.append(f"the characters-per-token filter dropped {low} of {self.documents_read} documents "
                                 f"of corpus {self.corpus}: below {self._threshold_words()}")
        if self.tokens == 0:
            self.warnings.append(self.no_text_message())
        elif train_stats["samples"]:
            self.warnings.append(tokenizer_fit.short_samples_warning(self.corpus, train_stats["tokens_per_sample"],
                                                                     max_seq_length))
        self.warnings.append(tokenizer_fit.poor_fit_warning(self.corpus, fit))
        self.warnings = [w for w in self.warnings if w]

    def record(self, train: "ShardWriter", valid: "ShardWriter", length: int) -> dict:
        """The per-shard stats JSON: what each filter removed, and the train/valid sample statistics."""
        return {"text": str(self.text), "corpus": self.part.corpus, "part": self.part.index, "weight": self.weight,
                "dup_factor": self.dup_factor, "max_seq_length": length, "min_chars_per_token": self.min_chars_per_token,
                "documents": {"read": self.documents_read, "duplicates_dropped": self.duplicates_dropped,
                              "low_chars_per_token_dropped": self.low_chars_per_token_dropped,
                              "empty_dropped": self.empty_dropped, "used": self.documents,
                              "train": self.train_documents, "valid": self.valid_documents,
                              "weighted_out": self.weighted_out},
                "sentences": self.sentences, "tokens": self.tokens,
                "train": {**train.statistics(length), "document_passes": self.train_document_passes,
                          "file": str(train.path)},
                "valid": {**valid.statistics(length), "file": str(valid.path)},
                "tokenizer_fit": self.fit.record(self.median_chars_per_token, self.chars_per_token_threshold),
                "empty_reason": self.no_text_reason(), "warnings": self.warnings, "seconds": round(self.seconds, 3)}


class PartBuilder:
    """Turns a part's chunks of documents into rows of its train and valid shards, counting as it goes."""

    def __init__(self, spec: dict, tokenizer, vocab: Vocab, counts: PartCounts, drop: set, train, valid):
        import numpy as np

        self.spec, self.tokenizer, self.vocab, self.counts, self.drop = spec, tokenizer, vocab, counts, drop
        self.train, self.valid = train, valid
        self.passes = spec["dup_factor"] * counts.weight
        seeds = np.random.SeedSequence(part_seed(spec["seed"], counts.part)).spawn(4)
        self.split_rng, self.train_rng, self.weight_rng, self.valid_rng = (
            np.random.default_rng(seeds[i]) for i in (SPLIT_STREAM, SAMPLE_STREAM, WEIGHT_STREAM, VALID_STREAM))
        self.train_pool, self.valid_pool = Pool(train), Pool(valid)
        self.started = time.perf_counter()

    def add(self, chunk: list, is_last: bool) -> None:
        """Filter, tokenize, split and pool one chunk of documents; flush the pools when full (or last)."""
        import numpy as np

        c = self.counts
        # Split and passes are drawn per document READ, before any filter: a filter or a
        # duplicate elsewhere never moves another document across the split.
        n_read, first = len(chunk), c.documents_read
        valid_draw = self.split_rng.random(n_read) < self.spec["valid_fraction"]
        passes_draw = document_passes(self.weight_rng, n_read, self.passes)
        unique = np.array([i for i in range(n_read) if first + i not in self.drop], np.int64) if self.drop else \
            np.arange(n_read)
        t0 = time.perf_counter()
        corpus, status = tokenize_documents(self.tokenizer, [chunk[i] for i in unique] if self.drop else chunk,
                                            c.chars_per_token_threshold)
        c.tokenize_seconds += time.perf_counter() - t0
        kept = unique[status == KEPT]
        c.fit.add([chunk[i] for i in kept], corpus.tokens, self.vocab.unk, self.vocab.spelled)
        is_valid, doc_passes = valid_draw[kept], passes_draw[kept]
        if is_last:
            self._one_document_each_side(is_valid)
        c.add_chunk(n_read, len(unique), status, corpus, is_valid, doc_passes)
        train_docs, valid_docs = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
        numbers = first + kept    # each kept document's number in the part (read order): its document_index
        for pool, rng, docs, reps in (
                (self.train_pool, self.train_rng, train_docs, doc_passes[train_docs]),
                (self.valid_pool, self.valid_rng, valid_docs, np.ones(len(valid_docs), np.int64))):
            pool.add(corpus, docs, reps, numbers[docs])
            if pool.ready() or is_last:
                pool.flush(rng, self.spec, self.vocab)
        elapsed = time.perf_counter() - self.started
        print(f"samples: {c.documents} documents, {c.sentences} sentences, {c.tokens} tokens, "
              f"{self.train.rows} train + {self.valid.rows} valid samples, {c.tokens / elapsed:,.0f} tokens/s, "
              f"peak RSS {peak_rss_mb():.0f} MB", flush=True)

    def _one_document_each_side(self, is_valid) -> None:
        """Each split gets at least one document: fix the part's last document (in the last chunk) if needed.
        A single-document part trains on it, whatever its draw (valid rows without train rows teach nothing)."""
        c, nd = self.counts, len(is_valid)
        if c.documents + nd == 1 and nd:
            is_valid[-1] = False
        elif c.documents + nd >= 2 and self.spec["valid_fraction"] > 0 and nd:
            if c.valid_documents + is_valid.sum() == 0:
                is_valid[-1] = True
            elif c.documents - c.valid_documents + (~is_valid).sum() == 0:
                is_valid[-1] = False


def build_shards(spec: dict, tokenizer_dir: Path, text: Path, part: Part, train_out: Path, valid_out: Path,
                 tokenizer=None, chunk_chars: int | None = None, weight: float = 1.0,
                 duplicates: Path | None = None, stats_out: Path | None = None) -> PartCounts:
    """Write the train and valid shards of one text part; return its counts. `tokenizer` overrides the folder's.

    part: which corpus and part number the text is; it seeds the part's streams (part_seed).
    weight: the part's corpus weight; train documents get dup_factor x weight passes (document_passes).
    duplicates: the JSON of workflow_scripts.data.dedup; this part's listed documents are skipped.
    stats_out: where to write the counts and sample statistics as JSON (see `PartCounts.record`).
    """
    text, tokenizer_dir = Path(text), Path(tokenizer_dir)
    if not text.is_file():
        raise BadInput(f"samples: text part {text} does not exist")
    if not weight > 0:
        raise BadInput(f"samples: --weight must be > 0, got {weight}")
    rust, sha1 = load_tokenizer(tokenizer_dir)
    tokenizer = tokenizer or rust
    vocab = Vocab(tokenizer, tokenizer_dir)
    if spec["max_seq_length"] < 8:
        raise BadInput(f"samples.max_seq_length={spec['max_seq_length']} is too short (at least 8)")
    if spec["nsp"] and spec_value(spec, "packing") == "documents":
        raise BadInput("samples.nsp: true cannot go with samples.packing: documents (packed rows hold whole "
                       "documents, no sentence pairs): set nsp false or packing segments")
    expected_docs, drop = None, set()
    if duplicates is not None:
        from workflow_scripts.data.dedup import part_drops

        expected_docs, drop = part_drops(duplicates, text)
    counts = part_counts(spec, text, part, weight, tokenizer, drop)
    train = ShardWriter(train_out, spec, shard_format.shard_attrs(spec, sha1, part, text.name, "train",
                                                                  spec["dup_factor"], weight))
    valid = ShardWriter(valid_out, spec, shard_format.shard_attrs(spec, sha1, part, text.name, "valid", 1))
    builder = PartBuilder(spec, tokenizer, vocab, counts, drop, train, valid)
    try:
        for chunk, is_last in document_chunks(text, chunk_chars or CHUNK_CHARS):
            builder.add(chunk, is_last)
        if expected_docs is not None and counts.documents_read != expected_docs:
            raise BadInput(f"samples: {text} holds {counts.documents_read} documents, the duplicates file "
                           f"{duplicates} expects {expected_docs}: it was written for another version of the part")
        train.attrs["num_documents"] = counts.train_documents
        valid.attrs["num_documents"] = counts.valid_documents
        train.close()
        valid.close()
    except BaseException:
        train.abort()
        valid.abort()
        raise
    counts.seconds = time.perf_counter() - builder.started
    counts.train_samples, counts.valid_samples = train.rows, valid.rows
    counts.check_samples(train.statistics(spec["max_seq_length"]), spec["max_seq_length"])
    log_part(counts, train, valid, spec["max_seq_length"])
    if stats_out is not None:
        atomic.write_json(stats_out, counts.record(train, valid, spec["max_seq_length"]))
    return counts


def part_counts(spec: dict, text: Path, part: Part, weight: float, tokenizer, drop: set) -> PartCounts:
    """The part's counts, with the characters-per-token threshold it applies (its median estimated first)."""
    # `or 0.0`: a 0 in the config is written to the stats as 0.0, as it always was.
    counts = PartCounts(text, part, weight, spec["dup_factor"], spec["min_chars_per_token"] or 0.0)
    relative = spec_value(spec, "min_chars_per_token_relative")
    if counts.min_chars_per_token > 0 and relative:
        counts.median_chars_per_token = part_median_chars_per_token(tokenizer, text, drop)
    counts.chars_per_token_threshold = tokenizer_fit.threshold(counts.min_chars_per_token, relative,
                                                               counts.median_chars_per_token)
    return counts


def log_part(counts: PartCounts, train: "ShardWriter", valid: "ShardWriter", length: int) -> None:
    """The part's summary lines, then each of its warnings (PartCounts.check_samples) once, then the speed."""
    lines = [*counts.summary(), f"samples: train {train.path}: {train.summary(length)}",
             f"samples: valid {valid.path}: {valid.summary(length)}"]
    for line in lines + [f"samples: WARNING: {w}" for w in counts.warnings]:
        print(line)
    elapsed = max(counts.seconds, 1e-9)
    print(f"samples: {counts.tokens} tokens in {elapsed:.1f} s ({counts.tokenize_seconds:.1f} s tokenizing): "
          f"{counts.tokens / elapsed:,.0f} tokens/s, {(train.rows + valid.rows) / elapsed:,.0f} samples/s")


def spec_value(spec: dict, key: str):
    """spec[key], or the schema's default where a caller's spec predates the key (the rule passes them all)."""
    if key in spec:
        return spec[key]
    from workflow_scripts.config_effects import schema

    return schema()["properties"]["samples"]["properties"][key]["default"]


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="the config's samples section as JSON")
    parser.add_argument("--tokenizer", required=True, type=Path, help="tokenizer folder (tokenizer.json or vocab.txt)")
    parser.add_argument("--text", required=True, type=Path,
                        help="text part: one sentence per line, blank line between documents")
    parser.add_argument("--corpus", required=True, help="the part's corpus name; with --part it seeds the streams")
    parser.add_argument("--part", required=True, type=int, help="the part's number in its corpus")
    parser.add_argument("--train-out", required=True, type=Path)
    parser.add_argument("--valid-out", required=True, type=Path)
    parser.add_argument("--weight", type=float, default=1.0,
                        help="the part's corpus weight: train documents get dup_factor x weight passes")
    parser.add_argument("--duplicates", type=Path, help="duplicates JSON (workflow_scripts.data.dedup): documents to skip")
    parser.add_argument("--stats-out", type=Path, help="write counts and sample statistics here (JSON)")
    args = parser.parse_args(argv)
    spec = json_object(args.spec, "--spec", "samples", required=SPEC_KEYS)
    print("samples: spec " + json.dumps(spec, sort_keys=True), flush=True)
    build_shards(spec, args.tokenizer, args.text, Part(args.corpus, args.part), args.train_out, args.valid_out,
                 weight=args.weight, duplicates=args.duplicates, stats_out=args.stats_out)


if __name__ == "__main__":
    sys.exit(main())
