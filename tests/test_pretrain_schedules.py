"""LR schedules: every curve's value at known points, warmup shapes, the time and step clocks, user
schedules by import path with kwargs, and one-line errors for bad parameters."""
import math
from pathlib import Path

import pytest
import yaml

from workflow_scripts.pretrain import schedules
from workflow_scripts.pretrain.schedules import CURVES, Progress, Schedule
from workflow_scripts.errors import BadInput

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def at(name, fraction, warmup=0.1, budget=1000.0, lr=1.0, **kwargs):
    """The LR at `fraction` of a time budget."""
    return Schedule({"name": name, "warmup_proportion": warmup, "kwargs": kwargs}, lr, budget).lr(fraction * budget, 0)


def decay(name, u, **kwargs):
    """The multiplier at fraction u of the decay phase (no warmup)."""
    return at(name, u, warmup=0.0, **kwargs)


@pytest.mark.parametrize("fraction, expected", [
    (0.0, 0.0), (0.05, 0.5), (0.1, 1.0),          # linear warmup over the first 10% of the time
    (0.55, 0.5), (0.82, 0.2), (1.0, 0.0),         # then linear decay, reaching 0 at the budget
    (1.5, 0.0),                                   # past the budget (last step overshoots): stays 0
])
def test_linear_warmup_then_decay_to_zero_at_the_budget(fraction, expected):
    assert at("linear", fraction) == pytest.approx(expected)


@pytest.mark.parametrize("fraction, expected", [(0.0, 0.0), (0.05, 0.5), (0.1, 1.0), (0.7, 1.0), (1.0, 1.0)])
def test_constant_after_warmup(fraction, expected):
    assert at("constant", fraction) == pytest.approx(expected)


def test_exp_warms_up_quadratically_then_decays_geometrically():
    # academic-budget-bert's ExpCurve: warmup (f/w)^2; then decay_rate ** (u / decay_step).
    assert at("exp", 0.05) == pytest.approx(0.25)
    assert at("exp", 0.1) == pytest.approx(1.0)
    assert at("exp", 0.55) == pytest.approx(0.1 ** 0.5)                  # u = 0.5, defaults 0.1 per 1.0
    assert at("exp", 1.0) == pytest.approx(0.1)
    assert decay("exp", 0.5, decay_rate=0.5, decay_step=0.25) == pytest.approx(0.25)


@pytest.mark.parametrize("u, kwargs, expected", [
    (0.0, {}, 1.0), (0.5, {}, 0.5), (1.0, {}, 0.0),
    (1.0, {"min_lr_ratio": 0.1}, 0.1), (0.5, {"min_lr_ratio": 0.1}, 0.55),
    # SGDR restarts: two cycles of 0.5; at a cycle's end its minimum, just after it the peak again.
    (0.25, {"t_0": 0.5}, 0.5), (0.5, {"t_0": 0.5}, 0.0), (0.5001, {"t_0": 0.5}, 1.0), (0.75, {"t_0": 0.5}, 0.5),
    # growing cycles: [0, 1/3), [1/3, 1): the middle of the second is at 2/3.
    (1 / 6, {"t_0": 1 / 3, "t_mul": 2.0}, 0.5), (2 / 3, {"t_0": 1 / 3, "t_mul": 2.0}, 0.5),
    (1.0, {"t_0": 1 / 3, "t_mul": 2.0}, 0.0),
])
def test_cosine_with_floor_and_restarts(u, kwargs, expected):
    assert decay("cosine", u, **kwargs) == pytest.approx(expected, abs=1e-6)


def test_poly_and_inverse_time():
    assert decay("poly", 0.5) == pytest.approx(0.25)                     # (1 - u)^2
    assert decay("poly", 0.5, power=1.0) == pytest.approx(0.5)
    assert decay("poly", 1.0) == 0.0
    assert decay("inverse_time", 0.5) == pytest.approx(1 / 2.5)          # 1 / (1 + 3u)
    assert decay("inverse_time", 1.0) == pytest.approx(0.25)
    assert decay("inverse_time", 1.0, decay_rate=1.0) == pytest.approx(0.5)


@pytest.mark.parametrize("u, expected", [(0.0, 1.0), (0.32, 1.0), (0.34, 0.1), (0.66, 0.1), (0.67, 0.01), (1.0, 0.01)])
def test_step_divides_by_decay_rate_at_each_of_num_interval_pieces(u, expected):
    assert decay("step", u) == pytest.approx(expected)                   # ExtremeBERT's conf: 10.0, 3 intervals


@pytest.mark.parametrize("u, expected", [
    # Interval k starts at 1 - a^k, a = 1/1.4142: 0, 0.293, 0.5, 0.646, 0.75, 0.823. With cr_k 3 the
    # first three stay at the peak, then each interval multiplies by 0.5 / a = 0.7071.
    (0.0, 1.0), (0.4, 1.0), (0.64, 1.0), (0.65, 0.7071), (0.74, 0.7071), (0.76, 0.5), (0.83, 0.3536), (1.0, 0.0),
])
def test_elastic_step_decay(u, expected):
    assert decay("elastic_step", u) == pytest.approx(expected, abs=1e-3)


def test_elastic_step_matches_extremebert_formula_at_many_points():
    """ExtremeBERT's get_elastic_step_decay_curve with t/T = u (restated here independently)."""
    for rate, cr_k in ((1.4142, 3), (2.0, 2), (1.2, 4)):
        a = 1 / rate
        for i in range(1, 1000):
            u = i / 1000
            k = int(math.floor(math.log(1 - u) / math.log(a)) + 0.5)
            theirs = min(min(1, 0.5 / a) ** (k - cr_k + 1), 1)
            assert decay("elastic_step", u, interval_shrink_rate=rate, cr_k=cr_k) == pytest.approx(theirs)


def test_step_clock_runs_on_optimizer_steps():
    spec = {"name": "linear", "by": "step", "warmup_proportion": 0.1}
    s = Schedule(spec, 2.0, budget_s=10.0, max_steps=100)
    assert s.lr(elapsed_s=9999.0, step=5) == pytest.approx(1.0)          # time is ignored
    assert s.lr(elapsed_s=0.0, step=55) == pytest.approx(1.0)            # u = 0.5 of the decay phase
    assert s.lr(elapsed_s=0.0, step=100) == 0.0
    with pytest.raises(BadInput, match=r"schedule\.by: 'step' needs max_steps"):
        Schedule(spec, 1.0, budget_s=10.0, max_steps=None)


def test_peak_lr_scales_and_no_warmup_starts_at_peak():
    assert at("linear", 0.0, warmup=0.0, lr=1e-3) == pytest.approx(1e-3)
    assert at("linear", 0.5, warmup=0.0, lr=1e-3) == pytest.approx(5e-4)
    assert at("linear", 0.3, warmup=0.06, budget=72.0, lr=1e-3) == pytest.approx(1e-3 * 0.7 / 0.94)


def half_life(progress: Progress, half: float = 0.5) -> float:
    """A user's schedule, named by import path in the recipe: halves every `half` of the decay phase."""
    assert 0.0 <= progress.decay <= 1.0 and 0.0 <= progress.fraction <= 1.0
    return 0.5 ** (progress.decay / half)


def test_user_schedule_by_import_path_with_kwargs():
    # Warmup is ours; the user's function gets the decay-phase fraction and its kwargs.
    assert at("tests.test_pretrain_schedules:half_life", 0.05) == pytest.approx(0.5)
    assert at("tests.test_pretrain_schedules:half_life", 0.55) == pytest.approx(0.5 ** (0.5 / 0.5))
    assert at("tests.test_pretrain_schedules:half_life", 0.55, half=0.25) == pytest.approx(0.25)
    with pytest.raises(BadInput, match=r"returned -1\.0"):
        Schedule({"name": "tests.test_pretrain_schedules:negative"}, 1.0, 10.0).lr(1.0, 0)


def negative(progress):
    return -1.0


def test_unknown_or_broken_schedules_fail_in_one_line():
    with pytest.raises(BadInput, match=r"schedule\.name: 'cosin' is not one of linear, constant, exp, cosine"):
        Schedule({"name": "cosin"}, 1.0, 10.0)
    with pytest.raises(BadInput, match=r"module workflow_scripts\.pretrain\.schedules has no attribute nope"):
        Schedule({"name": "workflow_scripts.pretrain.schedules:nope"}, 1.0, 10.0)
    with pytest.raises(BadInput, match="cannot import module no_such_pkg"):
        Schedule({"name": "no_such_pkg.mod:fn"}, 1.0, 10.0)
    with pytest.raises(BadInput, match=r"'power2' not a parameter of the poly curve \(allowed: power\)"):
        Schedule({"name": "poly", "kwargs": {"power2": 1}}, 1.0, 10.0)
    with pytest.raises(BadInput, match=r"schedule.kwargs.t_mul=0.5 must be >= 1 \(schedule cosine\)"):
        Schedule({"name": "cosine", "kwargs": {"t_mul": 0.5}}, 1.0, 10.0)
    with pytest.raises(BadInput, match="cr_k=1 must be an integer >= 2"):
        Schedule({"name": "elastic_step", "kwargs": {"cr_k": 1}}, 1.0, 10.0)
    with pytest.raises(BadInput, match=r"linear curve \(allowed: none"):
        Schedule({"name": "linear", "kwargs": {"power": 1}}, 1.0, 10.0)


def test_schema_lists_every_curve_with_the_code_defaults():
    """The schema's description of schedule.kwargs shows each curve's defaults: keep it in step with the code."""
    schedule = yaml.safe_load(SCHEMA.read_text())["$defs"]["run"]["properties"]["schedule"]["properties"]
    text = " ".join(schedule["kwargs"]["description"].split())
    for name in CURVES:
        defaults = schedules.curve_defaults(name)
        if defaults:
            assert f"{name} {{{', '.join(f'{k}: {v}' for k, v in defaults.items())}}}" in text, name
    assert set(CURVES) <= set(schedule["name"]["anyOf"][0]["enum"])


@pytest.mark.parametrize("fraction, shape, expected", [
    (0.05, "1-sqrt", 0.5),                          # warmup: the first 10% of the run
    (0.1, "1-sqrt", 1.0), (0.5, "1-sqrt", 1.0),     # stable: through 0.1 + 0.9 x 0.75 = 0.775
    (0.775, "1-sqrt", 1.0), (0.775, "linear", 1.0),
    (0.8875, "linear", 0.5),                        # halfway through the decay (the last 0.225 of the run)
    (0.8875, "1-sqrt", 1 - math.sqrt(0.5)),
    (0.83125, "1-sqrt", 0.5),                       # 1 - sqrt(x) = 0.5 at x = 0.25 of the decay
    (1.0, "1-sqrt", 0.0), (1.0, "linear", 0.0), (1.2, "linear", 0.0),
])
def test_wsd_warms_up_holds_then_decays_over_the_last_part(fraction, shape, expected):
    assert at("wsd", fraction, decay_fraction=0.25, shape=shape) == pytest.approx(expected)


def test_wsd_floor_no_decay_and_the_step_clock():
    assert at("wsd", 1.0, warmup=0.0, min_lr_ratio=0.1) == pytest.approx(0.1)
    assert at("wsd", 0.9, warmup=0.0, shape="linear", min_lr_ratio=0.1) == pytest.approx(0.1 + 0.9 * 0.5)
    assert at("wsd", 1.0, warmup=0.0, decay_fraction=0.0) == 1.0   # never decays: a run to be continued
    s = Schedule({"name": "wsd", "by": "step", "warmup_proportion": 0.0, "kwargs": {"shape": "linear"}}, 2.0,
                 budget_s=10.0, max_steps=100)
    assert [s.lr(9999.0, n) for n in (0, 80, 90, 100)] == pytest.approx([2.0, 2.0, 1.0, 0.0])
    with pytest.raises(BadInput, match=r"schedule.kwargs.shape='cosine' must be one of linear, 1-sqrt \(schedule wsd\)"):
        Schedule({"name": "wsd", "kwargs": {"shape": "cosine"}}, 1.0, 10.0)
    with pytest.raises(BadInput, match=r"decay_fraction=1.5 must be in \[0, 1\]"):
        Schedule({"name": "wsd", "kwargs": {"decay_fraction": 1.5}}, 1.0, 10.0)
