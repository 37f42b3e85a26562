"""Learning-rate schedules: warmup, then a decay curve, as a multiplier of the peak LR on the run's clock.

The clock (schedule.by): `time` (the default, Izsak et al. 2021) is elapsed training time /
total_training_time, so a run ends at the end of its curve whatever its speed; `step` is
optimizer steps / max_steps. Call that fraction f, in [0, 1].

The first warmup_proportion w of f warms up from 0 to the peak: linearly, or quadratically for
`exp` (academic-budget-bert's ExpCurve does (f/w)^2). The rest is the decay phase; a curve sees
u = (f - w) / (1 - w) in [0, 1] and returns the multiplier. Its parameters come from
schedule.kwargs, in units of u, so one recipe works on either clock:

    linear        1 - u                                          (the paper's; no kwargs)
    constant      1
    exp           decay_rate ** (u / decay_step)                 decay_rate 0.1, decay_step 1.0
    cosine        min_lr_ratio + (1 - min_lr_ratio) (1 + cos(pi x)) / 2, x the position in the
                  current cycle; cycle i lasts t_0 * t_mul**i (SGDR restarts when t_0 < 1)
                                                                 t_0 1.0, t_mul 1.0, min_lr_ratio 0.0
    poly          (1 - u) ** power                               power 2.0
    inverse_time  1 / (1 + decay_rate * u)                       decay_rate 3.0
    step          decay_rate ** -k, k = floor(u * num_interval)  decay_rate 10.0, num_interval 3
    elastic_step  halving-style steps on shrinking intervals     interval_shrink_rate 1.4142, cr_k 3
    wsd           warmup-stable-decay (trapezoidal): 1 until the last decay_fraction of the phase, then down to
                  min_lr_ratio along `shape`: linear 1 - x or 1-sqrt 1 - sqrt(x), x in [0, 1] through the decay
                                                                 decay_fraction 0.2, shape 1-sqrt, min_lr_ratio 0.0

The last five are ExtremeBERT's customized curves (pretraining/customized_lr_curves.py), with its
parameter names, re-expressed in u instead of iterations: its num_iter is our decay phase, its
cosine t_0 (iterations) is our t_0 (fraction of the phase), its cosine min_lr is min_lr_ratio x
peak, its poly `decay_rate` is our `power`, and its inverse_time 1/(1 + lr t lambda) is ours with
decay_rate = lr x num_iter x lambda. Its activation_point and restarting_points are not carried over.

wsd is the schedule ModernBERT (Warner et al. 2024) and MiniCPM train with: the peak LR held for
most of the run, so a budget run can be cut or extended and only the final decay re-run; the 1-sqrt
cooldown over the last ~20% matches a cosine run of the same length (Hägele et al. 2024, "Scaling
Laws and Compute-Optimal Training Beyond Fixed Training Durations"). Its three parts are
warmup_proportion w of the run, then (1 - w)(1 - decay_fraction) stable, then (1 - w) decay_fraction
decaying; on the time clock the decay ends at total_training_time, on the step clock at max_steps.

A user's schedule: schedule.name "package.module:function", called after warmup as
function(progress, **schedule.kwargs) -> multiplier (>= 0), progress a Progress (below). Set
warmup_proportion 0 to shape the warmup yourself from progress.fraction.
"""
import inspect
import math
from dataclasses import dataclass

from workflow_scripts import user_code
from workflow_scripts.errors import BadInput


@dataclass(frozen=True)
class Progress:
    fraction: float    # of the run on the schedule's clock (time or steps), in [0, 1]
    decay: float       # of the decay phase (after warmup), in [0, 1]; 0 during warmup
    step: int          # optimizer steps done before this one
    elapsed_s: float   # training seconds so far


def run_fraction(by: str, elapsed_s: float, step: int, budget_s: float, max_steps: int | None) -> float:
    """How far the run is on the schedule's clock (schedule.by), clipped to [0, 1]; the LR curve and
    the validation stages (stopping.py) both read it."""
    f = step / max_steps if by == "step" and max_steps else elapsed_s / budget_s
    return min(max(f, 0.0), 1.0)


def _need(ok: bool, name: str, value, rule: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r} must be {rule}")


def linear(u: float) -> float:
    return 1.0 - u


def constant(u: float) -> float:
    return 1.0


def exp(u: float, decay_rate: float = 0.1, decay_step: float = 1.0) -> float:
    _need(0 < decay_rate <= 1, "decay_rate", decay_rate, "in (0, 1]")
    _need(decay_step > 0, "decay_step", decay_step, "> 0")
    return decay_rate ** (u / decay_step)


def cosine(u: float, t_0: float = 1.0, t_mul: float = 1.0, min_lr_ratio: float = 0.0) -> float:
    _need(t_0 > 0, "t_0", t_0, "> 0 (a fraction of the decay phase)")
    _need(t_mul >= 1, "t_mul", t_mul, ">= 1")
    _need(0 <= min_lr_ratio <= 1, "min_lr_ratio", min_lr_ratio, "in [0, 1]")
    # Cycle i spans [start_i, start_i + t_0 t_mul^i); find i in closed form (no loop over cycles).
    if t_mul == 1:
        i = math.floor(u / t_0)
        start = i * t_0
    else:
        i = math.floor(math.log(1 + u * (t_mul - 1) / t_0) / math.log(t_mul))
        start = t_0 * (t_mul ** i - 1) / (t_mul - 1)
    length = t_0 * t_mul ** i
    x = (u - start) / length
    if i > 0 and x <= 1e-12:
        x = 1.0            # exactly at a cycle's end: its minimum (ExtremeBERT restarts one step later)
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(x, 1.0)))


def poly(u: float, power: float = 2.0) -> float:
    _need(power >= 0, "power", power, ">= 0")
    return max(0.0, 1.0 - u) ** power


def inverse_time(u: float, decay_rate: float = 3.0) -> float:
    _need(decay_rate >= 0, "decay_rate", decay_rate, ">= 0")
    return 1.0 / (1.0 + decay_rate * u)


def step(u: float, decay_rate: float = 10.0, num_interval: int = 3) -> float:
    _need(decay_rate >= 1, "decay_rate", decay_rate, ">= 1 (the LR is divided by it at each interval)")
    _need(isinstance(num_interval, int) and num_interval >= 1, "num_interval", num_interval, "an integer >= 1")
    return decay_rate ** -min(math.floor(u * num_interval), num_interval - 1)


def elastic_step(u: float, interval_shrink_rate: float = 1.4142, cr_k: int = 3) -> float:
    """ExtremeBERT's elastic step decay: interval k covers (1 - a) a^k of the phase (a = 1 /
    interval_shrink_rate, so intervals shrink); the LR stays at the peak for the first cr_k - 1
    intervals, then falls by min(1, 0.5 / a) per interval."""
    _need(interval_shrink_rate > 1, "interval_shrink_rate", interval_shrink_rate, "> 1")
    _need(isinstance(cr_k, int) and cr_k >= 2, "cr_k", cr_k, "an integer >= 2")
    if u >= 1:
        return 0.0
    a = 1.0 / interval_shrink_rate
    k = math.floor(math.log(1 - u) / math.log(a))   # the largest k with u >= 1 - a^k
    return min(min(1.0, 0.5 / a) ** (k - cr_k + 1), 1.0)


WSD_SHAPES = {"linear": lambda x: x, "1-sqrt": math.sqrt}


def wsd(u: float, decay_fraction: float = 0.2, shape: str = "1-sqrt", min_lr_ratio: float = 0.0) -> float:
    _need(0 <= decay_fraction <= 1, "decay_fraction", decay_fraction, "in [0, 1] (a fraction of the phase after warmup)")
    _need(shape in WSD_SHAPES, "shape", shape, f"one of {', '.join(WSD_SHAPES)}")
    _need(0 <= min_lr_ratio <= 1, "min_lr_ratio", min_lr_ratio, "in [0, 1]")
    start = 1.0 - decay_fraction
    if u <= start or decay_fraction == 0:
        return 1.0
    x = min((u - start) / decay_fraction, 1.0)
    return min_lr_ratio + (1 - min_lr_ratio) * (1.0 - WSD_SHAPES[shape](x))


CURVES = {"linear": linear, "constant": constant, "exp": exp, "cosine": cosine, "poly": poly,
          "inverse_time": inverse_time, "step": step, "elastic_step": elastic_step, "wsd": wsd}


def curve_defaults(name: str) -> dict:
    """A built-in curve's kwargs and their defaults (the schema documents the same)."""
    params = list(inspect.signature(CURVES[name]).parameters.values())[1:]
    return {p.name: p.default for p in params}


def check(spec: dict, max_steps) -> str | None:
    """The first problem with a schedule spec (without importing a user's module), or None."""
    name, kwargs = spec.get("name", "linear"), spec.get("kwargs") or {}
    if spec.get("by", "time") == "step" and not max_steps:
        return "schedule.by: 'step' needs max_steps (the number of steps the curve runs over)"
    if name not in CURVES:
        if not user_code.is_import_path(name):
            return f"schedule.name: {name!r} is not one of {', '.join(CURVES)} nor 'package.module:function'"
        return None
    allowed = curve_defaults(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        return (f"schedule.kwargs: {', '.join(map(repr, unknown))} not a parameter of the {name} curve "
                f"(allowed: {', '.join(allowed) or 'none'})")
    try:
        for u in (0.0, 0.5, 1.0):
            CURVES[name](u, **kwargs)
    except ValueError as e:
        return f"schedule.kwargs.{e} (schedule {name})"
    except TypeError as e:
        return f"schedule.kwargs: {e} (schedule {name})"
    return None


class Schedule:
    """Peak LR times the multiplier at the run's current progress."""

    def __init__(self, spec: dict, peak_lr: float, budget_s: float, max_steps: int | None = None):
        problem = check(spec, max_steps)
        if problem:
            raise BadInput(problem)
        self.spec, self.peak_lr, self.budget_s, self.max_steps = spec, peak_lr, budget_s, max_steps
        self.name = spec.get("name", "linear")
        self.by = spec.get("by", "time")
        self.warmup = spec.get("warmup_proportion", 0.0)
        self.kwargs = dict(spec.get("kwargs") or {})
        if self.name in CURVES:
            curve = CURVES[self.name]
            self.after_warmup = lambda p: curve(p.decay, **self.kwargs)
        else:
            fn = user_code.load(self.name, "schedule.name")
            if not callable(fn):
                raise BadInput(f"schedule.name={self.name!r} is not a function")
            self.after_warmup = lambda p: fn(p, **self.kwargs)

    def multiplier(self, elapsed_s: float, step: int) -> float:
        f = run_fraction(self.by, elapsed_s, step, self.budget_s, self.max_steps)
        w = self.warmup
        if w > 0 and f < w:
            m = (f / w) ** 2 if self.name == "exp" else f / w
        else:
            u = (f - w) / (1 - w) if w < 1 else 1.0
            m = float(self.after_warmup(Progress(fraction=f, decay=min(max(u, 0.0), 1.0), step=step,
                                                 elapsed_s=elapsed_s)))
        if not m >= 0:   # also catches NaN
            raise BadInput(f"schedule {self.name!r} returned {m} at progress {f:.4f}")
        return m

    def lr(self, elapsed_s: float, step: int) -> float:
        return self.peak_lr * self.multiplier(elapsed_s, step)
