"""A run's resumable state: the TrainState saved whole with each checkpoint, and the folder that holds them.

The state folder (--state-dir, not a workflow output) holds one subfolder per state key: a hash
of everything that changes what is trained (the recipe minus the keys the schema declares
bookkeeping, placement or where-to-stop, the shard and tokenizer files, the world size). A run
whose key has a checkpoint resumes from it; any other key starts fresh. Other keys' folders are
kept (a reverted edit resumes them) and named in the log.

    <state-dir>/<key>/checkpoints/<tag>/  DeepSpeed's model + optimizer files, each rank's RNG states
    <state-dir>/<key>/latest.json         the TrainState and the tag of the checkpoint in charge
    <state-dir>/<key>/log.jsonl           the running log (copied to --log-out at the end)
    <state-dir>/<key>/tensorboard/        with implementation.tensorboard
    <state-dir>/<key>/tracking.json       with config tracking: the MLflow/W&B run a resume continues

latest.json is replaced (atomically) only once a whole checkpoint is on disk, so a kill mid-save
leaves the previous one in charge; then older checkpoints go. Only the newest is kept.
"""
import hashlib
import json
import os
import re
import shutil
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.pretrain import stopping
from workflow_scripts.pretrain.runlog import RunLog

KEY = re.compile(r"[0-9a-f]{16}")
# Periodic checkpoints come at least this many times per time budget: a short run (the demo's
# budget is 0.02 h = 72 s) would otherwise never reach the default 30-minute interval, and a kill
# would restart it from step 0.
CHECKPOINTS_PER_BUDGET = 10


def state_key(recipe: dict, files: list, world: int) -> str:
    """Hash of what determines the training trajectory: the recipe keys the schema declares results
    or state (config_effects.state_view: not bookkeeping, placement or where-to-stop keys, so a later
    early_exit_time_marker continues the same run), the files, the world size."""
    from workflow_scripts import config_effects

    # Files by path, size and modification time: a rebuilt shard (new samples) starts fresh.
    stamps = [(str(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    blob = json.dumps({"recipe": config_effects.state_view(recipe), "files": stamps, "world": world}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def checkpoint_interval_s(recipe: dict) -> float:
    """Seconds of training between periodic checkpoints: checkpoint_interval_minutes, or a tenth of
    total_training_time where that is shorter. A run that max_steps ends keeps the same rule: its
    time is not known beforehand, and the budget still bounds it."""
    return min(recipe["checkpoint_interval_minutes"] * 60.0,
               stopping.budget_seconds(recipe) / CHECKPOINTS_PER_BUDGET)


@dataclass
class TrainState:
    """Where training stands; every rank holds the same values. `reason` is set once the run has
    ended (a rerun then only re-exports, unless its end no longer holds)."""
    step: int = 0                          # optimizer steps applied
    elapsed_s: float = 0.0                 # training time so far (see loop.Clock)
    epoch: int = 0
    epoch_samples: int = 0                 # samples each rank has read of this epoch (independent of micro-batch)
    last_valid_s: float = 0.0              # elapsed_s at the last validation
    last_valid_loss: float | None = None
    next_ckpt_s: float = 0.0               # elapsed_s at which the next periodic checkpoint is due
    stuck: int = 0                         # consecutive steps at the minimum fp16 loss scale
    reason: str | None = None              # the end reason (stopping.py), None while training
    detail: str | None = None
    log_offset: int = 0                    # the log's length at this checkpoint (a resume cuts what came after)

    def end(self, why: tuple | None) -> bool:
        """Record (reason, detail) when the run ends here; True if it did."""
        if why:
            self.reason, self.detail = why
        return bool(why)


class StateFolder:
    """One state key's folder; `log` is the running log in it (rank 0's is the real one)."""

    def __init__(self, root, key: str, rank: int):
        self.root, self.key, self.rank = Path(root), key, rank
        self.dir = self.root / key
        self.checkpoints, self.latest = self.dir / "checkpoints", self.dir / "latest.json"
        self.log = RunLog(self.dir / "log.jsonl", rank == 0)
        self.tag = None                      # the checkpoint latest.json points to

    def create(self) -> None:
        """Rank 0 makes the folder. Other keys' states are kept, not deleted: reverting an edit (or
        restoring shards) then resumes or re-exports instead of spending the GPU-hours again.
        They cost disk only, so they are named with their size. (Barrier after this.)"""
        if self.rank:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in sorted(self.root.iterdir()):
            if old.is_dir() and old.name != self.key and KEY.fullmatch(old.name):
                size = sum(f.stat().st_size for f in old.rglob("*") if f.is_file()) / 2**30
                print(f"keeping the state of another recipe, data or world size: {old} ({size:.2f} GiB); "
                      "delete it to reclaim the space", flush=True)

    def load(self, eng) -> TrainState | None:
        """The state of the checkpoint in charge, with its weights, optimizer and RNG states loaded
        into eng and the log cut back to it; None (and an empty log) where there is none."""
        if not self.latest.exists():
            self.log.start(None)
            return None
        pointer = json.loads(self.latest.read_text())
        self.tag = pointer.pop("tag")
        eng.load(str(self.checkpoints), self.tag)
        state = TrainState(**pointer)
        self.log.start(state.log_offset)
        return state

    def _full_disk_line(self, error: Exception, tag: str) -> None:
        """Where a full disk stopped the checkpoint write (torch says only "unexpected pos"), remove the
        half-written checkpoint (the one in charge stays) and stop with disk_full's line, naming the
        space the last whole checkpoint took. Any other error is left to the caller."""
        from workflow_scripts import disk_full

        target = self.checkpoints / tag
        if not disk_full.caused_by_full_disk(error, self.checkpoints):
            return
        # torch's failed writer holds its file open from the traceback's frames: clear them, so the
        # removal frees the space now (and the line has room in the log).
        for e in disk_full.chain(error):
            traceback.clear_frames(e.__traceback__)
        written = disk_full.folder_bytes(target)
        shutil.rmtree(target, ignore_errors=True)
        needed = disk_full.folder_bytes(self.checkpoints / self.tag) if self.tag else None
        raise disk_full.DiskFull(disk_full.line(target, written, needed)) from None

    def save(self, eng, state: TrainState) -> None:
        """A checkpoint of eng and state (collective: every rank writes its part), then the pointer."""
        # Never overwrite the checkpoint in charge (a kill mid-save would ruin both). Derived from
        # values every rank shares, so all ranks write under the same tag.
        tag = f"step{state.step}"
        tag += "b" if tag == self.tag else ""
        state.log_offset = self.log.offset()
        try:
            eng.save(str(self.checkpoints), tag, asdict(state))    # ends with a barrier
        except Exception as e:
            self._full_disk_line(e, tag)
            raise
        if self.rank == 0:
            atomic.write_json(self.latest, {**asdict(state), "tag": tag})
            for old in self.checkpoints.iterdir():
                if old.is_dir() and old.name != tag:
                    shutil.rmtree(old, ignore_errors=True)
        self.tag = tag
        eng.barrier()
