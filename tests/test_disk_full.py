"""A full disk (issue 14): one line naming the output, its mount point and the space free, from every
kind of writer (Python files, HDF5, a torch checkpoint), and nothing half written left behind.
The disk is a small tmpfs (mounting needs root: skipped otherwise)."""
import contextlib
import errno
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers.workflow import copy_repo, snakemake
from workflow_scripts import atomic, disk_full
from workflow_scripts.cli import one_line_errors
from workflow_scripts.data import shard_format

DISK_BYTES = 256 << 10


@pytest.fixture(autouse=True)
def own_writes(monkeypatch):
    """This test's writes only: the registry of writes in flight is per process, and other tests leave
    temps on purpose."""
    monkeypatch.setattr(atomic, "IN_FLIGHT", {})
    monkeypatch.setattr(atomic, "DISCARDED", {})


@contextlib.contextmanager
def tmpfs(disk: Path, size: int):
    """A tmpfs of `size` bytes mounted at disk (skips the test where mounting is refused)."""
    disk.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {proc.stderr.strip()}")
    try:
        yield disk
    finally:
        busy = subprocess.run(["umount", str(disk)]).returncode
        if busy:
            subprocess.run(["umount", "-l", str(disk)])
    if busy:
        pytest.fail("the tmpfs was still busy: a failed write left a file open (its space not freed)")


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs at tmp_path/disk."""
    with tmpfs(tmp_path / "disk", DISK_BYTES) as disk:
        yield disk


def failing_line(main) -> str:
    with pytest.raises(SystemExit) as stop:
        one_line_errors(main)()
    line = str(stop.value.code)
    assert "\n" not in line and "Traceback" not in line
    return line


def test_a_python_write_names_the_output_the_mount_and_the_space(small_disk):
    target = small_disk / "results" / "part_0.txt"
    line = failing_line(lambda: atomic.write_bytes(target, b"x" * (2 * DISK_BYTES)))
    assert line.startswith(f"disk full: writing {target} on {small_disk} (")
    assert "free of 256.0 KiB; the write had reached " in line
    assert line.endswith(f"free space on {small_disk} (or run from a folder on a larger disk) and rerun the same "
                         "command; nothing half written was kept")
    assert list(target.parent.iterdir()) == []  # neither the output nor its temp


def test_an_hdf5_write_is_named_by_its_target(small_disk):
    import h5py

    target = small_disk / "part_0.h5"
    other = small_disk / "valid.h5"

    def write():
        tmp, _ = atomic.temp_path(target), atomic.temp_path(other)   # two outputs in flight, as samples has
        try:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("input_ids", data=np.arange(DISK_BYTES, dtype=np.int32))
        except OSError:
            atomic.discard(tmp)
            raise

    line = failing_line(write)
    assert line.startswith(f"disk full: writing {target} on {small_disk} (")
    assert list(small_disk.iterdir()) == []


def test_a_torch_checkpoint_without_errno_is_recognised_and_removed(small_disk):
    import torch

    from workflow_scripts.pretrain import state

    def save(folder, tag, client_state):   # what DeepSpeed does: torch.save under checkpoints/<tag>/
        (small_disk / "run/key/checkpoints" / tag).mkdir(parents=True, exist_ok=True)
        torch.save({"w": torch.zeros(DISK_BYTES)}, f"{folder}/{tag}/model.pt")

    folder = state.StateFolder(small_disk / "run", "key", 0)
    folder.create()
    folder.log.start(None)
    with pytest.raises(disk_full.DiskFull) as err:
        folder.save(SimpleNamespace(save=save, barrier=lambda: None), state.TrainState())
    target = small_disk / "run/key/checkpoints/step0"
    assert str(err.value).startswith(f"disk full: writing {target} on {small_disk} (")
    assert not target.exists() and not folder.latest.exists()   # no half checkpoint, no pointer to one


def test_other_errors_are_no_full_disk(tmp_path):
    assert not disk_full.caused_by_full_disk(ValueError("bad value"))
    assert not disk_full.caused_by_full_disk(FileNotFoundError(errno.ENOENT, "No such file", "x"))
    assert disk_full.caused_by_full_disk(OSError(errno.EDQUOT, "Disk quota exceeded"))
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert disk_full.caused_by_full_disk(wrapped)
    assert not disk_full.caused_by_full_disk(RuntimeError("unexpected pos 576 vs 534"), tmp_path)  # room here
    with pytest.raises(ValueError):   # a bug keeps its traceback
        one_line_errors(lambda: int("x"))()
    assert disk_full.size_text(512) == "512 B" and disk_full.size_text(3 << 20) == "3.0 MiB"


@pytest.mark.workflow
def test_a_workflow_on_a_full_disk_stops_in_one_line_and_finishes_once_space_is_freed(tmp_path, repo_root,
                                                                                      resources):
    """The demo's text and tokenizer made on a 32 MiB tmpfs, then the disk filled but for 400 KiB, less
    than a train shard (~1 MiB): the samples job stops with the line, leaves no shard or temp, and the
    same command finishes once the filler is gone."""
    with tmpfs(tmp_path / "disk", 32 << 20) as disk:
        work = copy_repo(repo_root, disk / "work", resources)
        snakemake(work, "--cores", "1", "results/tokenizer", "results/text/wiki/duplicates.json")
        filler = disk / "filler"
        with open(filler, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, disk_full.free_space(disk)[1] - (400 << 10))
        proc = snakemake(work, "--cores", "1", "samples", check=False)
        assert proc.returncode != 0
        logs = [p for p in (work / "logs/samples").rglob("*.log") if "disk full" in p.read_text()]
        assert len(logs) == 1, proc.stderr[-3000:]
        lines = logs[0].read_text().splitlines()
        shard = f"results/samples/train/wiki/{logs[0].stem}.h5"
        assert lines[-1].startswith(f"disk full: writing {shard} on {disk} ("), lines[-1]
        assert not any("Traceback" in line for line in lines)
        samples = work / "results/samples"
        left = [p for p in samples.rglob("*") if p.is_file()] if samples.exists() else []
        assert not [p for p in left if p.name.startswith(".")]            # no temp kept
        for path in left:                                                 # what is there is whole
            if path.suffix == ".h5":
                shard_format.load_shard(path)
        assert not (work / shard).exists()
        filler.unlink()
        snakemake(work, "--cores", "1", "samples")
        for path in sorted(samples.rglob("*.h5")):
            shard_format.load_shard(path)
        assert len(list(samples.rglob("*.h5"))) == 4


def test_samples_stop_mid_shard_in_one_line_without_a_crash(tmp_path, monkeypatch, wiki_dump, bert_tokenizer_dir):
    """Small blocks and little room kept, so the first blocks fit and a later one does not: HDF5 never
    meets the full disk (it would crash), the temps go, and the line names the train shard."""
    from workflow_scripts.data import corpus, samples

    part = tmp_path / "part_0.txt"   # the excerpt's ~2.7 MB of text: a ~2 MB shard
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump)}, [part])

    monkeypatch.setattr(samples, "POOL_TOKENS", 1 << 13)
    monkeypatch.setattr(samples, "HDF5_ROOM_BYTES", 32 << 10)
    spec = {"max_seq_length": 128, "masked_lm_prob": 0.15, "max_predictions_per_seq": 20, "dup_factor": 2,
            "short_seq_prob": 0.1, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.05, "seed": 1,
            "min_chars_per_token": 0.0}
    with tmpfs(tmp_path / "disk", 512 << 10) as disk:
        train, valid = disk / "train/wiki/part_0.h5", disk / "valid/wiki/part_0.h5"
        with pytest.raises(disk_full.DiskFull) as err:
            samples.build_shards(spec, bert_tokenizer_dir, part, samples.Part("wiki", 0), train, valid)
        assert str(err.value).startswith(f"disk full: writing {train} on {disk} (")
        assert "; the write had reached " in str(err.value)   # some blocks were written first
        assert [p for p in disk.rglob("*") if p.is_file()] == []
