"""What the stage scripts' command lines share: JSON arguments and JSON input records, each failing in one line."""
import json
from pathlib import Path


def json_object(text: str, flag: str, prog: str = "") -> dict:
    """A JSON-object argument (a rule's config slice, one shell word) -> dict, or one line naming the flag.

    prog: the script's name, to start the message the way its other messages start ("corpus: ...").
    """
    where = f"{prog}: {flag}" if prog else flag
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise SystemExit(f"{where}: not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise SystemExit(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def read_record(path, required: tuple) -> dict:
    """A JSON file holding one object with the `required` keys (another job's output), or one line
    naming the file and what is wrong with it. A dotted key ("train.samples") is looked up inside
    the object under its first part."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path}: file not found")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SystemExit(f"{path}: not valid JSON ({e})") from None
    if not isinstance(record, dict):
        raise SystemExit(f"{path}: expected a JSON object, got {type(record).__name__}")
    for key in required:
        inner = record
        for part in key.split("."):
            if not isinstance(inner, dict) or part not in inner:
                raise SystemExit(f"{path}: missing key {key!r}")
            inner = inner[part]
    return record
