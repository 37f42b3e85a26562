"""When a run validates and stops: the begin/middle/end validation cadence, and every end reason."""
import json
import math


from workflow_scripts.pretrain import train
from workflow_scripts.pretrain.stopping import Budget


def plan(**over):
    return Budget(**{"budget_s": 1000.0, "valid_s": 100.0, **over})


def test_validation_interval_by_stage_of_the_run():
    b = plan(valid_begin_s=10.0, valid_end_s=20.0, begin_proportion=0.1, end_proportion=0.2)
    assert [b.validation_interval_s(t, 0) for t in (0, 99, 100, 500, 799, 800, 1000)] == [10, 10, 100, 100, 100, 20, 20]
    assert b.validation_due(55.0, 0, last_valid_s=45.0) and not b.validation_due(54.0, 0, last_valid_s=45.0)
    assert not b.validation_due(500.0, 0, last_valid_s=450.0) and b.validation_due(550.0, 0, last_valid_s=450.0)
    # Entering the end stage shortens the wait at once: 20 s after the last one, not 100.
    assert b.validation_due(821.0, 0, last_valid_s=800.5)
    # null begin/end intervals: the middle one everywhere (academic-budget-bert's stages, off).
    assert {plan().validation_interval_s(t, 0) for t in (0, 500, 999)} == {100.0}


def test_stages_follow_the_step_clock_when_the_schedule_does():
    b = plan(by="step", max_steps=200, valid_begin_s=10.0, begin_proportion=0.1)
    assert b.validation_interval_s(elapsed_s=900.0, step=10) == 10.0      # 5% of the steps, 90% of the time
    assert b.validation_interval_s(elapsed_s=1.0, step=50) == 100.0


def test_valid_loss_check_forces_a_validation_when_it_comes_due():
    b = plan(max_valid_loss=2.0, after_s=300.0)
    assert not b.validation_due(299.0, 0, last_valid_s=250.0)
    assert b.validation_due(301.0, 0, last_valid_s=250.0)                # 51 s since the last, but due now
    assert not b.validation_due(302.0, 0, last_valid_s=301.0)            # done once
    assert not plan().validation_due(301.0, 0, last_valid_s=250.0)       # off without a threshold


def test_end_reasons_after_a_step_in_order():
    b = plan(early_exit_s=500.0, max_steps=50, stuck_steps=3)
    assert b.stop_after_step(100.0, 10, 0) is None
    assert b.stop_after_step(1000.0, 50, 3)[0] == "budget"
    assert b.stop_after_step(500.0, 50, 3)[0] == "early_exit"
    assert b.stop_after_step(499.0, 50, 0)[0] == "max_steps"
    assert b.stop_after_step(499.0, 10, 2) is None
    reason, detail = b.stop_after_step(499.0, 10, 3)
    assert reason == "loss_scale" and "3 consecutive steps" in detail
    assert plan().stop_after_step(999.0, 10 ** 6, 10 ** 6) is None     # no max_steps, no stuck limit


def test_nonfinite_losses_stop_unless_switched_off():
    assert plan().stop_before_step(True)[0] == "nonfinite_loss"
    assert plan().stop_before_step(False) is None
    assert plan(nonfinite_loss=False).stop_before_step(True) is None
    assert plan().stop_after_validation(math.nan, 10.0)[0] == "nonfinite_loss"
    assert plan().stop_after_validation(math.inf, 10.0)[0] == "nonfinite_loss"


def test_valid_loss_threshold_applies_only_after_its_time():
    b = plan(max_valid_loss=2.1, after_s=720 * 60.0)
    assert b.stop_after_validation(5.0, 719 * 60.0) is None
    reason, detail = b.stop_after_validation(5.0, 720 * 60.0)
    assert reason == "valid_loss" and "5.0000 > early_stopping.max_valid_loss 2.1 after 720.0 min" in detail
    assert b.stop_after_validation(2.0, 800 * 60.0) is None
    assert plan().stop_after_validation(50.0, 10 ** 6) is None


def test_an_ended_run_resumes_only_when_its_end_no_longer_holds():
    assert not plan(early_exit_s=800.0).still_finished("early_exit", 500.0, 10)   # the marker moved later
    assert plan(early_exit_s=400.0).still_finished("early_exit", 500.0, 10)
    assert plan().still_finished("budget", 1000.0, 10)
    assert plan(max_steps=10).still_finished("max_steps", 5.0, 10)
    assert plan(stuck_steps=5).still_finished("loss_scale", 5.0, 10, stuck=5)
    assert not plan(stuck_steps=None).still_finished("loss_scale", 5.0, 10, stuck=5)
    strict = plan(max_valid_loss=2.0, after_s=0.0)
    assert strict.still_finished("valid_loss", 5.0, 10, valid_loss=3.0)
    assert not plan(max_valid_loss=4.0).still_finished("valid_loss", 5.0, 10, valid_loss=3.0)
    assert not plan().still_finished("valid_loss", 5.0, 10, valid_loss=3.0)
    assert plan().still_finished("nonfinite_loss", 5.0, 10)
    assert not plan(nonfinite_loss=False).still_finished("nonfinite_loss", 5.0, 10)


def test_built_from_a_resolved_recipe():
    r = train.resolve_recipe(json.dumps({
        "model": {}, "total_training_time": 2.0, "early_exit_time_marker": 0.5, "validation_interval_minutes": 10,
        "validation_interval_minutes_end": 2, "validation_end_proportion": 0.25, "max_steps": 9,
        "schedule": {"by": "step"}, "early_stopping": {"max_valid_loss": 3.0, "after_minutes": 60}}))
    b = Budget.from_recipe(r)
    assert (b.budget_s, b.early_exit_s, b.valid_s, b.valid_begin_s, b.valid_end_s) == (7200.0, 1800.0, 600.0, None, 120.0)
    assert (b.begin_proportion, b.end_proportion, b.by, b.max_steps) == (0.1, 0.25, "step", 9)
    assert (b.max_valid_loss, b.after_s, b.nonfinite_loss, b.stuck_steps) == (3.0, 3600.0, True, 100)


def test_fp16_stops_only_on_nonfinite_losses_n_in_a_row():
    # fp16: DeepSpeed skips an overflowing step; only a run stuck there (N in a row) ends.
    b = plan(nonfinite_steps=3)
    assert b.stop_before_step(True, 1) is None and b.stop_before_step(True, 2) is None
    reason, detail = b.stop_before_step(True, 3)
    assert reason == "nonfinite_loss" and "3 steps in a row" in detail and "not applied" in detail
    assert b.stop_before_step(False, 0) is None
    assert plan(nonfinite_steps=3, nonfinite_loss=False).stop_before_step(True, 99) is None


def test_nonfinite_steps_apply_to_fp16_only():
    def budget(precision, **es):
        return Budget.from_recipe(train.resolve_recipe(json.dumps({
            "model": {}, "total_training_time": 1.0, "implementation": {"precision": precision},
            "early_stopping": es})))
    assert budget("fp16").nonfinite_steps == 10                      # the schema's default
    assert budget("fp16", nonfinite_loss_steps=4).nonfinite_steps == 4
    for precision in ("fp32", "bf16"):                               # no loss scaler to recover: the first stops
        assert budget(precision, nonfinite_loss_steps=4).nonfinite_steps == 1


def test_a_step_schedule_needs_no_time_budget():
    r = train.resolve_recipe(json.dumps({"model": {}, "max_steps": 23000, "schedule": {"by": "step"}}))
    b = Budget.from_recipe(r)
    assert b.budget_s == math.inf and b.stop_after_step(10 ** 9, 100, 0) is None
    assert b.stop_after_step(10 ** 9, 23000, 0)[0] == "max_steps"


def test_only_a_step_schedule_may_leave_out_the_time_budget():
    import pytest
    from workflow_scripts.errors import BadInput
    from workflow_scripts.pretrain import state

    for recipe in ({"model": {}}, {"model": {}, "max_steps": 10}, {"model": {}, "schedule": {"by": "time"}}):
        with pytest.raises(BadInput, match=r"^recipe key total_training_time: missing .*schedule\.by: step and max_steps"):
            train.resolve_recipe(json.dumps(recipe))
    steps_only = train.resolve_recipe(json.dumps({"model": {}, "max_steps": 5, "schedule": {"by": "step"}}))
    assert "total_training_time" not in steps_only
    assert state.checkpoint_interval_s(steps_only) == 30 * 60.0      # checkpoint_interval_minutes alone
