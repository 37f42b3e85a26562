"""Time-based LR schedules: values at known fractions of the budget, and the user-function hook."""
import pytest

from workflow_scripts.schedules import SCHEDULES, Progress, Schedule, resolve


def at(name, fraction, warmup=0.1, budget=1000.0, lr=1.0):
    return Schedule({"name": name, "warmup_proportion": warmup}, lr, budget).lr(fraction * budget, step=0)


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


def test_peak_lr_scales_and_no_warmup_starts_at_peak():
    assert at("linear", 0.0, warmup=0.0, lr=1e-3) == pytest.approx(1e-3)
    assert at("linear", 0.5, warmup=0.0, lr=1e-3) == pytest.approx(5e-4)
    assert at("linear", 0.3, warmup=0.06, budget=72.0, lr=1e-3) == pytest.approx(1e-3 * 0.7 / 0.94)


def user_cosine_like(progress: Progress, spec: dict) -> float:
    """A user's schedule, named by import path in the recipe."""
    return 1.0 - progress.time ** 2


def test_user_schedule_by_import_path():
    fn = resolve("test_pretrain_schedules:user_cosine_like")
    assert fn is user_cosine_like
    assert at("test_pretrain_schedules:user_cosine_like", 0.5) == pytest.approx(0.75)


def test_unknown_or_broken_schedules_fail_in_one_line():
    with pytest.raises(SystemExit, match="schedule.name='cosin' is not one of"):
        resolve("cosin")
    with pytest.raises(SystemExit, match="cannot import nope"):
        resolve("workflow_scripts.schedules:nope")
    negative = Schedule({"name": "test_pretrain_schedules:negative"}, 1.0, 10.0)
    with pytest.raises(SystemExit, match="returned -1.0"):
        negative.lr(1.0, 0)


def negative(progress, spec):
    return -1.0


def test_registry_holds_the_built_ins():
    assert {"linear", "constant"} <= set(SCHEDULES)
