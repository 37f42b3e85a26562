"""Write files and folders atomically: built under a temporary name beside the target, renamed over it when complete.

Same folder, so os.replace is a rename on one file system: a reader sees the old target or the
whole new one, and a killed job leaves only a dot-name no rule declares; the next writer of the same
target removes such leftovers (remove_stale_temps), so a full disk is not kept full by them. Outputs get the modes
a plain open() or mkdir() would give them (0666 / 0777 less the umask), never the private
0600 / 0700 of mkstemp / mkdtemp: on a shared cluster the group reads what a job wrote.
"""
import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def remove_stale_temps(path) -> list[Path]:
    """Remove the temporaries of `path` that a killed or failed writer left: `.NAME.tmp-PID` files
    and `.NAME.tmp-PID-XXXX` folders whose PID no longer runs (nor this process's own, which only an
    earlier writer of this process can have left). A live writer's temp is not touched. Snakemake runs
    one job per output, so a temp whose PID is gone here is garbage (on a cluster a live job on another
    node may share the PID of none here: that job is a stale one, which the rerun replaces anyway)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    ours = re.compile(rf"\.{re.escape(path.name)}\.tmp-(\d+)(?:-[A-Za-z0-9_]+)?")
    removed = []
    for old in path.parent.iterdir():
        m = ours.fullmatch(old.name)
        if m and (int(m[1]) == os.getpid() or not pid_alive(int(m[1]))):
            with contextlib.suppress(OSError):
                _remove(old)
                removed.append(old)
    return removed


# This process's writes (temp -> target) and the bytes of each temp it discarded: when the disk fills,
# the error names the output being written and what it had reached (workflow_scripts.disk_full).
# A temp that no longer exists and was not discarded was renamed over its target: that write finished.
IN_FLIGHT: dict = {}
DISCARDED: dict = {}


def temp_path(path) -> Path:
    """The temporary name a file is written under before it becomes `path`: a dot-file beside it.
    The pid keeps two jobs writing the same target (a rerun racing a stale one) apart. Asking for it
    removes the stale temps of `path` first (remove_stale_temps): every writer asks before writing."""
    path = Path(path)
    remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    IN_FLIGHT[tmp] = path
    DISCARDED.pop(tmp, None)   # a new write under the name of one that failed
    return tmp


def discard(tmp) -> None:
    """Remove a temp a failed write leaves (file or folder), noting its size first (see IN_FLIGHT)."""
    tmp = Path(tmp)
    with contextlib.suppress(OSError):
        files = [tmp] if tmp.is_file() else [f for f in tmp.rglob("*") if f.is_file()] if tmp.is_dir() else []
        DISCARDED[tmp] = sum(f.stat().st_size for f in files)
    with contextlib.suppress(OSError):
        _remove(tmp)


def unfinished() -> list:
    """(target, bytes written or None) of this process's writes that did not finish, latest last."""
    return [(target, DISCARDED.get(tmp)) for tmp, target in IN_FLIGHT.items() if tmp in DISCARDED or tmp.exists()]


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path beside `path`; on success it becomes `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            discard(tmp)


def write_bytes(path, data: bytes) -> None:
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path, text: str) -> None:
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, data, indent: int = 1) -> None:
    write_text(path, json.dumps(data, indent=indent) + "\n")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def replacing_dir(path):
    """Yields an empty temporary folder beside `path` to fill; on success it replaces `path` (an old
    one is removed first), on error it is removed.

    The folder gets mkdir's usual mode (0777 less the umask), not mkdtemp's 0700. Between the
    removal and the rename `path` is briefly absent, never half written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-{os.getpid()}-"))
    IN_FLIGHT[tmp] = path
    try:
        tmp.chmod(0o777 & ~current_umask())
        yield tmp
        _remove(path)
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
