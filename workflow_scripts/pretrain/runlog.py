"""The run's JSON-lines log (rank 0 writes it; the other ranks' calls do nothing) and its human lines on stdout.

Events, in order: config (the resolved recipe + world size + derived values), train every
log_interval_steps steps, valid, resume (where a run picked up a checkpoint), end (last).
The fields of each are described in train.py; the report stage reads them.
"""
import json
from pathlib import Path


class RunLog:
    def __init__(self, path: Path, active: bool):
        self.path, self.active = path, active

    def start(self, offset: int | None) -> None:
        """Fresh (offset None): empty the file. Resume: cut what a killed attempt wrote after its checkpoint."""
        if not self.active:
            return
        if offset is None or not self.path.exists():
            self.path.write_text("")
        else:
            with open(self.path, "r+b") as f:
                f.truncate(offset)

    def offset(self) -> int:
        return self.path.stat().st_size if self.active else 0

    def event(self, event: str, **fields) -> None:
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps({"event": event, **fields}) + "\n")

    def say(self, line: str) -> None:
        if self.active:
            print(line, flush=True)
