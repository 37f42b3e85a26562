"""Shard loading: each rank its own rows, equal step counts, seeded reshuffles, exact resume, clear errors."""
import h5py
import numpy as np
import pytest

from workflow_scripts.pretrain import batches
from workflow_scripts.errors import BadInput


def rows_of(batches):
    return [tuple(r) for b in batches for r in b["input_ids"].numpy()]


def subset(src, dst, n, drop=None):
    """A real shard cut to its first n rows (optionally without one dataset)."""
    with h5py.File(src) as f, h5py.File(dst, "w") as g:
        for name in f:
            if name != drop:
                g.create_dataset(name, data=f[name][:n])
    return str(dst)


def test_batches_carry_the_model_arguments(pretrain_shards):
    stream = batches.TrainStream([str(p) for p in pretrain_shards["train"]], 0, 1, 8, 2, seed=1)
    b = next(stream.epoch(0))
    assert set(b) == {"input_ids", "attention_mask", "token_type_ids", "masked_lm_positions", "masked_lm_ids"}
    assert b["input_ids"].shape == (8, 64) and b["masked_lm_positions"].shape == (8, 10)
    assert stream.steps_per_epoch == 512 // 16 and stream.micro_per_epoch == 64


def test_one_epoch_reads_each_row_once_and_epochs_reshuffle(pretrain_shards):
    paths = [str(p) for p in pretrain_shards["train"]]
    stream = batches.TrainStream(paths, 0, 1, 16, 1, seed=3)
    e0, e1 = rows_of(stream.epoch(0)), rows_of(stream.epoch(1))
    assert len(e0) == len(set(e0)) == 512
    assert set(e0) == set(e1) and e0 != e1
    again = batches.TrainStream(paths, 0, 1, 16, 1, seed=3)
    assert rows_of(again.epoch(1)) == e1                     # seeded: the same order on a rerun
    assert rows_of(batches.TrainStream(paths, 0, 1, 16, 1, seed=4).epoch(1)) != e1


def test_resuming_mid_epoch_continues_with_the_same_batches(pretrain_shards):
    paths = [str(p) for p in pretrain_shards["train"]]
    stream = batches.TrainStream(paths, 0, 1, 24, 1, seed=0)   # 24 does not divide 256: batches span shards
    full = rows_of(stream.epoch(2))
    for start in (1, 10, 15):
        assert rows_of(stream.epoch(2, start)) == full[start * 24:]


def test_shards_split_across_ranks_with_equal_step_counts(pretrain_shards, tmp_path):
    train = [str(p) for p in pretrain_shards["train"]]
    small = subset(train[1], tmp_path / "small.h5", 100)
    paths = [train[0], small, subset(train[0], tmp_path / "third.h5", 200)]
    # shard i -> rank i % 2: rank 0 holds 256 + 200 rows, rank 1 only 100.
    ranks = [batches.TrainStream(paths, r, 2, 8, 2, seed=0) for r in range(2)]
    assert [s.share for s in ranks] == [456, 100]
    assert ranks[0].micro_per_epoch == ranks[1].micro_per_epoch == 100 // 16 * 2
    seen = [set(rows_of(s.epoch(0))) for s in ranks]
    assert not seen[0] & seen[1]


def test_fewer_shards_than_ranks_split_rows(pretrain_shards):
    one = [str(pretrain_shards["train"][0])]
    ranks = [batches.TrainStream(one, r, 3, 4, 1, seed=0) for r in range(3)]
    parts = [set(rows_of(s.epoch(0))) for s in ranks]
    assert all(len(p) == 85 // 4 * 4 for p in parts)         # 256 rows -> 86, 85, 85 per rank
    assert not (parts[0] & parts[1]) and not (parts[1] & parts[2])


def test_validation_set_is_capped_fixed_and_split(pretrain_shards):
    paths = [str(p) for p in pretrain_shards["valid"]]
    v = batches.ValidSet(paths, 0, 1, 16, max_samples=40, seq_len=64)
    assert v.samples == 40 and [len(b["input_ids"]) for b in v.batches] == [16, 16, 8]
    halves = [batches.ValidSet(paths, r, 2, 16, max_samples=1000, seq_len=64) for r in range(2)]
    assert [h.samples for h in halves] == [32, 32]
    with pytest.raises(BadInput, match="sequence length 64 differs from the train shards' 128"):
        batches.ValidSet(paths, 0, 1, 16, max_samples=10, seq_len=128)


def test_bad_shards_stop_with_one_line_naming_file_and_dataset(pretrain_shards, tmp_path):
    good = str(pretrain_shards["train"][0])
    missing = subset(good, tmp_path / "nomask.h5", 50, drop="masked_lm_ids")
    with pytest.raises(BadInput, match=r"nomask.h5: missing dataset\(s\) masked_lm_ids"):
        batches.TrainStream([missing], 0, 1, 8, 1, seed=0)
    truncated = tmp_path / "trunc.h5"
    subset(good, truncated, 50)
    with h5py.File(truncated, "a") as f:
        data = f["segment_ids"][:40]
        del f["segment_ids"]
        f.create_dataset("segment_ids", data=data)
    with pytest.raises(BadInput, match=r"trunc.h5: dataset segment_ids has 40 rows, input_ids has 50"):
        batches.TrainStream([str(truncated)], 0, 1, 8, 1, seed=0)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(BadInput, match=r"junk\.h5: not a readable HDF5 file"):
        batches.TrainStream([str(junk)], 0, 1, 8, 1, seed=0)
    with pytest.raises(BadInput, match="fewer than one optimizer step"):
        batches.TrainStream([subset(good, tmp_path / "tiny.h5", 10)], 0, 1, 8, 2, seed=0)
    # Each damaged one was set aside as NAME.corrupt, so its samples job reruns; the usable one stays.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.h5.corrupt", "nomask.h5.corrupt",
                                                         "tiny.h5", "trunc.h5.corrupt"]


def test_a_damaged_shard_is_set_aside_and_the_line_says_so(pretrain_shards, tmp_path):
    from workflow_scripts.data import shard_format

    cut = tmp_path / "cut.h5"
    cut.write_bytes(pretrain_shards["train"][0].read_bytes()[:5000])  # a copy cut short
    with pytest.raises(BadInput) as err:
        batches.TrainStream([str(cut)], 0, 1, 8, 1, seed=0)
    line = str(err.value)
    assert line.startswith(f"shard {cut}: not a readable HDF5 file, truncated or corrupt (") and "\n" not in line
    assert line.endswith(f"; moved aside to {cut}.corrupt so that the next run rebuilds it")
    assert not cut.exists() and (tmp_path / "cut.h5.corrupt").read_bytes() == \
        pretrain_shards["train"][0].read_bytes()[:5000]
    # Neither a missing shard nor one that only disagrees with what was asked of it is damaged.
    with pytest.raises(shard_format.ShardError, match="no such file") as err:
        batches.TrainStream([str(cut)], 0, 1, 8, 1, seed=0)
    assert not err.value.damaged
    with pytest.raises(shard_format.ShardError, match="expected max_seq_length 512") as err:
        shard_format.open_shard(pretrain_shards["train"][0], max_seq_length=512)
    assert not err.value.damaged and pretrain_shards["train"][0].exists()


def test_nsp_labels_are_passed_when_present(wiki_dump, bert_tokenizer_dir, tmp_path):
    from tests.helpers.pretrain_data import build_shards

    shards = build_shards(wiki_dump, bert_tokenizer_dir, tmp_path, train_shards=1, rows_per_shard=32,
                          valid_rows=8, nsp=True)
    stream = batches.TrainStream([str(shards["train"][0])], 0, 1, 8, 1, seed=0)
    assert stream.layout["nsp"]
    b = next(stream.epoch(0))
    assert b["next_sentence_labels"].shape == (8,)
    assert set(np.unique(b["next_sentence_labels"].numpy())) <= {0, 1}


def test_empty_valid_shard_and_missing_file(pretrain_shards, tmp_path):
    # samples.py writes a 0-row valid shard for a one-document text part.
    empty = subset(str(pretrain_shards["valid"][0]), tmp_path / "empty.h5", 0)
    v = batches.ValidSet([empty, str(pretrain_shards["valid"][0])], 0, 1, 16, max_samples=20, seq_len=64)
    assert v.samples == 20 and [len(b["input_ids"]) for b in v.batches] == [16, 4]
    assert batches.ValidSet([empty], 0, 1, 16, max_samples=20, seq_len=64).batches == []
    with pytest.raises(BadInput, match=r"shard .*nowhere\.h5: no such file"):
        batches.TrainStream([str(tmp_path / "nowhere.h5")], 0, 1, 8, 1, seed=0)


def test_empty_train_shards_are_skipped_and_all_empty_is_one_clear_error(pretrain_shards, tmp_path, capsys):
    """samples.py writes 0-row shards for a text part left without samples: they take no rank's share."""
    paths = [str(p) for p in pretrain_shards["train"]]
    empty = subset(paths[0], tmp_path / "empty.h5", 0)
    ranks = [batches.TrainStream([empty, paths[0], empty, paths[1]], r, 2, 8, 1, seed=0) for r in range(2)]
    assert "train shard " + empty + " and 1 more: no samples" in capsys.readouterr().out
    # Each rank reads one whole real shard (the empty ones are not dealt out), as without them.
    assert [s.share for s in ranks] == [256, 256] and ranks[0].steps_per_epoch == 32
    plain = [batches.TrainStream(paths, r, 2, 8, 1, seed=0) for r in range(2)]
    assert all(rows_of(a.epoch(0)) == rows_of(b.epoch(0)) for a, b in zip(ranks, plain, strict=True))
    with pytest.raises(BadInput, match=r"every train shard is empty \(2 shards, \S+empty\.h5 first\): no text part "
                                         r"gave a sample; the WARNING lines of logs/samples/\*/part_\*\.log"):
        batches.TrainStream([empty, empty], 0, 1, 8, 1, seed=0)
