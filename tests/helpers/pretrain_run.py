"""Real pretraining runs as the pretrain rule starts them (`python -m workflow_scripts.pretrain.train`),
for the tests of the loop, the optimizers, the stops and the model families."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A user's module, written to a temp folder and found through PYTHONPATH / sys.path only.
USER_MODULE = '''
import os
import signal

import torch


class TracedSGD(torch.optim.SGD):
    """SGD that appends (step, lr, momentum) to `trace` after each step; at step `poison_at` it
    writes NaN into the weights (so the next forward's loss is NaN); at step `signal_at` it sends its
    own process SIGTERM (as SLURM does before a time limit)."""

    def __init__(self, params, lr, trace, poison_at=None, signal_at=None, momentum=0.0):
        super().__init__(params, lr=lr, momentum=momentum)
        self.trace, self.poison_at, self.signal_at, self.steps = trace, poison_at, signal_at, 0

    @torch.no_grad()
    def step(self, closure=None):
        super().step(closure)
        self.steps += 1
        group = self.param_groups[0]
        with open(self.trace, "a") as f:
            f.write(f"{self.steps} {group['lr']!r} {group['momentum']}\\n")
        if self.steps == self.poison_at:
            for g in self.param_groups:
                for p in g["params"]:
                    p.fill_(float("nan"))
        if self.steps == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)


NOT_AN_OPTIMIZER = 42
'''


def recipe(seconds, **over):
    r = {"model": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128},
         "optimizer": {"lr": 3e-3}, "schedule": {"name": "linear", "warmup_proportion": 0.1},
         "total_training_time": seconds / 3600, "batch_size": 8, "log_interval_steps": 2,
         "implementation": {"micro_batch_size": 4}}
    r.update(over)
    return r


def command(shards, tokenizer, out: Path, rec: dict, launcher=(sys.executable,)):
    return [*launcher, "-m", "workflow_scripts.pretrain.train", "--recipe", json.dumps(rec),
            "--train", *map(str, shards["train"]), "--valid", *map(str, shards["valid"]),
            "--tokenizer", str(tokenizer), "--state-dir", str(out / "state"),
            "--model-out", str(out / "model"), "--log-out", str(out / "log.jsonl")]


def run(shards, tokenizer, out, rec, **kw):
    proc = subprocess.run(command(shards, tokenizer, out, rec, **kw), cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    return proc


def run_with(env_path, shards, tokenizer, out, rec):
    """A run with env_path first on PYTHONPATH (where a user's optimizer module lives)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(env_path), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(command(shards, tokenizer, out, rec), cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def events(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def resumed(event: dict) -> dict:
    """A resume line's position (its speed fields, the device's, aside)."""
    return {k: event[k] for k in ("event", "step", "elapsed_s")}
