"""How well the tokenizer fits a corpus, the characters-per-token threshold judged against the corpus itself,
and the corpus warnings the samples log and the data report share.

Characters per token measure how much text a token carries: English Wikipedia runs ~4.8 with
bert-base-uncased, tables ~2.1, code ~1.6, and Russian ~1.2, Hindi ~1.6, Chinese ~1.0 under that
English vocabulary (measured here on the demo excerpt and Wikipedia sentences). An absolute
threshold (samples.min_chars_per_token, 3.0) therefore drops a whole corpus in a script the
vocabulary spells in short pieces; so the threshold a part applies is at most
samples.min_chars_per_token_relative times its own median (threshold()), estimated on the part's
first documents (median_chars_per_token()). Parts hold their corpus's documents interleaved, so
those are a sample of the corpus.

Fit: the [UNK] rate and the share of tokens that are one-character word pieces (##x: a word
spelled letter by letter; 1.8% in English Wikipedia with bert-base-uncased, 81% in Russian, 65% in
Hindi) say when a tokenizer suits a corpus badly, whatever its script: Chinese under a Chinese
vocabulary is ~1 character per token too, but spells nothing and has no [UNK]s.
"""
from dataclasses import dataclass

CPT_SAMPLE_CHARS = 1 << 18   # characters of a part's first documents that estimate its median (a re-tokenizing pre-pass: kept short)
# A part warns when more than this share of its tokens are [UNK], or are one-character pieces.
POOR_UNK_RATE = 0.01
POOR_SPELLED_RATE = 0.25
# The data report also warns when a corpus's characters per token are below this fraction of the
# best-fitted corpus's (the others' text carries twice as much per token).
FAR_BELOW_OTHERS = 0.5
WHAT_TO_DO = ("train a tokenizer on the corpora (tokenizer: {train: {vocab_size: 30522}}; one trained already needs "
              "a larger vocab_size, or more of this corpus's text) or use a multilingual one "
              "(tokenizer: {pretrained: bert-base-multilingual-cased})")


def document_chars(documents):
    """float64 [D]: each document's characters as the filter counts them (its sentences joined by spaces)."""
    import numpy as np

    return np.fromiter((sum(map(len, d)) + len(d) - 1 for d in documents), dtype=np.float64, count=len(documents))


def median_chars_per_token(documents, tokens_of) -> float | None:
    """The median characters per token over the first documents (an iterable of sentence lists)
    that hold CPT_SAMPLE_CHARS characters; tokens_of(sample) gives each one's token count.
    None when none has a token."""
    import numpy as np

    sample, size = [], 0
    for doc in documents:
        sample.append(doc)
        size += sum(map(len, doc))
        if size >= CPT_SAMPLE_CHARS:
            break
    tokens = np.asarray(tokens_of(sample), dtype=np.float64) if sample else np.zeros(0)
    has = tokens > 0
    if not has.any():
        return None
    return float(np.median(document_chars(sample)[has] / tokens[has]))


def threshold(absolute: float, relative: float, median: float | None) -> float:
    """The characters per token below which a part drops a document: min(absolute, relative x the
    part's median); absolute alone when relative is 0 or the median unknown; 0 (off) when absolute is 0."""
    if absolute <= 0 or not relative or median is None:
        return absolute
    return min(absolute, relative * median)


@dataclass
class Fit:
    """Counts over a part's kept documents: characters, tokens, [UNK] tokens, one-character pieces."""

    characters: int = 0
    tokens: int = 0
    unknown: int = 0
    spelled: int = 0

    def add(self, documents, tokens, unk_id, spelled_lut) -> None:
        """Count kept documents (sentence lists) and their token ids (int32 [T])."""
        self.characters += int(document_chars(documents).sum())
        self.tokens += len(tokens)
        if unk_id is not None:
            self.unknown += int((tokens == unk_id).sum())
        self.spelled += int(spelled_lut[tokens].sum())

    def record(self, median: float | None, applied: float) -> dict:
        """The stats JSON's tokenizer_fit: the rates, and the median and threshold the filter used."""
        n = max(self.tokens, 1)
        return {"chars_per_token": round(self.characters / n, 3) if self.tokens else None,
                "unk_rate": round(self.unknown / n, 5), "spelled_rate": round(self.spelled / n, 5),
                "median_chars_per_token": None if median is None else round(median, 3),
                "chars_per_token_threshold": round(applied, 3)}


def poor_fit_warning(corpus: str, fit: dict) -> str | None:
    """One line naming the corpus, its numbers and what to do, when its [UNK] or one-character-piece
    rate is high (fit: Fit.record()); None when the tokenizer fits."""
    if fit["chars_per_token"] is None or (fit["unk_rate"] <= POOR_UNK_RATE and fit["spelled_rate"] <= POOR_SPELLED_RATE):
        return None
    return (f"the tokenizer fits corpus {corpus} poorly: {fit['chars_per_token']:.2f} characters per token, "
            f"{fit['unk_rate']:.1%} [UNK], {fit['spelled_rate']:.0%} of tokens one-character pieces (words spelled "
            f"letter by letter; English Wikipedia with bert-base-uncased: ~4.8, ~0%, 2%); {WHAT_TO_DO}")


def far_below_others(chars_per_token: dict) -> dict:
    """{corpus: (its chars per token, the best corpus, that one's)} for corpora below FAR_BELOW_OTHERS x the best."""
    known = {c: v for c, v in chars_per_token.items() if v}
    if len(known) < 2:
        return {}
    best = max(known, key=known.get)
    return {c: (v, best, known[best]) for c, v in known.items() if v < FAR_BELOW_OTHERS * known[best]}


def short_samples_warning(corpus: str, tokens_per_sample: float, max_seq_length: int) -> str | None:
    """One line when a corpus's train samples hold under half of max_seq_length real tokens on average
    (a sentence-per-row dataset fed as is: each sample one short sentence and padding)."""
    if tokens_per_sample >= max_seq_length / 2:
        return None
    return (f"corpus {corpus}: its train samples hold {tokens_per_sample:.1f} real tokens on average, under half of "
            f"max_seq_length {max_seq_length}: its documents are short (one sentence or line per row?); form "
            "documents from consecutive rows, or lower max_seq_length")
