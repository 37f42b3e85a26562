"""A full disk in one line: the output being written, its mount point, the space free, what the write had reached.

cli.one_line_errors (on every stage script's main) turns an error a full disk or quota caused into
this line instead of a traceback; the pretraining checkpoint write does the same for what torch and
DeepSpeed raise (workflow_scripts.pretrain.state). The writer has already discarded its temporary
file by then (atomic.discard), so nothing half written is left for a rerun to take for whole, the
space it took is free again, and the line itself has room in the job's log.
"""
import errno
import os
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.errors import BadInput

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# How the libraries that report no errno word it: HDF5's message, safetensors' Rust error.
FULL_WORDS = ("No space left on device", "Disk quota exceeded", "errno = 28", "errno = 122", "StorageFull")
# torch.save says only "unexpected pos ..." or "file write failed": right after such a failure, a file
# system with less than this free counts as full.
LOW_WATER_BYTES = 16 << 20


class DiskFull(BadInput):
    """A write that ran out of disk space or quota; the message is the one line to act on."""


def chain(exc):
    """exc and the exceptions it was raised from or during."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def caused_by_full_disk(exc: BaseException, path=None) -> bool:
    """Whether a full disk or quota caused exc: an ENOSPC/EDQUOT errno or message anywhere in its
    chain, or (given the path being written) less than LOW_WATER_BYTES free where it lives."""
    for e in chain(exc):
        if isinstance(e, OSError) and e.errno in FULL_ERRNOS:
            return True
        if any(words in str(e) for words in FULL_WORDS):
            return True
    return path is not None and free_space(path)[1] < LOW_WATER_BYTES


def _existing(path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(path) -> tuple:
    """(mount point, bytes free to this user, bytes in all) of the file system that holds path."""
    where = _existing(path)
    stat = os.statvfs(where)
    mount = where
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    return mount, stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize


def size_text(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def folder_bytes(path) -> int:
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def line(target, written: int | None = None, needed: int | None = None, others: int = 0) -> str:
    """The one line: what was being written (and how many other outputs with it; target None: some
    file under the working folder), where, what is free, and what to do."""
    mount, free, total = free_space(target or os.getcwd())
    more = f" (and {others} more output{'s' if others > 1 else ''})" if others else ""
    target = target or f"a file under {os.getcwd()}"
    reached = f"; the write had reached {size_text(written)} when it failed" if written else ""
    need = f", it needs at least {size_text(needed)}" if needed else ""
    return (f"disk full: writing {target}{more} on {mount} ({size_text(free)} free of {size_text(total)}{reached}{need}): "
            f"free space on {mount} (or run from a folder on a larger disk) and rerun the same command; "
            "nothing half written was kept")


def line_for(exc: BaseException) -> str:
    """The line for an error a full disk caused: its target is the file the error names (a temp is
    named by its target), else the latest write of this process that did not finish."""
    unfinished = atomic.unfinished()
    for e in chain(exc):
        named = getattr(e, "filename", None)
        for tmp, target in atomic.IN_FLIGHT.items():
            if (named and Path(named) == tmp) or str(tmp) in str(e):
                return line(target, atomic.DISCARDED.get(tmp))
        if named:
            return line(named)
    if unfinished:
        target, written = unfinished[-1]
        return line(target, written, others=len(unfinished) - 1)
    return line(None)
