"""Atomic outputs: a file or folder appears whole or not at all, with the modes the umask gives, never 0600/0700."""
import os
import stat

import pytest

from workflow_scripts import atomic


@pytest.fixture
def umask_027():
    """A shared-cluster umask: group may read, others nothing (restored afterwards)."""
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_get_the_umask_mode_and_leave_no_temp(tmp_path, umask_027):
    atomic.write_text(tmp_path / "a" / "t.txt", "text\n")
    atomic.write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01")
    atomic.write_json(tmp_path / "a" / "j.json", {"k": [1, 2]}, indent=2)
    assert (tmp_path / "a" / "t.txt").read_text() == "text\n"
    assert (tmp_path / "a" / "j.json").read_text() == '{\n  "k": [\n    1,\n    2\n  ]\n}\n'
    assert {p.name for p in (tmp_path / "a").iterdir()} == {"t.txt", "b.bin", "j.json"}
    assert all(mode(p) == 0o640 for p in (tmp_path / "a").iterdir())


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_replacing_dir_replaces_a_folder_with_the_umask_mode(tmp_path, umask_027):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.bin").write_text("from the last run")
    with atomic.replacing_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.tmp-") and not any(tmp.iterdir())
        (tmp / "config.json").write_text("{}")
    assert [p.name for p in out.iterdir()] == ["config.json"]  # the old folder's files are gone
    assert mode(out) == 0o750 and mode(out / "config.json") == 0o640  # not mkdtemp's 0700
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_replacing_dir_on_error_keeps_the_old_folder_and_removes_the_temp(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "weights.bin").write_text("good")
    with pytest.raises(SystemExit), atomic.replacing_dir(out) as tmp:
        (tmp / "weights.bin").write_text("half")
        raise SystemExit("bad input")
    assert (out / "weights.bin").read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_replacing_dir_replaces_a_file_of_the_same_name(tmp_path):
    out = tmp_path / "tokenizer"
    out.write_text("a file where the folder goes")
    with atomic.replacing_dir(out) as tmp:
        (tmp / "vocab.txt").write_text("[PAD]\n")
    assert out.is_dir() and (out / "vocab.txt").read_text() == "[PAD]\n"


def dead_pid() -> int:
    """The id of a process that has ended (its zombie reaped, so nothing runs under it now)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_writer_removes_the_stale_temps_of_its_target_and_keeps_a_live_ones(tmp_path):
    """A killed job leaves `.NAME.tmp-PID` (a file, or a folder from replacing_dir); the next writer of
    NAME removes it. A temp of a process that still runs, and other targets' temps, are kept."""
    target, dead = tmp_path / "part_0.txt", dead_pid()
    stale_file = tmp_path / f".part_0.txt.tmp-{dead}"
    stale_file.write_text("half a corpus")
    stale_dir = tmp_path / f".part_0.txt.tmp-{dead}-k2x9_q1a"
    (stale_dir / "sub").mkdir(parents=True)
    live = tmp_path / f".part_0.txt.tmp-{os.getppid()}"          # pytest's parent runs
    live.write_text("another job's, still writing")
    other = tmp_path / f".part_1.txt.tmp-{dead}"                 # another target's: its own writer's business
    other.write_text("x")
    atomic.write_text(target, "whole\n")
    assert target.read_text() == "whole\n"
    assert {p.name for p in tmp_path.iterdir()} == {"part_0.txt", live.name, other.name}


def test_writers_of_shards_parts_and_folders_clean_up_too(tmp_path):
    """temp_path (what the corpus's PartWriter and the samples' ShardWriter ask for) and replacing_dir
    clean the same way before they write."""
    dead = dead_pid()
    shard = tmp_path / f".shard_3.h5.tmp-{dead}"
    shard.write_bytes(b"\x89HDF half")
    assert atomic.temp_path(tmp_path / "shard_3.h5") == tmp_path / f".shard_3.h5.tmp-{os.getpid()}"
    assert not shard.exists()
    old_dir = tmp_path / f".model.tmp-{dead}-abc123"
    old_dir.mkdir()
    with atomic.replacing_dir(tmp_path / "model") as tmp:
        assert tmp.name.startswith(f".model.tmp-{os.getpid()}-")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_corpus_part_writer_removes_a_killed_runs_part_temps(tmp_path):
    from workflow_scripts.data.corpus import PartWriter

    dead = dead_pid()
    parts = [tmp_path / "text" / f"part_{i}.txt" for i in range(2)]
    parts[0].parent.mkdir()
    stale = [p.with_name(f".{p.name}.tmp-{dead}") for p in parts]
    for s in stale:
        s.write_text("a killed run's half part")
    writer = PartWriter(parts)
    assert not any(s.exists() for s in stale)
    writer.abort()
