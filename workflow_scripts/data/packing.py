"""Sequence packing of whole documents into rows (samples.packing documents), their boundaries kept.

What ModernBERT (Warner et al. 2024; AnswerDotAI/ModernBERT src/sequence_packer.py) and MosaicBERT
train on, written for our samples stage:
- each document is laid out as [CLS] tokens [SEP], as ModernBERT tokenizes every document with its
  special tokens before packing (so [CLS]/[SEP] are per document, not per row: a row's first [CLS]
  is no summary of the other documents in it, and the fine-tuning input [CLS] text [SEP] is what
  every document looks like here);
- a document longer than a row is cut into pieces of max_seq_length - 2 tokens (the last one
  shorter), each its own document in its row; ModernBERT truncates instead, which would drop most
  of a Wikipedia article at 128 tokens;
- pieces are placed best-fit (the open row with the least room that still holds the piece, else a
  new row), in a random order drawn per pass, so the passes pair different documents; ModernBERT
  packs best-fit from a shuffled stream too;
- each token records its document's number in the text part (-1 on padding): the model attends
  inside a document only. A full piece fills its row, so no row holds two pieces of one document
  and the number alone delimits the runs.
No NSP and no short_seq_prob: rows are filled, and positions count along the row (RoPE attention
depends on distances only, so inside a document that equals counting from its [CLS]).
"""
import numpy as np


def document_spans(corpus, docs):
    """The documents' (indices into corpus) token runs -> (start, length) int64 arrays."""
    starts = corpus.sent[corpus.doc[docs]]
    lengths = corpus.sent[corpus.doc[docs + 1]] - starts
    return starts, lengths


def cut(starts, lengths, cap: int):
    """Cut each run (start, length) into pieces of at most cap tokens -> (run of each piece, start, length)."""
    count = -(-lengths // cap)                                         # ceil: pieces per run, >= 1
    run = np.repeat(np.arange(len(lengths)), count)
    first = np.cumsum(count) - count                                   # index of each run's first piece
    k = np.arange(len(run)) - first[run]                               # piece number within its run
    start = starts[run] + k * cap
    length = np.minimum(cap, lengths[run] - k * cap)
    return run, start, length


def best_fit(sizes, order, row_length: int):
    """Place pieces (sizes include their [CLS]/[SEP]) in the given order -> (row, offset) per piece, rows.

    A piece that fills a row takes a new one at once; only the shorter ones (a document's tail, a short
    document: about one per document) go through the best-fit search, which scans the rows they opened."""
    n = len(sizes)
    row, offset = np.zeros(n, np.int64), np.zeros(n, np.int64)
    full = sizes[order] == row_length
    row[order[full]] = np.arange(int(full.sum()))
    rows = int(full.sum())
    room = np.zeros(n - rows, np.int64)      # room left in each row opened by a shorter piece
    opened = 0
    for i in order[~full]:
        size = sizes[i]
        fits = room[:opened] >= size
        if fits.any():
            r = int(np.argmin(np.where(fits, room[:opened], row_length + 1)))
        else:
            r, opened = opened, opened + 1
            room[r] = row_length
        row[i], offset[i] = rows + r, row_length - room[r]
        room[r] -= size
    return row, offset, rows + opened


def pack_documents(corpus, docs, numbers, rng, max_seq_length: int, vocab) -> dict:
    """Pack the documents (indices into corpus; numbers: each corpus document's number in the part).

    Returns ids int32 [N, L] ([CLS] doc [SEP] [CLS] doc [SEP] ... [PAD]...), real bool [N, L] (not
    padding), candidates bool [N, L] (document tokens: what masking may pick) and token_documents
    int32 [N, L] (the part's number of each token's document, -1 on padding)."""
    docs = np.asarray(docs, dtype=np.int64)
    length = max_seq_length
    run, start, count = cut(*document_spans(corpus, docs), length - 2)
    sizes = count + 2
    order = rng.permutation(len(sizes))
    row, offset, n_rows = best_fit(sizes, order, length)
    base = row * length + offset                                       # flat index of each piece's [CLS]
    ids = np.full(n_rows * length, vocab.pad, np.int32)
    real = np.zeros(n_rows * length, bool)
    candidates = np.zeros(n_rows * length, bool)
    token_documents = np.full(n_rows * length, -1, np.int32)
    # Every token of every piece, [CLS] and [SEP] included: piece p covers base[p] .. base[p] + sizes[p] - 1.
    span_piece = np.repeat(np.arange(len(sizes)), sizes)
    within = np.arange(len(span_piece)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    flat = base[span_piece] + within
    real[flat] = True
    token_documents[flat] = np.asarray(numbers)[docs[run[span_piece]]]
    inner = (within > 0) & (within <= count[span_piece])               # not the piece's [CLS] or [SEP]
    ids[flat[inner]] = corpus.tokens[start[span_piece[inner]] + within[inner] - 1]
    candidates[flat[inner]] = True
    ids[base] = vocab.cls
    ids[base + sizes - 1] = vocab.sep
    shape = (n_rows, length)
    return {"ids": ids.reshape(shape), "real": real.reshape(shape), "candidates": candidates.reshape(shape),
            "token_documents": token_documents.reshape(shape)}


def document_runs(token_documents) -> np.ndarray:
    """int64 [N]: the documents (runs of one number) in each packed row."""
    starts = np.ones(token_documents.shape, bool)
    starts[:, 1:] = token_documents[:, 1:] != token_documents[:, :-1]
    return (starts & (token_documents >= 0)).sum(axis=1)
