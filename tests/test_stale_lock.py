"""The lock a killed Snakemake left: removed when its recorded holder is gone, kept (and named) while it runs."""
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from workflow_scripts import stale_lock


def locked(folder, record):
    (folder / ".snakemake" / "locks").mkdir(parents=True)
    (folder / ".snakemake" / "locks" / "0.output.lock").write_text("results/text/wiki/part_0.txt\n")
    if record is not None:
        (folder / stale_lock.RECORD).write_text(json.dumps(record))
    return folder


def gone_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_lock_whose_holder_is_gone_is_removed(tmp_path):
    folder = locked(tmp_path, {"host": socket.gethostname(), "pid": gone_pid(), "start": 1})
    line = stale_lock.check(folder)
    assert line.startswith("Removed the lock of Snakemake pid") and "no longer runs" in line
    assert not list((folder / ".snakemake" / "locks").iterdir()) and not (folder / stale_lock.RECORD).exists()
    assert stale_lock.check(folder) is None                  # nothing left to say


def test_a_reused_pid_is_not_the_holder(tmp_path):
    """The pid runs, but it started at another time than the holder did: another process has it now."""
    me = stale_lock.start_time(stale_lock.os.getpid())
    folder = locked(tmp_path, {"host": socket.gethostname(), "pid": stale_lock.os.getpid(), "start": me + 1})
    assert stale_lock.check(folder).startswith("Removed the lock")


def test_a_live_holder_keeps_its_lock_and_is_named(tmp_path):
    folder = locked(tmp_path, None)
    stale_lock.record_owner(folder)
    line = stale_lock.check(folder)
    assert f"pid {stale_lock.os.getpid()}" in line and "do not use --unlock" in line
    assert list((folder / ".snakemake" / "locks").iterdir())
    stale_lock.forget_owner(folder)
    assert not (folder / stale_lock.RECORD).exists()


def test_a_lock_it_cannot_vouch_for_is_left_to_snakemake(tmp_path):
    """No record (an older version's lock, a run killed before onstart) or another machine's holder."""
    for record in (None, {"host": "another-login-node", "pid": gone_pid(), "start": 1}):
        folder = locked(tmp_path / str(bool(record)), record)
        assert stale_lock.check(folder) is None
        assert list((folder / ".snakemake" / "locks").iterdir())


def test_another_snakemake_in_the_folder_keeps_the_lock(tmp_path):
    """The recorded holder is gone, but a Snakemake process still works in this folder."""
    folder = locked(tmp_path, {"host": socket.gethostname(), "pid": gone_pid(), "start": 1})
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "snakemake"], cwd=folder)
    try:
        deadline = time.time() + 30          # until it has exec'd (a loaded machine starts it late)
        while "snakemake" not in Path(f"/proc/{other.pid}/cmdline").read_text() and time.time() < deadline:
            time.sleep(0.05)
        assert stale_lock.check(folder) is None
        assert list((folder / ".snakemake" / "locks").iterdir())
    finally:
        other.kill()
        other.wait()
