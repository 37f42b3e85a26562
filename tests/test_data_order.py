"""Data order (issue 10): each row records its pass and document, the loader reads an epoch pass-major
(any prefix covers the documents as evenly as the passes allow), resumes exactly, and counts the
distinct documents read. Real shards: the Wikipedia excerpt through our corpus and samples code."""
import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from workflow_scripts.data import samples, shard_format
from workflow_scripts.errors import BadInput
from workflow_scripts.pretrain import batches

SPEC = {"max_seq_length": 64, "masked_lm_prob": 0.15, "max_predictions_per_seq": 10, "dup_factor": 4,
        "short_seq_prob": 0.1, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.05, "seed": 42,
        "min_chars_per_token": 0.0}
DUP = SPEC["dup_factor"]


@pytest.fixture(scope="module")
def parts(wiki_dump, tmp_path_factory):
    """The excerpt cleaned by our corpus stage into 6 text parts."""
    from workflow_scripts.data import corpus

    out = tmp_path_factory.mktemp("text")
    paths = [out / f"part_{i}.txt" for i in range(6)]
    corpus.main(["--source", json.dumps({"type": "wikipedia", "path": str(wiki_dump), "parts": 6}),
                 "--out", *map(str, paths)])
    return paths


def build(parts, tokenizer_dir, out, weights=None, **spec):
    """Train shards of the first len(weights) parts (weight 1 each by default)."""
    spec = {**SPEC, **spec}
    paths = []
    for k, weight in enumerate(weights or [1.0] * 3):
        train, valid = out / f"train_{k}.h5", out / f"valid_{k}.h5"
        samples.build_shards(spec, tokenizer_dir, parts[k], samples.Part("wiki", k), train, valid, weight=weight)
        paths.append(str(train))
    return paths


@pytest.fixture(scope="module")
def shards(parts, bert_tokenizer_dir, tmp_path_factory):
    return build(parts, bert_tokenizer_dir, tmp_path_factory.mktemp("shards"))


def row_keys(paths):
    """Row content -> (shard, pass, document) for every train row; contents that occur twice are left out."""
    keys, twice = {}, set()
    for s, path in enumerate(paths):
        rows = shard_format.load_shard(path)
        for ids, pos, p, d in zip(rows["input_ids"], rows["masked_lm_positions"], rows["pass_index"],
                                  rows["document_index"], strict=True):
            key = ids.tobytes() + pos.tobytes()
            if key in keys:
                twice.add(key)
            keys[key] = (s, int(p), int(d))
    return {k: v for k, v in keys.items() if k not in twice}


def read_order(stream, epoch, keys, start=0):
    """(shard, pass, document) of each row the stream yields (None for an ambiguous row)."""
    return [keys.get(ids.tobytes() + pos.tobytes()) for b in stream.epoch(epoch, start)
            for ids, pos in zip(b["input_ids"].numpy(), b["masked_lm_positions"].numpy(), strict=True)]


def test_rows_record_their_pass_and_document(shards):
    for k, path in enumerate(shards):
        with h5py.File(path) as f:
            passes, docs = f["pass_index"][()], f["document_index"][()]
            train_documents = int(f.attrs["num_documents"])
        assert set(np.unique(passes)) == set(range(DUP)), k
        # every train document is in every pass: a document gives at least one row per pass
        per_pass = [set(docs[passes == p]) for p in range(DUP)]
        assert all(s == per_pass[0] for s in per_pass) and len(per_pass[0]) == train_documents
        assert shard_format.shard_summary(path)["row_ids"]


def test_an_epoch_is_read_pass_major_on_every_rank(shards):
    keys = row_keys(shards)
    for world in (1, 2):
        for rank in range(world):
            stream = batches.TrainStream(shards, rank, world, 8, 1, seed=5)
            order = [k for k in read_order(stream, 0, keys) if k is not None]
            assert len(order) > 0.95 * stream.micro_per_epoch * 8
            passes = [p for _, p, _ in order]
            assert passes == sorted(passes)        # no pass p+1 row before every shard's pass p rows
            assert {s for s, _, _ in order} == set(range(rank, len(shards), world))
            # each (shard, pass) unit is read in one stretch; shard order differs between passes
            units = [(s, p) for s, p, _ in order]
            stretches = [u for i, u in enumerate(units) if i == 0 or units[i - 1] != u]
            assert len(stretches) == len(set(stretches))
    one = batches.TrainStream(shards, 0, 1, 8, 1, seed=5)
    orders = {tuple(s for s, p, _ in one.epoch_units(e) if p == q) for e in range(3) for q in range(DUP)}
    assert len(orders) > 1                                             # shard order reshuffled per pass and epoch
    for e in range(20):                                                # no two passes of a shard back to back
        units = one.epoch_units(e)
        assert all(a[0] != b[0] for a, b in zip(units[:-1], units[1:], strict=True))
        for shard in range(len(shards)):                               # a shard keeps its half of each pass
            at = [i for i, u in enumerate(units) if u[0] == shard]
            assert min(np.diff(at)) >= 2
        assert [p for _, p, _ in units] == sorted(p for _, p, _ in units)


def test_one_pass_worth_of_an_epoch_reads_every_document_once(shards):
    stream = batches.TrainStream(shards, 0, 1, 1, 1, seed=0)          # micro-batches of one row
    first_pass = sum(int(stream.pass_rows[s][0]) for s in range(len(shards)))
    # Passes pack alike up to short_seq_prob's draws, so a pass holds about 1/DUP of the epoch's rows.
    assert first_pass < stream.micro_per_epoch < first_pass * DUP * 1.05
    it = stream.epoch(0)
    for _ in range(first_pass):
        next(it)
    assert stream.documents_seen == stream.documents > 30             # 1/dup_factor of the epoch: each once
    next(it)
    assert stream.documents_seen == stream.documents
    it.close()


def test_resume_mid_epoch_gives_the_same_remaining_order_and_count(shards):
    stream = batches.TrainStream(shards, 0, 1, 24, 1, seed=2)
    full = [b["input_ids"].numpy().tobytes() for b in stream.epoch(1)]
    seen_after = []
    for _ in stream.epoch(1):
        seen_after.append(stream.documents_seen)
    for start in (1, 7, len(full) // 2, len(full) - 1):
        again = batches.TrainStream(shards, 0, 1, 24, 1, seed=2)    # a fresh process, as after a restart
        it = again.epoch(1, start)
        rest = []
        for i, b in enumerate(it):
            rest.append(b["input_ids"].numpy().tobytes())
            assert again.documents_seen == seen_after[start + i]     # documents read before the resume count
        assert rest == full[start:]


def test_weighted_fractional_passes_spread_over_the_epoch(parts, bert_tokenizer_dir, tmp_path):
    # weights 0.4, 1 and 1.5 at dup_factor 4: 1.6, 4 and 6 passes per document
    paths = build(parts, bert_tokenizer_dir, tmp_path, weights=[0.4, 1.0, 1.5])
    with h5py.File(paths[0]) as f:
        passes, docs = f["pass_index"][()], f["document_index"][()]
        assert set(np.unique(passes)) == {0, 1}
        assert set(docs[passes == 1]) < set(docs[passes == 0])        # the fraction: some documents only
    assert h5py.File(paths[2])["pass_index"][()].max() == 5
    stream = batches.TrainStream(paths, 0, 1, 8, 1, seed=1)
    units = stream.epoch_units(0)
    total = sum(n for _, _, n in units)
    for shard in range(3):
        mine = [p for s, p, _ in units if s == shard]
        assert mine == sorted(mine)                                   # each shard's passes in order
    # a shard's pass p starts in the p-th of its passes' equal stretches of the epoch (give or take a unit)
    pos, slack = 0, max(n for _, _, n in units)
    for s, p, n in units:
        count = len(stream.pass_rows[s])
        assert p / count * total - slack <= pos <= (p + 1) / count * total + slack, (s, p)
        pos += n
    for _ in stream.epoch(0):
        pass
    assert stream.documents_seen == stream.documents


def test_shards_without_row_ids_load_as_one_pass(pretrain_shards, capsys):
    paths = [str(p) for p in pretrain_shards["train"]]             # tests/helpers' shards: the old layout
    stream = batches.TrainStream(paths, 0, 1, 16, 1, seed=3)
    out = capsys.readouterr().out
    assert f"train shard {paths[0]} and 1 more: no pass_index/document_index" in out and "rebuild" in out
    rows = [r.tobytes() for b in stream.epoch(0) for r in b["input_ids"].numpy()]
    assert len(rows) == len(set(rows)) == 512 and stream.documents_seen is None


def test_a_shard_with_half_the_row_ids_fails_in_one_line(shards, tmp_path):
    bad = tmp_path / "half.h5"
    with h5py.File(shards[0]) as f, h5py.File(bad, "w") as g:
        for name in f:
            if name != "document_index":
                g.create_dataset(name, data=f[name][()])
    with pytest.raises(BadInput, match=r"half\.h5: has pass_index but not document_index: rebuild its samples"):
        batches.TrainStream([str(bad)], 0, 1, 8, 1, seed=0)


def test_train_lines_record_documents_seen_and_epoch_fraction():
    from workflow_scripts.pretrain import loop

    events = []
    run = SimpleNamespace(
        eng=SimpleNamespace(all_reduce=lambda values: [2 * v for v in values]),   # two ranks alike
        stream=SimpleNamespace(counted=True, documents=40, micro_per_epoch=10), cost=None, peak_tflops=None,
        folder=SimpleNamespace(log=SimpleNamespace(event=lambda kind, **kw: events.append((kind, kw)),
                                                   say=lambda line: None)),
        tb=SimpleNamespace(scalars=lambda *a, **k: None), plan=SimpleNamespace(budget_s=100.0), micro=4)
    state = SimpleNamespace(step=5, elapsed_s=10.0, epoch=0, epoch_samples=20)
    loop.log_train(run, state, loop.Window(since=0.0, loss=1.0, micro=1, tokens=10, samples=4, documents_seen=30), 1e-3)
    kind, line = events[0]
    assert kind == "train" and (line["documents_seen"], line["documents"], line["epoch_fraction"]) == (60, 80, 0.5)
    run.stream.counted = False                                       # shards without document ids
    loop.log_train(run, state, loop.Window(since=0.0, loss=1.0, micro=1, tokens=10, samples=4), 1e-3)
    assert "documents_seen" not in events[1][1] and events[1][1]["epoch_fraction"] == 0.5
