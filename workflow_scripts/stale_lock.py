"""Clear the lock a killed Snakemake left, once its owner is provably gone, so the same command resumes.

Snakemake 9 keeps its lock as files in .snakemake/locks/ that name the locked files but not the
process holding them, so after a kill -9 (or a lost terminal or node) the same command refuses
exactly as if another run were live, until `snakemake --unlock`. The workflow therefore records the
holder once it has the lock (onstart: host, pid and the pid's start time, so a reused pid is not
taken for it) and drops the record when the run ends. At parse time, before Snakemake checks its
lock, a lock whose recorded holder ran on this machine and no longer runs, while no other
Snakemake process works in this folder, is removed with one line saying so. A lock without a record
(one taken by an older version of this workflow, or killed before onstart) or held from another
machine is left to Snakemake's own message and the README's `snakemake --unlock`.
"""
import json
import os
import socket
from pathlib import Path

from workflow_scripts import atomic

RECORD = Path(".snakemake") / "lock_owner.json"
LOCKS = Path(".snakemake") / "locks"


def start_time(pid: int):
    """The pid's start time in clock ticks since boot (Linux /proc), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])     # field 22, counted after the command name


def record_owner(folder=".") -> None:
    """Called once this process holds the lock (onstart): who holds it."""
    pid = os.getpid()
    atomic.write_json(Path(folder) / RECORD, {"host": socket.gethostname(), "pid": pid, "start": start_time(pid)})


def forget_owner(folder=".") -> None:
    """Called when the run ends (onsuccess / onerror): Snakemake releases the lock next."""
    record = read_record(Path(folder))
    if record and record.get("pid") == os.getpid():
        (Path(folder) / RECORD).unlink(missing_ok=True)


def read_record(folder: Path):
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None


def holder_gone(record) -> bool:
    """Whether the recorded holder ran here and is no longer running (its pid is gone or reused)."""
    if not record or record.get("host") != socket.gethostname() or not Path("/proc/self/stat").exists():
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or not atomic.pid_alive(pid):
        return True
    return record.get("start") is not None and start_time(pid) != record["start"]


def ancestors() -> set:
    """This process and its parents (a wrapper shell that runs Snakemake is not another run)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def other_snakemake_in(folder: Path) -> bool:
    """Whether another process on this machine runs Snakemake in this folder (unreadable: assume so)."""
    mine, here = ancestors(), folder.resolve()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        try:
            if b"snakemake" not in (proc / "cmdline").read_bytes():
                continue
            if Path(os.readlink(proc / "cwd")).resolve() == here:
                return True
        except FileNotFoundError:
            continue                          # it ended while we looked
        except OSError:
            return True                       # another user's Snakemake: we cannot tell where it runs
    return False


def check(folder=".") -> str | None:
    """Before Snakemake checks its lock: remove a lock whose holder is gone (see the module docstring),
    or name the live holder (Snakemake's own message then blames a kill and suggests --unlock, which
    would break the live run). Returns the line to print, or None where there is no lock."""
    folder = Path(folder)
    locks = list((folder / LOCKS).glob("*.lock")) if (folder / LOCKS).is_dir() else []
    if not locks:
        return None
    record = read_record(folder)
    if holder_gone(record) and not other_snakemake_in(folder):
        for lock in locks:
            lock.unlink(missing_ok=True)
        (folder / RECORD).unlink(missing_ok=True)
        return (f"Removed the lock of Snakemake pid {record['pid']}, which no longer runs (killed?); "
                "its unfinished jobs run again")
    if record and record.get("host") == socket.gethostname() and not holder_gone(record):
        return (f"Another Snakemake (pid {record['pid']}) is running in this folder and holds its lock: wait "
                "for it to end, or stop it; do not use --unlock while it runs")
    return None
