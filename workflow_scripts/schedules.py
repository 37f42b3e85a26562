"""Learning-rate schedules as multipliers of the peak LR, driven by the fraction of the time budget used.

Izsak et al. 2021 schedule on wall-clock: progress = elapsed training time / total_training_time,
so a run ends with its LR at the end of the curve whatever its speed. A schedule is a function
`f(progress: Progress, spec: dict) -> float` (the multiplier, >= 0); register it in SCHEDULES,
or name one by import path "package.module:function" in the recipe (schedule.name).
Progress also carries the optimizer step, for by-step variants that need it.
"""
import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Progress:
    time: float    # elapsed training time / budget, in [0, 1] (clipped)
    step: int      # optimizer steps done before this one


def _warmup(progress: Progress, spec: dict) -> float | None:
    """Linear warmup from 0 to 1 over the first warmup_proportion of the budget; None after it."""
    warm = spec.get("warmup_proportion", 0.0)
    if warm > 0 and progress.time < warm:
        return progress.time / warm
    return None


def linear(progress: Progress, spec: dict) -> float:
    """Warmup, then linear decay to 0 exactly at the end of the budget (the paper's schedule)."""
    w = _warmup(progress, spec)
    if w is not None:
        return w
    warm = spec.get("warmup_proportion", 0.0)
    return max(0.0, (1.0 - progress.time) / (1.0 - warm)) if warm < 1 else 1.0


def constant(progress: Progress, spec: dict) -> float:
    """Warmup, then the peak LR until the budget ends."""
    w = _warmup(progress, spec)
    return 1.0 if w is None else w


SCHEDULES: dict[str, Callable[[Progress, dict], float]] = {
    "linear": linear,
    "constant": constant,
}


def resolve(name: str) -> Callable[[Progress, dict], float]:
    """A built-in name, or "package.module:function" for a user's schedule with the same signature."""
    if name in SCHEDULES:
        return SCHEDULES[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise SystemExit(f"schedule.name={name!r}: cannot import {attr} from {module} ({e})")
        if not callable(fn):
            raise SystemExit(f"schedule.name={name!r}: {module}.{attr} is not a function")
        return fn
    raise SystemExit(f"schedule.name={name!r} is not one of {sorted(SCHEDULES)} nor 'module:function'")


class Schedule:
    """Peak LR times the multiplier at the current progress through the time budget."""

    def __init__(self, spec: dict, peak_lr: float, budget_s: float):
        self.spec, self.peak_lr, self.budget_s = spec, peak_lr, budget_s
        self.fn = resolve(spec.get("name", "linear"))

    def multiplier(self, elapsed_s: float, step: int) -> float:
        progress = Progress(time=min(max(elapsed_s / self.budget_s, 0.0), 1.0), step=step)
        m = float(self.fn(progress, self.spec))
        if not m >= 0:   # also catches NaN
            raise SystemExit(f"schedule {self.spec.get('name')!r} returned {m} at progress {progress.time:.4f}")
        return m

    def lr(self, elapsed_s: float, step: int) -> float:
        return self.peak_lr * self.multiplier(elapsed_s, step)
