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


def temp_path(path) -> Path:
    """The temporary name a file is written under before it becomes `path`: a dot-file beside it.
    The pid keeps two jobs writing the same target (a rerun racing a stale one) apart. Asking for it
    removes the stale temps of `path` first (remove_stale_temps): every writer asks before writing."""
    path = Path(path)
    remove_stale_temps(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


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
        tmp.unlink(missing_ok=True)


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
    try:
        tmp.chmod(0o777 & ~current_umask())
        yield tmp
        _remove(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
