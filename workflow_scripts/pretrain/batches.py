"""Masked-LM HDF5 shards -> micro-batches: each rank its own shards, read pass-major, reshuffled per epoch, resumable.

The shard layout, and the model argument each dataset feeds, are workflow_scripts.data.shard_format's.

Empty shards (a text part left without samples: samples.py warned in its log) are skipped before
anything is split, so they cost no rank its share; every train shard empty is one clear error.

Split across ranks: shard i (of the non-empty ones) goes to rank i % world; with fewer shards than ranks every rank
reads every shard and takes rows rank::world. Every rank runs the same number of micro-batches
per epoch (the smallest rank's share, in whole optimizer steps), so no rank waits on a
collective the others never reach; a bigger share loses a different random tail each epoch.

Order (issue 10): a shard holds dup_factor x weight masking passes of its documents, and a budget
run reads only a fraction of an epoch, so an epoch is read pass-major: its units are (shard, pass),
each rank orders its units by (pass + u) / passes of the shard, u random per unit and epoch (see
epoch_units), and shuffles the rows inside a unit. With equal passes everywhere that is pass 0 of
every shard (in a random shard order) before pass 1 of any, so 1/dup_factor of an epoch reads every
document once; a weighted corpus's passes spread evenly over the epoch. (academic-budget-bert writes one file per
(text shard, pass) and shuffles the file list for the same reason; benchmarks/data_order.py
compares.) One unit is read at a time. Shards without pass and document ids (written before
issue 10) are read as one pass, and documents_seen is then None.

Packed shards (samples.packing documents) also feed token_document_ids as the model's document_ids
(attention per document); documents_seen counts every document a packed row holds.
"""
import math

import numpy as np
from workflow_scripts.data import shard_format
from workflow_scripts.errors import BadInput

ARGUMENTS = shard_format.arguments()  # shard dataset name -> model argument name


def shard_info(path: str) -> dict:
    """Rows, sequence length, predictions per row, NSP and row-id presence; the layout is checked by
    shard_format.py (the sample builder's validator), whose errors name the file and the problem. A
    damaged shard is set aside, so the next run rebuilds it (shard_format.set_aside)."""
    with shard_format.setting_aside_damaged():
        s = shard_format.shard_summary(path)
    return {"path": str(path), "rows": s["num_samples"], "seq_len": s["max_seq_length"],
            "predictions": s["max_predictions"], "nsp": s["nsp"], "packed": s["packed"], "row_ids": s["row_ids"]}


def check_consistent(infos: list, what: str) -> dict:
    """All shards of a set must agree on L, P, NSP and packing, since batches mix rows across shards."""
    if not infos:
        raise BadInput(f"no {what} shards given")
    first = infos[0]
    for info in infos[1:]:
        for key in ("seq_len", "predictions", "nsp", "packed"):
            if info[key] != first[key]:
                raise BadInput(f"{what} shard {info['path']}: {key}={info[key]} but {first['path']} has {first[key]}")
    return first


def nonempty(infos: list, what: str) -> list:
    """The shards that hold rows; the empty ones are named in one line and skipped."""
    empty = [info["path"] for info in infos if info["rows"] == 0]
    if empty:
        more = f" and {len(empty) - 1} more" if len(empty) > 1 else ""
        print(f"{what} shard {empty[0]}{more}: no samples (its text part gave none: the samples log says why); "
              "skipped", flush=True)
    return [info for info in infos if info["rows"]]


def rank_ranges(infos: list, rank: int, world: int) -> list:
    """(shard index, range of row numbers) this rank reads."""
    if len(infos) >= world:
        return [(i, range(infos[i]["rows"])) for i in range(rank, len(infos), world)]
    return [(i, range(rank, info["rows"], world)) for i, info in enumerate(infos)]


def rank_views(infos: list, rank: int, world: int) -> list:
    """(shard index, row indices) this rank reads."""
    return [(i, np.arange(r.start, r.stop, r.step)) for i, r in rank_ranges(infos, rank, world)]


def read_rows(path: str, rows: np.ndarray, with_nsp: bool, ids: bool = False, packed: bool = False) -> dict:
    """The given rows of one shard (in the given order) as numpy arrays, value-checked (positions
    inside the sequence, 0/1 masks); ids: also document_index; packed: also token_document_ids (the
    model's document_ids). Only slices around the rows are read."""
    rows = np.asarray(rows, dtype=np.int64)
    wanted = np.unique(rows)
    names = [d.name for d in shard_format.model_layout(with_nsp, packed)] + ([shard_format.DOCUMENT.name] if ids else [])
    with shard_format.setting_aside_damaged():
        arrays = shard_format.read_rows(path, wanted, names)
    where = np.searchsorted(wanted, rows)
    return {name: a[where] for name, a in arrays.items()}


def to_batch(arrays: dict) -> dict:
    """numpy rows -> the model's keyword arguments as torch tensors (dtypes kept; the model casts)."""
    import torch

    return {ARGUMENTS[name]: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}


def read_row_ids(path: str) -> tuple:
    """A shard's pass_index and documents for every row (None, None for a shard without them): document_index
    [N], or in a packed shard every token's document [N, L] (-1 on padding), so each counts."""
    import h5py

    with shard_format.setting_aside_damaged(), h5py.File(path, "r") as f:
        if not shard_format.has_row_ids(f):
            return None, None
        docs = shard_format.TOKEN_DOCUMENTS if shard_format.is_packed(f) else shard_format.DOCUMENT
        try:
            return f[shard_format.PASS.name][()].astype(np.int64), f[docs.name][()].astype(np.int64)
        except OSError as e:   # a corrupt chunk: only reading finds it
            raise shard_format.ShardError(path, f"row ids cannot be read, corrupt ({e})") from None


class TrainStream:
    """This rank's training micro-batches, epoch after epoch; position = (epoch, micro-batch index).

    documents_seen: the distinct documents (shard, document_index) this rank has yielded in the
    current epoch (None when a shard lacks document ids); documents: those its shards hold. The sum
    over ranks is exact when each shard is read by one rank (shards >= ranks); with fewer shards,
    a document split across ranks counts once per rank.
    """

    def __init__(self, paths: list, rank: int, world: int, micro_batch: int, accumulation: int, seed: int):
        infos = [shard_info(p) for p in paths]
        self.layout = check_consistent(infos, "train")
        self.infos = nonempty(infos, "train")
        if not self.infos:
            raise BadInput(f"every train shard is empty ({len(infos)} shards, {infos[0]['path']} first): no text part "
                           "gave a sample; the WARNING lines of logs/samples/*/part_*.log and the empty_reason of "
                           "results/samples/stats/*/part_*.json say why (text filtered away, or too few documents)")
        self.rank, self.world, self.micro, self.seed = rank, world, micro_batch, seed
        self.ranges = rank_ranges(self.infos, rank, world)
        shares = [sum(len(rows) for _, rows in rank_ranges(self.infos, r, world)) for r in range(world)]
        per_step = micro_batch * accumulation
        self.steps_per_epoch = min(shares) // per_step
        if self.steps_per_epoch == 0:
            raise BadInput(f"train shards hold {min(shares)} samples for the smallest of {world} rank(s), fewer than "
                             f"one optimizer step needs ({micro_batch} x {accumulation} accumulation): lower "
                             "batch_size or build more samples")
        self.micro_per_epoch = self.steps_per_epoch * accumulation
        self.share = shares[rank]
        self.counted = all(info["row_ids"] for info in self.infos)   # the same answer on every rank
        old = [info["path"] for info in self.infos if not info["row_ids"]]
        if old:
            print(f"train shard {old[0]}{f' and {len(old) - 1} more' if len(old) > 1 else ''}: no pass_index/"
                  "document_index (built before issue 10): read as one pass each, distinct documents not "
                  "counted; rebuild the samples for the pass-major order", flush=True)
        # Per shard this rank reads: rows per pass, and the documents held (ids read once here, not kept).
        self.pass_rows, self.documents, self._doc_space = {}, 0, {}
        for shard, rows in self.ranges:
            passes, docs = read_row_ids(self.infos[shard]["path"])
            if passes is None:
                self.pass_rows[shard] = np.array([len(rows)])
                continue
            passes, docs = passes[rows.start:rows.stop:rows.step], docs[rows.start:rows.stop:rows.step]
            self.pass_rows[shard] = np.bincount(passes, minlength=1) if len(passes) else np.array([0])
            self.documents += len(np.unique(docs[docs >= 0]))
            self._doc_space[shard] = int(docs.max()) + 1 if len(docs) else 0
        self.documents_seen = 0 if self.counted else None
        self._seen = {}

    def epoch_units(self, epoch: int) -> list:
        """(shard, pass, rows) in reading order; same seed, epoch and rank -> same order. Units without
        rows are left out.

        A unit's key is (pass + (h + v) / 2) / passes of its shard: v uniform per unit, h 0 for a
        random half of the shards and 1 for the other half, fixed for the epoch. So the shards are
        reshuffled in every pass, but a shard stays in its half of each pass: two passes of a document
        lie at least half a pass apart. Where a shard would still come twice in a row (a half with one
        shard), the next unit of another shard is moved in between."""
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        half = rng.permutation(len(self.ranges)) >= len(self.ranges) / 2
        units, keys = [], []
        for (shard, _), h in zip(self.ranges, half, strict=True):
            counts = self.pass_rows[shard]
            v = rng.random(len(counts))
            for p, n in enumerate(counts):
                if n:
                    units.append((shard, p, int(n)))
                    keys.append((p + (h + v[p]) / 2) / len(counts))
        order = [units[i] for i in np.argsort(keys, kind="stable")]
        for i in range(1, len(order)):
            if order[i][0] == order[i - 1][0]:
                # units i.. up to j are all that shard's, so moving j forward keeps every shard's pass order
                j = next((j for j in range(i + 1, len(order)) if order[j][0] != order[i][0]), None)
                if j is not None:
                    order.insert(i, order.pop(j))
        return order

    def unit_rows(self, epoch: int, shard: int, p: int, passes=None) -> np.ndarray:
        """The rows of pass p of a shard this rank reads, in this epoch's shuffled order."""
        r = dict(self.ranges)[shard]
        rows = np.arange(r.start, r.stop, r.step)
        if passes is None:
            passes, _ = read_row_ids(self.infos[shard]["path"])
        if passes is not None:
            rows = rows[passes[rows] == p]
        rng = np.random.default_rng([self.seed, epoch, self.rank, shard, p])
        return rows[rng.permutation(len(rows))]

    def _mark(self, shard: int, docs: np.ndarray) -> None:
        """Count the documents read (the epoch's distinct ones; docs: numbers, -1 for padding) in documents_seen."""
        docs = docs[docs >= 0]
        if not self.counted or not len(docs):
            return
        seen = self._seen.setdefault(shard, np.zeros(self._doc_space[shard], bool))
        new = np.unique(docs[~seen[docs]])
        seen[new] = True
        self.documents_seen += len(new)

    def _mark_skipped(self, epoch: int, skipped: list) -> None:
        """On a resume: count the documents of the units (shard, pass, rows to count) read before it."""
        if not self.counted:
            return
        for shard in sorted({s for s, _, _ in skipped}):
            passes, docs = read_row_ids(self.infos[shard]["path"])
            for s, p, n in skipped:
                if s == shard:
                    self._mark(shard, docs[self.unit_rows(epoch, shard, p, passes)[:n]])

    def epoch(self, epoch: int, start: int = 0):
        """Yield micro-batches start .. micro_per_epoch-1 of the epoch. Micro-batch b is rows
        [b*m, (b+1)*m) of the epoch's concatenated units, so resuming skips units unread (their
        documents are still counted in documents_seen)."""
        begin, end = start * self.micro, self.micro_per_epoch * self.micro
        self._seen, self.documents_seen = {}, (0 if self.counted else None)
        pos, buffer, skipped = 0, [], []
        for shard, p, n in self.epoch_units(epoch):
            lo, hi = pos, pos + n
            pos = hi
            if hi <= begin:
                skipped.append((shard, p, n))
                continue
            if lo >= end:
                break
            if lo < begin:
                skipped.append((shard, p, begin - lo))
            if skipped:
                self._mark_skipped(epoch, skipped)
                skipped = []
            rows = self.unit_rows(epoch, shard, p)
            take = rows[max(begin - lo, 0):min(end, hi) - lo]
            part = read_rows(self.infos[shard]["path"], take, self.layout["nsp"], ids=self.counted,
                             packed=self.layout["packed"])
            part["_shard"] = np.full(len(take), shard)
            buffer.append(part)
            have = sum(len(b["input_ids"]) for b in buffer)
            if have < self.micro:
                continue
            merged = {k: np.concatenate([b[k] for b in buffer]) for k in buffer[0]}
            full = have // self.micro * self.micro
            for i in range(0, full, self.micro):
                batch = {k: v[i:i + self.micro] for k, v in merged.items()}
                self._count(batch)
                yield to_batch(batch)
            buffer = [{k: v[full:] for k, v in merged.items()}] if full < have else []

    def _count(self, batch: dict) -> None:
        """Mark a batch's documents read and drop the bookkeeping columns (no model argument)."""
        shards = batch.pop("_shard")
        docs = batch.pop(shard_format.DOCUMENT.name, None)
        if docs is not None and shard_format.TOKEN_DOCUMENTS.name in batch:   # packed: every token's document
            docs = batch[shard_format.TOKEN_DOCUMENTS.name]
        if docs is not None:
            for shard in np.unique(shards):
                self._mark(int(shard), docs[shards == shard].astype(np.int64))


class ValidSet:
    """This rank's validation micro-batches: the first rows of its valid shards, fixed order,
    at most `max_samples` across all ranks, loaded once."""

    def __init__(self, paths: list, rank: int, world: int, micro_batch: int, max_samples: int, seq_len: int):
        infos = [shard_info(p) for p in paths]
        layout = check_consistent(infos, "valid")
        infos = nonempty(infos, "valid")
        if layout["seq_len"] != seq_len:
            raise BadInput(f"valid shard {layout['path']}: sequence length {layout['seq_len']} differs from "
                             f"the train shards' {seq_len}")
        cap = math.ceil(max_samples / world)
        parts, have = [], 0
        for shard, rows in rank_views(infos, rank, world):
            if have >= cap:
                break
            rows = rows[:cap - have]
            parts.append(read_rows(infos[shard]["path"], rows, layout["nsp"], packed=layout["packed"]))
            have += len(rows)
        self.samples = have
        self.batches = []
        if parts:
            merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            self.batches = [to_batch({k: v[i:i + micro_batch] for k, v in merged.items()})
                            for i in range(0, have, micro_batch)]
