"""Write a file atomically: to a temporary name beside the target, renamed over it only when complete."""
import contextlib
import json
import os
from pathlib import Path


@contextlib.contextmanager
def replacing(path):
    """Yields a temporary path in the target's folder; on success it becomes `path`, on error it is removed.

    Same folder, so os.replace is a rename on one file system: a reader sees the old file or the
    whole new one, and a killed job leaves only a dot-file no rule declares.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, data) -> None:
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
