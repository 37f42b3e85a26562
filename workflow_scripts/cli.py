"""What the stage scripts' command lines share: JSON arguments and JSON input records, each failing in one line."""
import functools
import json
from pathlib import Path

from workflow_scripts import disk_full
from workflow_scripts.errors import BadInput


def one_line_errors(main):
    """Wrap a script's main(): a BadInput becomes its message alone on stderr and exit status 1
    (SystemExit), never a traceback; so does an error a full disk caused (disk_full: the output,
    the mount point, the space free). Everything else is a bug and keeps its traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except BadInput as e:
            raise SystemExit(str(e)) from None
        except Exception as e:
            if disk_full.caused_by_full_disk(e):
                raise SystemExit(disk_full.line_for(e)) from None
            raise

    return wrapped


def json_object(text: str, flag: str, prog: str = "", required: tuple = ()) -> dict:
    """A JSON-object argument (a rule's config slice, one shell word) -> dict, or one line naming the flag.

    prog: the script's name, to start the message the way its other messages start ("corpus: ...").
    required: keys the object must have ("samples: --spec lacks seed" otherwise).
    """
    where = f"{prog}: {flag}" if prog else flag
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected a JSON object, got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        raise BadInput(f"{where} lacks {', '.join(missing)}")
    return value


def json_lines(lines, where: str, fix: str = "fix or remove that line"):
    """(line number, value) for each non-blank line of a JSON-lines stream; a line that is not JSON
    stops with one line naming `where` (the file), the line number and `fix` (what to do)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(f"{where}, line {number}: not valid JSON ({e}): {fix}") from None
        yield number, value


def read_record(path, required: tuple) -> dict:
    """A JSON file holding one object with the `required` keys (another job's output), or one line
    naming the file and what is wrong with it. A dotted key ("train.samples") is looked up inside
    the object under its first part."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: file not found")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not valid JSON ({e})") from None
    if not isinstance(record, dict):
        raise BadInput(f"{path}: expected a JSON object, got {type(record).__name__}")
    for key in required:
        inner = record
        for part in key.split("."):
            if not isinstance(inner, dict) or part not in inner:
                raise BadInput(f"{path}: missing key {key!r}")
            inner = inner[part]
    return record
