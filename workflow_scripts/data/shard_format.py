"""Open and validate masked-LM HDF5 shards (academic-budget-bert layout); one clear error per bad shard.

    python -m workflow_scripts.data.shard_format results/samples/train/shard_*.h5   # one summary line per shard

Layout: input_ids i4 [N, L], input_mask i1 [N, L], segment_ids i1 [N, L],
masked_lm_positions i4 [N, P], masked_lm_ids i4 [N, P] (zero-padded past the real
predictions; position 0 is [CLS] and never predicted, so the first 0 ends the list),
next_sentence_labels i1 [N] only with NSP. Attrs (from workflow_scripts.data.samples):
tokenizer_sha1, max_seq_length, max_predictions_per_seq, masked_lm_prob, dup_factor, seed,
shard_index, nsp, num_samples, split, ...
"""
import argparse
from pathlib import Path
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors

# name -> (numpy dtype, trailing dimension: "L", "P" or None for [N])
DATASETS = {
    "input_ids": ("int32", "L"),
    "input_mask": ("int8", "L"),
    "segment_ids": ("int8", "L"),
    "masked_lm_positions": ("int32", "P"),
    "masked_lm_ids": ("int32", "P"),
}
NSP = ("next_sentence_labels", ("int8", None))


class ShardError(BadInput):
    """A shard that cannot be used; the message names the file and what is wrong. Uncaught, it exits with it."""


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
        raise ShardError(f"shard {path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ShardError(f"shard {path}: not a readable HDF5 file, truncated or corrupt ({e})") from None
    try:
        _check(f, path, max_seq_length, max_predictions, nsp)
    except BaseException:
        f.close()
        raise
    return f


def _check(f, path, max_seq_length, max_predictions, nsp):
    expected = dict(DATASETS)
    has_nsp = NSP[0] in f
    if nsp is None and "nsp" in f.attrs:
        nsp = bool(f.attrs["nsp"])
    if nsp is not None and nsp != has_nsp:
        raise ShardError(f"shard {path}: NSP expected {nsp} but dataset {NSP[0]} is "
                         f"{'present' if has_nsp else 'missing'}")
    if has_nsp:
        expected[NSP[0]] = NSP[1]
    missing = [name for name in expected if name not in f]
    if missing:
        raise ShardError(f"shard {path}: missing dataset(s) {', '.join(missing)} (has {', '.join(sorted(f.keys()))})")
    dims = {"L": max_seq_length, "P": max_predictions}
    rows = None
    for name, (dtype, tail) in expected.items():
        ds = f[name]
        if ds.dtype != dtype:
            raise ShardError(f"shard {path}: dataset {name} has dtype {ds.dtype}, expected {dtype}")
        if ds.ndim != (1 if tail is None else 2):
            raise ShardError(f"shard {path}: dataset {name} has shape {ds.shape}, expected "
                             f"{'[N]' if tail is None else f'[N, {tail}]'}")
        if rows is None:
            rows = ds.shape[0]
        elif ds.shape[0] != rows:
            raise ShardError(f"shard {path}: dataset {name} has {ds.shape[0]} rows, input_ids has {rows}")
        if tail is not None:
            if dims[tail] is None:
                dims[tail] = ds.shape[1]
            elif ds.shape[1] != dims[tail]:
                what = "max_seq_length" if tail == "L" else "max_predictions_per_seq"
                raise ShardError(f"shard {path}: dataset {name} is {ds.shape[1]} wide, expected {what} {dims[tail]}")
    for attr, value in (("num_samples", rows), ("max_seq_length", dims["L"]), ("max_predictions_per_seq", dims["P"])):
        if attr in f.attrs and int(f.attrs[attr]) != value:
            raise ShardError(f"shard {path}: attr {attr}={int(f.attrs[attr])} but the data has {value}")


def shard_summary(path, **expect) -> dict:
    """Validate a shard and return num_samples, max_seq_length, max_predictions, nsp and its attrs."""
    with open_shard(path, **expect) as f:
        n, length = f["input_ids"].shape
        return {"num_samples": n, "max_seq_length": length, "max_predictions": f["masked_lm_positions"].shape[1],
                "nsp": NSP[0] in f, "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}}


def load_shard(path, **expect) -> dict:
    """Validate a shard and read every dataset into memory: {name: numpy array}.

    Also catches damage only reading finds (a corrupt compressed chunk) and values out of
    range (positions past the sequence, a mask that is not 0/1).
    """
    import numpy as np

    path = Path(path)
    with open_shard(path, **expect) as f:
        arrays = {}
        for name in f:
            try:
                arrays[name] = f[name][()]
            except OSError as e:
                raise ShardError(f"shard {path}: dataset {name} cannot be read, corrupt ({e})") from None
    length = arrays["input_ids"].shape[1]
    positions = arrays["masked_lm_positions"]
    if positions.size and (positions.min() < 0 or positions.max() >= length):
        row = int(np.flatnonzero(((positions < 0) | (positions >= length)).any(axis=1))[0])
        raise ShardError(f"shard {path}: row {row} has a masked_lm_position outside [0, {length})")
    for name in ("input_mask", "segment_ids"):
        bad = (arrays[name] != 0) & (arrays[name] != 1)
        if bad.any():
            raise ShardError(f"shard {path}: row {int(np.flatnonzero(bad.any(axis=1))[0])} of {name} is not 0/1")
    return arrays


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
