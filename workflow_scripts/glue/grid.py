"""The fine-tuning search space: trial names <-> hyperparameters (pure Python, no heavy imports).

A trial is one (lr, batch_size, epochs, seed) for one task; its name is its path segment
under results/runs/{run}/glue/{task}/, e.g. `lr3e-05_bs32_ep3_seed42`.
"""
import itertools
import re

# A trial name's fields: (name prefix, hyperparameter, value regex), in order, joined by "_".
FIELDS = (("lr", "lr", r"[0-9.e+-]+"), ("bs", "batch_size", r"\d+"), ("ep", "epochs", r"[0-9.]+"),
          ("seed", "seed", r"-?\d+"))
# The regex of a trial name: rules/common.smk constrains the {trial} wildcard with it. Without groups,
# since Snakemake would take named groups for wildcards of their own.
TRIAL_PATTERN = "_".join(f"{prefix}{value}" for prefix, _, value in FIELDS)
TRIAL_RE = re.compile("_".join(f"{prefix}(?P<{key}>{value})" for prefix, key, value in FIELDS))


def task_grid(grid: dict, task: str) -> dict:
    """The task's own grid entry where it has one, else `default`."""
    return grid.get(task) or grid["default"]


def trial_name(lr: float, batch_size: int, epochs: float, seed: int) -> str:
    return f"lr{lr:.10g}_bs{batch_size}_ep{epochs:.10g}_seed{seed}"


def parse_trial(name: str) -> dict:
    m = TRIAL_RE.fullmatch(name)
    if not m:
        raise ValueError(f"not a trial name: {name!r}")
    epochs = float(m["epochs"])
    return {"lr": float(m["lr"]), "batch_size": int(m["batch_size"]),
            "epochs": int(epochs) if epochs.is_integer() else epochs, "seed": int(m["seed"])}


def trials(grid: dict, seeds: list, task: str) -> list:
    """Every trial name for one task, in a stable order."""
    g = task_grid(grid, task)
    return [trial_name(lr, bs, ep, seed)
            for lr, bs, ep, seed in itertools.product(g["lr"], g["batch_size"], g["epochs"], seeds)]
