"""The masked-LM HDF5 shard format (academic-budget-bert layout): its one definition, and a validator.

    python -m workflow_scripts.data.shard_format results/samples/train/*/part_*.h5   # one summary line per shard

The writer (workflow_scripts.data.samples), this validator and the training loader
(workflow_scripts.pretrain.batches) all read the layout from here: DATASETS (name, dtype,
width, the model argument it feeds) and shard_attrs (what a shard records about its making).
masked_lm_positions and masked_lm_ids are zero-padded past the real predictions (position 0
is [CLS] and never predicted, so the first 0 ends the list).

ROW_IDS (pass_index, document_index) say which of the dup_factor x weight passes made a row and
from which document of the text part (its number in read order); no model argument reads them.
The loader reads an epoch pass-major with them (issue 10: any prefix of an epoch covers the
documents as evenly as the passes allow) and counts the distinct documents read. Shards written
before them still load (read as one pass, documents not counted); academic-budget-bert's
loader reads only the datasets it knows, so they stay compatible.

Packed shards (samples.packing documents, attr packing) add TOKEN_DOCUMENTS, per token the number
in the text part of the document it comes from (-1 on padding), fed to the model as document_ids
(only model.type modernbert takes it: attention per document). Inside a row each document is one
contiguous run (a document longer than a row is split into row-sized pieces, so no row holds two
pieces of one document); the validator checks both. Their per-row document_index is the document
of the row's first token.
"""
import argparse
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors


@dataclass(frozen=True)
class Dataset:
    name: str
    dtype: str        # numpy dtype
    width: str | None  # trailing dimension: "L" (max_seq_length), "P" (max_predictions_per_seq), None for [N]
    argument: str | None  # the model keyword argument it feeds (None: bookkeeping, not fed to the model)


DATASETS = (
    Dataset("input_ids", "int32", "L", "input_ids"),
    Dataset("input_mask", "int8", "L", "attention_mask"),
    Dataset("segment_ids", "int8", "L", "token_type_ids"),
    Dataset("masked_lm_positions", "int32", "P", "masked_lm_positions"),
    Dataset("masked_lm_ids", "int32", "P", "masked_lm_ids"),
)
NSP = Dataset("next_sentence_labels", "int8", None, "next_sentence_labels")  # only in shards built with NSP
PASS = Dataset("pass_index", "int16", None, None)            # 0 .. passes-1: the masking pass that made the row
DOCUMENT = Dataset("document_index", "int32", None, None)    # the row's document: its number in the text part
ROW_IDS = (PASS, DOCUMENT)  # written by samples.py since issue 10; older shards lack both
# Packed shards only: each token's document (its number in the text part), -1 on padding.
TOKEN_DOCUMENTS = Dataset("token_document_ids", "int32", "L", "document_ids")
PACKINGS = ("segments", "documents")  # samples.packing; a shard without the attr is segments
# The attr that records each width (and names it in errors).
WIDTH_ATTRS = {"L": "max_seq_length", "P": "max_predictions_per_seq"}


def model_layout(nsp: bool, packed: bool = False) -> tuple:
    """The datasets that feed the model, with or without NSP, packed (documents) or not."""
    return DATASETS + ((NSP,) if nsp else ()) + ((TOKEN_DOCUMENTS,) if packed else ())


def layout(nsp: bool, packed: bool = False) -> tuple:
    """The datasets of a shard built with or without NSP, packed or not, in the order they are written."""
    return model_layout(nsp, packed) + ROW_IDS


def arguments() -> dict:
    """Shard dataset name -> model keyword argument (the datasets that feed the model)."""
    return {d.name: d.argument for d in model_layout(nsp=True, packed=True)}


def is_packed(f) -> bool:
    """Whether an open shard holds packed documents (samples.packing documents)."""
    return TOKEN_DOCUMENTS.name in f


def has_row_ids(f) -> bool:
    """Whether an open shard records each row's pass and document (the layout since issue 10)."""
    return all(d.name in f for d in ROW_IDS)


def shard_attrs(spec: dict, tokenizer_sha1: str, part, source: str, split: str, dup_factor: int,
                weight: float | None = None) -> dict:
    """A shard's attrs from its `samples:` spec, in the order written; the writer adds num_documents
    and num_samples when it closes. part: the text part's corpus and number (samples.Part);
    weight: the corpus weight (train shards only)."""
    attrs = {"tokenizer_sha1": tokenizer_sha1, "max_seq_length": spec["max_seq_length"],
             "max_predictions_per_seq": spec["max_predictions_per_seq"], "masked_lm_prob": spec["masked_lm_prob"],
             "short_seq_prob": spec["short_seq_prob"], "whole_word_masking": spec["whole_word_masking"],
             "seed": spec["seed"], "corpus": part.corpus, "part": part.index, "nsp": spec["nsp"], "source": source,
             "split": split, "dup_factor": dup_factor}
    if spec.get("packing", "segments") != "segments":   # segments shards stay as they were
        attrs["packing"] = spec["packing"]
    if weight is not None:
        attrs["weight"] = weight
    return attrs


class ShardError(BadInput):
    """A shard that cannot be used; the message names the file and what is wrong. Uncaught, it exits with it.

    damaged: the file itself is broken (unreadable, a dataset missing or malformed, attrs that contradict
    the data, values out of range): rebuilding it helps. Not so for a missing file or a shard that only
    disagrees with what the caller expected of it (damaged=False)."""

    def __init__(self, path, problem: str, damaged: bool = True):
        super().__init__(f"shard {path}: {problem}")
        self.path, self.problem, self.damaged = Path(path), problem, damaged


# A damaged shard is renamed to NAME.corrupt by the reader that finds it (issue 14): a missing output
# makes its samples job stale, so the next plain run rebuilds the shard (and whatever read it); left in
# place, a rerun would take it for whole. The .corrupt copy stays for a look; nothing reads it.
CORRUPT_SUFFIX = ".corrupt"


def set_aside(path) -> Path:
    """Rename a damaged shard to NAME.corrupt beside it (replacing an older one) and return that name.
    Another process (rank) may have moved it first: that is no error."""
    path = Path(path)
    aside = path.with_name(path.name + CORRUPT_SUFFIX)
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        pass
    return aside


@contextlib.contextmanager
def setting_aside_damaged():
    """Within: a ShardError for a damaged shard sets the shard aside (set_aside) and says so in its line."""
    try:
        yield
    except ShardError as e:
        if not e.damaged:
            raise
        aside = set_aside(e.path)
        raise ShardError(e.path, f"{e.problem}; moved aside to {aside} so that the next run rebuilds it",
                         damaged=False) from None


def open_shard(path, max_seq_length: int | None = None, max_predictions: int | None = None,
               nsp: bool | None = None):
    """An h5py.File (read-only, caller closes) whose datasets, dtypes and shapes were checked.

    Optional expectations (max_seq_length, max_predictions, nsp) are checked too. Raises
    ShardError for a missing, truncated or corrupt file, a missing dataset, a wrong dtype,
    disagreeing row counts, or attrs that contradict the data.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ShardError(path, "no such file", damaged=False)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ShardError(path, f"not a readable HDF5 file, truncated or corrupt ({e})") from None
    try:
        _check(f, path, max_seq_length, max_predictions, nsp)
    except BaseException:
        f.close()
        raise
    return f


def _check(f, path, max_seq_length, max_predictions, nsp):
    has_nsp = NSP.name in f
    asked_nsp = nsp is not None   # else the shard's own attr: a contradiction inside the file
    if nsp is None and "nsp" in f.attrs:
        nsp = bool(f.attrs["nsp"])
    if nsp is not None and nsp != has_nsp:
        raise ShardError(path, f"NSP expected {nsp} but dataset {NSP.name} is "
                         f"{'present' if has_nsp else 'missing'}", damaged=not asked_nsp)
    packing = str(f.attrs.get("packing", "segments"))
    if packing not in PACKINGS or (packing == "documents") != is_packed(f):
        raise ShardError(path, f"attr packing={packing!r} but dataset {TOKEN_DOCUMENTS.name} is "
                         f"{'present' if is_packed(f) else 'missing'}: rebuild its samples")
    expected = model_layout(has_nsp, is_packed(f))
    missing = [d.name for d in expected if d.name not in f]
    if missing:
        raise ShardError(path, f"missing dataset(s) {', '.join(missing)} (has {', '.join(sorted(f.keys()))})")
    present = [d.name for d in ROW_IDS if d.name in f]
    if present and len(present) < len(ROW_IDS):
        raise ShardError(path, f"has {present[0]} but not "
                         f"{', '.join(d.name for d in ROW_IDS if d.name not in f)}: rebuild its samples")
    if present:
        expected += ROW_IDS
    dims = {"L": max_seq_length, "P": max_predictions}
    asked = {w for w, v in dims.items() if v is not None}
    rows = None
    for d in expected:
        rows = _check_dataset(f[d.name], d, path, rows, dims, asked)
    for attr, value in (("num_samples", rows), *((WIDTH_ATTRS[w], dims[w]) for w in ("L", "P"))):
        if attr in f.attrs and int(f.attrs[attr]) != value:
            raise ShardError(path, f"attr {attr}={int(f.attrs[attr])} but the data has {value}")


def _check_dataset(ds, d: Dataset, path, rows: int | None, dims: dict, asked: set) -> int:
    """One dataset's dtype, rank, rows and width -> its rows. The first dataset sets the rows, and a
    width seen first is recorded in dims; asked: the widths the caller expects (a mismatch there is
    no damage)."""
    if ds.dtype != d.dtype:
        raise ShardError(path, f"dataset {d.name} has dtype {ds.dtype}, expected {d.dtype}")
    if ds.ndim != (1 if d.width is None else 2):
        raise ShardError(path, f"dataset {d.name} has shape {ds.shape}, expected "
                         f"{'[N]' if d.width is None else f'[N, {d.width}]'}")
    if rows is not None and ds.shape[0] != rows:
        raise ShardError(path, f"dataset {d.name} has {ds.shape[0]} rows, input_ids has {rows}")
    if d.width is not None:
        if dims[d.width] is None:
            dims[d.width] = ds.shape[1]
        elif ds.shape[1] != dims[d.width]:
            raise ShardError(path, f"dataset {d.name} is {ds.shape[1]} wide, expected "
                             f"{WIDTH_ATTRS[d.width]} {dims[d.width]}", damaged=d.width not in asked)
    return ds.shape[0]


def shard_summary(path, **expect) -> dict:
    """Validate a shard and return num_samples, max_seq_length, max_predictions, nsp and its attrs."""
    with open_shard(path, **expect) as f:
        n, length = f["input_ids"].shape
        return {"num_samples": n, "max_seq_length": length, "max_predictions": f["masked_lm_positions"].shape[1],
                "nsp": NSP.name in f, "packed": is_packed(f), "row_ids": has_row_ids(f), "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}}


def load_shard(path, **expect) -> dict:
    """Validate a shard and read every dataset into memory: {name: numpy array}.

    Also catches damage only reading finds (a corrupt compressed chunk) and values out of
    range (positions past the sequence, a mask that is not 0/1).
    """

    path = Path(path)
    with open_shard(path, **expect) as f:
        arrays = {}
        for name in f:
            try:
                arrays[name] = f[name][()]
            except OSError as e:
                raise ShardError(path, f"dataset {name} cannot be read, corrupt ({e})") from None
    _check_values(path, arrays, None)
    return arrays


# Rows closer than this are read in one slice (HDF5 decodes whole chunks of 1024 rows anyway).
SPAN_GAP = 4096


def read_rows(path, rows, names) -> dict:
    """Validate a shard and read the given rows (sorted, unique row numbers) of the named datasets:
    {name: numpy array}, value-checked as load_shard does. Rows are read as slices of nearby rows,
    so reading one pass of a shard never holds the whole shard."""
    import numpy as np

    path, rows = Path(path), np.asarray(rows, dtype=np.int64)
    cuts = np.flatnonzero(np.diff(rows) > SPAN_GAP) + 1
    spans = [(int(r[0]), int(r[-1]) + 1, r - r[0]) for r in np.split(rows, cuts) if len(r)]
    with open_shard(path) as f:
        arrays = {}
        for name in names:
            ds = f[name]
            try:
                parts = [ds[lo:hi][local] for lo, hi, local in spans]
            except OSError as e:
                raise ShardError(path, f"dataset {name} cannot be read, corrupt ({e})") from None
            arrays[name] = np.concatenate(parts) if parts else np.zeros((0, *ds.shape[1:]), ds.dtype)
    _check_values(path, arrays, rows)
    return arrays


def _check_values(path, arrays: dict, rows) -> None:
    """Positions inside the sequence and 0/1 masks, for the datasets read; `rows` maps array rows
    to the file's row numbers in the message (None: all rows were read)."""
    import numpy as np

    def row_of(bad):
        i = int(np.flatnonzero(bad.any(axis=1))[0])
        return i if rows is None else int(rows[i])

    if "masked_lm_positions" in arrays and "input_ids" in arrays:
        length = arrays["input_ids"].shape[1]
        positions = arrays["masked_lm_positions"]
        if positions.size and (positions.min() < 0 or positions.max() >= length):
            raise ShardError(path, f"row {row_of((positions < 0) | (positions >= length))} has a "
                             f"masked_lm_position outside [0, {length})")
    for name in ("input_mask", "segment_ids"):
        if name in arrays:
            bad = (arrays[name] != 0) & (arrays[name] != 1)
            if bad.any():
                raise ShardError(path, f"row {row_of(bad)} of {name} is not 0/1")
    if TOKEN_DOCUMENTS.name in arrays and "input_mask" in arrays:
        _check_token_documents(path, arrays[TOKEN_DOCUMENTS.name], arrays["input_mask"], row_of)


def _check_token_documents(path, docs, mask, row_of) -> None:
    """Packed rows: a document number >= 0 exactly on the real tokens, each document one contiguous run."""
    import numpy as np
    from workflow_scripts.data.packing import document_runs

    bad = (docs >= 0) != (mask == 1)
    if bad.any():
        raise ShardError(path, f"row {row_of(bad)} of {TOKEN_DOCUMENTS.name} is not >= 0 exactly on "
                         "its real tokens (input_mask)")
    ordered = np.sort(docs, axis=1)
    distinct = np.ones_like(docs, dtype=bool)
    distinct[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    distinct &= ordered >= 0
    split = (document_runs(docs) != distinct.sum(axis=1))[:, None]
    if split.any():
        raise ShardError(path, f"row {row_of(split)} of {TOKEN_DOCUMENTS.name} holds a document in two "
                         "runs (attention would join them): rebuild its samples")


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", nargs="+", type=Path)
    parser.add_argument("--deep", action="store_true", help="also read every value (slower; finds corrupt chunks)")
    args = parser.parse_args(argv)
    for path in args.shards:
        if args.deep:
            load_shard(path)
        s = shard_summary(path)
        print(f"{path}: {s['num_samples']} samples x {s['max_seq_length']} tokens, "
              f"{s['max_predictions']} predictions, nsp {s['nsp']}, split {s['attrs'].get('split', '?')}")


if __name__ == "__main__":
    main()
