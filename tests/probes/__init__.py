"""Small programs the tests start in a fresh process (a clean environment, a signal, a launcher),
each one a module read in one sitting instead of a `python -c` string. `command(NAME, *args)` is
the argv that runs tests/probes/NAME.py with the venv's Python (by path: no import path needed)."""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def command(name: str, *args) -> list:
    return [sys.executable, str(HERE / f"{name}.py"), *map(str, args)]
