"""Masked-LM HDF5 shards -> micro-batches: each rank its own shards, reshuffled per epoch, resumable.

The shard layout, and the model argument each dataset feeds, are workflow_scripts.data.shard_format's.

Split across ranks: shard i goes to rank i % world; with fewer shards than ranks every rank
reads every shard and takes rows rank::world. Every rank runs the same number of micro-batches
per epoch (the smallest rank's share, in whole optimizer steps), so no rank waits on a
collective the others never reach; a bigger share loses a different random tail each epoch.
"""
import math

import numpy as np
from workflow_scripts.data import shard_format
from workflow_scripts.errors import BadInput

ARGUMENTS = shard_format.arguments()  # shard dataset name -> model argument name


def shard_info(path: str) -> dict:
    """Rows, sequence length, predictions per row and NSP presence; the layout is checked by
    shard_format.py (the sample builder's validator), whose errors name the file and the problem."""
    s = shard_format.shard_summary(path)
    return {"path": str(path), "rows": s["num_samples"], "seq_len": s["max_seq_length"],
            "predictions": s["max_predictions"], "nsp": s["nsp"]}


def check_consistent(infos: list, what: str) -> dict:
    """All shards of a set must agree on L, P and NSP, since batches mix rows across shards."""
    if not infos:
        raise BadInput(f"no {what} shards given")
    first = infos[0]
    for info in infos[1:]:
        for key in ("seq_len", "predictions", "nsp"):
            if info[key] != first[key]:
                raise BadInput(f"{what} shard {info['path']}: {key}={info[key]} but {first['path']} has {first[key]}")
    return first


def rank_views(infos: list, rank: int, world: int) -> list:
    """(shard index, row indices) this rank reads."""
    if len(infos) >= world:
        return [(i, np.arange(infos[i]["rows"])) for i in range(rank, len(infos), world)]
    return [(i, np.arange(rank, info["rows"], world)) for i, info in enumerate(infos)]


def read_rows(path: str, rows: np.ndarray, with_nsp: bool) -> dict:
    """The given rows of one shard (in the given order) as numpy arrays. The whole shard is read
    and value-checked (positions inside the sequence, 0/1 masks) before an in-memory gather:
    h5py's fancy indexing is slow and wants sorted rows."""
    arrays = shard_format.load_shard(path)
    return {d.name: arrays[d.name][rows] for d in shard_format.layout(with_nsp)}


def to_batch(arrays: dict) -> dict:
    """numpy rows -> the model's keyword arguments as torch tensors (dtypes kept; the model casts)."""
    import torch

    return {ARGUMENTS[name]: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}


class TrainStream:
    """This rank's training micro-batches, epoch after epoch; position = (epoch, micro-batch index)."""

    def __init__(self, paths: list, rank: int, world: int, micro_batch: int, accumulation: int, seed: int):
        self.infos = [shard_info(p) for p in paths]
        self.layout = check_consistent(self.infos, "train")
        self.rank, self.world, self.micro, self.seed = rank, world, micro_batch, seed
        self.views = rank_views(self.infos, rank, world)
        shares = [sum(len(rows) for _, rows in rank_views(self.infos, r, world)) for r in range(world)]
        per_step = micro_batch * accumulation
        self.steps_per_epoch = min(shares) // per_step
        if self.steps_per_epoch == 0:
            raise BadInput(f"train shards hold {min(shares)} samples for the smallest of {world} rank(s), fewer than "
                             f"one optimizer step needs ({micro_batch} x {accumulation} accumulation): lower "
                             "batch_size or build more samples")
        self.micro_per_epoch = self.steps_per_epoch * accumulation
        self.share = shares[rank]

    def _epoch_order(self, epoch: int) -> list:
        """Shards in a fresh random order, each shard's rows shuffled; same seed -> same order."""
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        return [(self.views[i][0], rng.permutation(self.views[i][1])) for i in rng.permutation(len(self.views))]

    def epoch(self, epoch: int, start: int = 0):
        """Yield micro-batches start .. micro_per_epoch-1 of the epoch. Micro-batch b is rows
        [b*m, (b+1)*m) of the epoch's concatenated order, so resuming skips shards unread."""
        begin, end = start * self.micro, self.micro_per_epoch * self.micro
        pos, buffer = 0, []
        for shard, rows in self._epoch_order(epoch):
            lo, hi = pos, pos + len(rows)
            pos = hi
            if hi <= begin:
                continue
            if lo >= end:
                break
            take = rows[max(begin - lo, 0):min(end, hi) - lo]
            buffer.append(read_rows(self.infos[shard]["path"], take, self.layout["nsp"]))
            have = sum(len(b["input_ids"]) for b in buffer)
            if have < self.micro:
                continue
            merged = {k: np.concatenate([b[k] for b in buffer]) for k in buffer[0]}
            full = have // self.micro * self.micro
            for i in range(0, full, self.micro):
                yield to_batch({k: v[i:i + self.micro] for k, v in merged.items()})
            buffer = [{k: v[full:] for k, v in merged.items()}] if full < have else []


class ValidSet:
    """This rank's validation micro-batches: the first rows of its valid shards, fixed order,
    at most `max_samples` across all ranks, loaded once."""

    def __init__(self, paths: list, rank: int, world: int, micro_batch: int, max_samples: int, seq_len: int):
        infos = [shard_info(p) for p in paths]
        layout = check_consistent(infos, "valid")
        if layout["seq_len"] != seq_len:
            raise BadInput(f"valid shard {infos[0]['path']}: sequence length {layout['seq_len']} differs from "
                             f"the train shards' {seq_len}")
        cap = math.ceil(max_samples / world)
        parts, have = [], 0
        for shard, rows in rank_views(infos, rank, world):
            if have >= cap:
                break
            rows = rows[:cap - have]
            parts.append(read_rows(infos[shard]["path"], rows, layout["nsp"]))
            have += len(rows)
        self.samples = have
        self.batches = []
        if parts:
            merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            self.batches = [to_batch({k: v[i:i + micro_batch] for k, v in merged.items()})
                            for i in range(0, have, micro_batch)]
