"""Data order: how much of the corpus a prefix of an epoch covers, ours vs academic-budget-bert's layout.

Claim (issue 10): "any prefix of an epoch covers the documents as evenly as the passes allow"; a
budget run reads a fraction of an epoch (a 24 h / 23k-step recipe ~25-30% of a dup_factor-10 one).

Shards: the real Wikipedia excerpt (resources/enwiki-excerpt.xml.bz2) through our corpus stage
into --parts text parts and our samples stage (bert-base-uncased, seq 128, dup_factor --dup,
weight 1): one train shard per part, every row carrying its pass and document.
- ours: workflow_scripts.pretrain.batches.TrainStream on those shards, one rank (the
  coverage curve is the loader's own documents_seen counter, the one the pretraining log
  records, checked against the order it yields);
- peer: academic-budget-bert's layout on the same rows: one file per (text part, pass)
  (dataset/generate_samples.py loops `for dup_idx in range(dup_factor): for f in shard_files`),
  the file list shuffled (pretraining/dataset/bert_dataset_provider.py: `random.shuffle`),
  the rows of each file read in random order (RandomSampler).
Measured over --seeds seeds each (mean, and the worst seed for ours): the fraction of distinct
train documents read after 10%, 25% and 50% of an epoch (target: ours >= peer at each); and the
most times one document is read inside any window of 1% of the epoch, counted two ways: in
different passes (the same text masked again: the duplication the order is about) and in rows
(a long document has many segments per pass, in either layout). For reference it also prints
the order before issue 10 (every pass of a part in one shard, read shard after shard).

    python -m benchmarks.data_order [--parts 8] [--dup 10] [--seeds 20]
"""
import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PEER = "academic_budget_bert_layout"  # one file per (part, pass), file list shuffled, rows shuffled in a file
POINTS = (0.10, 0.25, 0.50)
SPEC = {"max_seq_length": 128, "masked_lm_prob": 0.15, "max_predictions_per_seq": 20, "dup_factor": 10,
        "short_seq_prob": 0.1, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.05, "seed": 42,
        "min_chars_per_token": 0.0}


def build(work: Path, parts: int, dup: int) -> list:
    """Our corpus + samples stages on the real excerpt -> train shard paths."""
    from workflow_scripts import fetch_demo_data
    from workflow_scripts.data import corpus, samples

    fetch_demo_data.main([str(REPO / "resources")])
    texts = [work / f"part_{i}.txt" for i in range(parts)]
    corpus.main(["--source", json.dumps({"type": "wikipedia", "path": str(REPO / "resources/enwiki-excerpt.xml.bz2"),
                                         "parts": parts}), "--out", *map(str, texts)])
    paths = []
    for k, text in enumerate(texts):
        train, valid = work / f"train_{k}.h5", work / f"valid_{k}.h5"
        samples.build_shards({**SPEC, "dup_factor": dup}, REPO / "resources/bert-base-uncased", text,
                             samples.Part("wiki", k), train, valid)
        paths.append(str(train))
    return paths


def row_ids(paths: list) -> tuple:
    """Per shard: pass_index and a document id unique across shards, for every row."""
    import h5py

    passes, docs = [], []
    for k, path in enumerate(paths):
        with h5py.File(path) as f:
            passes.append(f["pass_index"][()].astype(np.int64))
            docs.append(f["document_index"][()].astype(np.int64) + (k << 32))
    return passes, docs


def ours(paths: list, seed: int, ids: tuple) -> tuple:
    """Our loader's epoch: (document, pass) of each row read, and documents_seen after each micro-batch."""
    from workflow_scripts.pretrain import batches

    micro = 64
    stream = batches.TrainStream(paths, 0, 1, micro, 1, seed=seed)
    seen = [stream.documents_seen for _ in stream.epoch(0)]
    passes, docs = ids
    order = [(docs[s][r], passes[s][r]) for s, p, _ in stream.epoch_units(0) for r in stream.unit_rows(0, s, p)]
    order = np.array(order[:stream.micro_per_epoch * micro])
    # the log's counter is the count of distinct documents in the order yielded
    check = [len(np.unique(order[:(i + 1) * micro, 0])) for i in (0, len(seen) // 3, len(seen) - 1)]
    assert check == [seen[0], seen[len(seen) // 3], seen[-1]], (check, seen[:3])
    return order, np.array(seen), micro


def peer(ids: tuple, seed: int) -> np.ndarray:
    """academic-budget-bert's epoch over the same rows: files (part, pass) shuffled, rows shuffled in each."""
    passes, docs = ids
    files = [(s, p) for s in range(len(passes)) for p in range(int(passes[s].max()) + 1)]
    rnd = random.Random(seed)
    rnd.shuffle(files)
    rng = np.random.default_rng(seed)
    order = []
    for s, p in files:
        rows = np.flatnonzero(passes[s] == p)
        order += [(docs[s][r], p) for r in rows[rng.permutation(len(rows))]]
    return np.array(order)


def one_shard_per_part(ids: tuple, seed: int) -> np.ndarray:
    """The order before issue 10, for reference: every pass of a part in its one shard, the shards
    shuffled, the rows shuffled inside each whole shard."""
    passes, docs = ids
    rng = np.random.default_rng(seed)
    order = []
    for s in rng.permutation(len(passes)):
        rows = rng.permutation(len(passes[s]))
        order += list(zip(docs[s][rows], passes[s][rows], strict=True))
    return np.array(order)


def coverage(order: np.ndarray, total: int) -> list:
    """Fraction of the documents read after each POINT of the epoch."""
    return [len(np.unique(order[:int(round(f * len(order))), 0])) / total for f in POINTS]


def max_repeats(order: np.ndarray) -> tuple:
    """The most times one document is read inside any window of 1% of the epoch: (passes, rows)."""
    w = max(1, len(order) // 100)
    most_rows = most_passes = 0
    for doc in np.unique(order[:, 0]):
        at = np.flatnonzero(order[:, 0] == doc)
        most_rows = max(most_rows, int((np.searchsorted(at, at + w) - np.arange(len(at))).max()))
        for i in range(len(at)):        # distinct passes among this document's reads in [at[i], at[i] + w)
            inside = at[i:np.searchsorted(at, at[i] + w)]
            most_passes = max(most_passes, len(np.unique(order[inside, 1])))
    return most_passes, most_rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--dup", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp), args.parts, args.dup)
        ids = row_ids(paths)
        total = len(np.unique(np.concatenate(ids[1])))
        rows = sum(len(p) for p in ids[0])
        print(f"{args.parts} train shards, {total} train documents, {rows} rows, dup_factor {args.dup}")
        cov = {"ours": [], "peer": [], "before issue 10": []}
        rep = {"ours": [], "peer": [], "before issue 10": []}
        for seed in range(args.seeds):
            order, seen, micro = ours(paths, seed, ids)
            cov["ours"].append(coverage(order, total))
            rep["ours"].append(max_repeats(order))
            theirs = peer(ids, seed)
            cov["peer"].append(coverage(theirs, total))
            rep["peer"].append(max_repeats(theirs))
            before = one_shard_per_part(ids, seed)
            cov["before issue 10"].append(coverage(before, total))
            rep["before issue 10"].append(max_repeats(before))
    for who in cov:
        c, r = np.array(cov[who]), np.array(rep[who])
        print(f"{who}: documents seen after {', '.join(f'{f:.0%}' for f in POINTS)} of an epoch: mean "
              f"{', '.join(f'{x:.3f}' for x in c.mean(0))}, worst seed {', '.join(f'{x:.3f}' for x in c.min(0))}; "
              f"most reads of one document in a 1% window: passes {r[:, 0].max()} (mean over seeds "
              f"{r[:, 0].mean():.2f}), rows {r[:, 1].max()}")
    co, cp = np.array(cov["ours"]), np.array(cov["peer"])
    ro, rp = np.array(rep["ours"]), np.array(rep["peer"])
    for i, f in enumerate(POINTS):
        print(f"RESULT documents_seen_fraction_at_{int(f * 100)}pct_epoch {co[:, i].mean():.3f} "
              f"target >={cp[:, i].mean():.3f} peer {PEER}")
    for i, f in enumerate(POINTS):
        print(f"RESULT documents_seen_fraction_at_{int(f * 100)}pct_epoch_worst_seed {co[:, i].min():.3f} "
              f"target >={cp[:, i].mean():.3f} peer {PEER}")
    print(f"RESULT max_passes_of_one_document_in_1pct_window {ro[:, 0].max()} target <={rp[:, 0].max()} "
          f"peer {PEER}")
    print(f"RESULT max_rows_of_one_document_in_1pct_window {ro[:, 1].max()} target <={rp[:, 1].max()} "
          f"peer {PEER}")


if __name__ == "__main__":
    main()
