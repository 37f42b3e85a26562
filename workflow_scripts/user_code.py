"""Resolve a config value like "my_pkg.module:Thing" to the object it names, with one-line errors.

Users plug in their own optimizer (optimizer.name) and LR schedule (schedule.name) this way.
The module is imported the normal way, so it must be importable by the job: a package
installed in the environment, or a module under the folder Snakemake runs in (the workflow
folder; `python -m` puts the working directory on sys.path), or a folder on PYTHONPATH.
"""
import importlib
import re
from workflow_scripts.errors import BadInput

# "package.module:attribute" (dotted module path, one attribute name).
PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")


def is_import_path(name: str) -> bool:
    return bool(PATTERN.match(name))


def load(name: str, key: str):
    """The object `name` points to; `key` is the config key, for the error message."""
    if not is_import_path(name):
        raise BadInput(f"{key}={name!r} is not of the form 'package.module:name'")
    module, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        raise BadInput(f"{key}={name!r}: cannot import module {module} ({e}); is it on the job's "
                         "PYTHONPATH or in the workflow folder?") from None
    except AttributeError:
        raise BadInput(f"{key}={name!r}: module {module} has no attribute {attr}") from None
    return obj
