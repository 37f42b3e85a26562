"""Each key's effect is declared once in the schema, and the rerun triggers and the state key follow it."""
import copy
from pathlib import Path

import pytest
import yaml

from workflow_scripts import config_checks, config_effects

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config_checks.validate(config, REPO / "config" / "schema.yaml")
    return config


def edited(recipe, **over):
    r = copy.deepcopy(recipe)
    for key, value in over.items():
        r[key] = {**r[key], **value} if isinstance(value, dict) else value
    return r


def test_every_schema_key_declares_a_known_effect():
    assert config_effects.undeclared() == []


def test_undeclared_names_a_key_without_effect_and_an_unknown_effect():
    schema = copy.deepcopy(config_effects.schema())
    del schema["$defs"]["run"]["properties"]["seed"]["x-effect"]
    schema["properties"]["glue"]["properties"]["cache_dir"]["x-effect"] = "speed"
    schema["$defs"]["run"]["properties"]["model"]["properties"]["dropout"]["x-effect"] = "placement"
    problems = config_effects.undeclared(schema)
    assert "(top).runs.*.seed: no x-effect of its own or from a parent" in problems
    assert any(p.startswith("(top).glue.cache_dir: unknown x-effect 'speed'") for p in problems)
    assert any(p.startswith("(top).runs.*.model.dropout: x-effect 'placement' below one declared") for p in problems)
    assert len(problems) == 3


def changes(recipe, view, **over):
    return view(edited(recipe, **over)) != view(recipe)


def test_validation_cadence_is_a_rerun_trigger_only_under_max_valid_loss(config):
    plain = config["runs"]["demo"]
    assert plain["early_stopping"]["max_valid_loss"] is None
    stopping = edited(plain, early_stopping={"max_valid_loss": 3.0})
    cadence = (dict(validation_interval_minutes=1), dict(validation_max_samples=16),
               dict(validation_interval_minutes_begin=0.5), dict(validation_interval_minutes_end=0.5),
               dict(validation_begin_proportion=0.3), dict(validation_end_proportion=0.3))
    for over in cadence:
        assert changes(stopping, config_effects.tracked_recipe, **over), over
        assert not changes(plain, config_effects.tracked_recipe, **over), over
        # Where a run stops is no part of its trajectory: never a fresh state.
        assert not changes(stopping, config_effects.state_view, **over), over
        assert not changes(plain, config_effects.state_view, **over), over


@pytest.mark.parametrize("over, tracked, state", [
    (dict(implementation={"micro_batch_size": 4}), False, False),
    (dict(implementation={"compile": True}), False, False),
    (dict(implementation={"tensorboard": True}), False, False),
    (dict(implementation={"deepspeed": {"flops_profiler": {"enabled": True}}}), False, False),
    (dict(checkpoint_interval_minutes=1), False, False),
    (dict(log_interval_steps=1), False, False),
    (dict(implementation={"gpus": 2}), True, True),           # each rank reads its own shards
    (dict(implementation={"precision": "bf16"}), True, True),
    (dict(implementation={"zero_stage": 2}), False, True),    # checkpoint layout only
    (dict(early_exit_time_marker=0.01), True, False),         # a later marker continues the run
    (dict(early_stopping={"nonfinite_loss": False}), True, False),
    (dict(max_steps=5), True, False),                          # the schedule runs on time
    (dict(max_steps=5, schedule={"by": "step"}), True, True),  # the schedule runs on steps
    (dict(optimizer={"lr": 5e-4}), True, True),
    (dict(model={"layer_norm": "post"}), True, True),
    (dict(seed=1), True, True),
    (dict(batch_size=64), True, True),
    (dict(total_training_time=1.0), True, True),
])
def test_what_a_recipe_edit_reruns_and_restarts(config, over, tracked, state):
    recipe = config["runs"]["demo"]
    if "schedule" in over and "max_steps" in over:   # by=step needs max_steps on both sides
        recipe = edited(recipe, max_steps=10, schedule={"by": "step"})
    assert changes(recipe, config_effects.tracked_recipe, **over) is tracked
    assert changes(recipe, config_effects.state_view, **over) is state


def test_a_time_cap_on_a_step_schedule_is_a_stop(config):
    # On a step schedule total_training_time only caps the run: a larger cap reruns pretraining,
    # which resumes the same state; on a time schedule it is the LR curve's clock (results).
    step_run = edited(config["runs"]["demo"], max_steps=10, schedule={"by": "step"})
    assert changes(step_run, config_effects.tracked_recipe, total_training_time=1.0)
    assert not changes(step_run, config_effects.state_view, total_training_time=1.0)


def test_select_by_reruns_no_trial(config):
    finetune = config["finetune"]
    for view in (config_effects.finetune_settings, config_effects.finetune_tracked):
        assert view({**finetune, "select_by": "first_metric"}) == view(finetune)


def test_finetune_and_glue_views(config):
    finetune, glue = config["finetune"], config["glue"]
    settings = config_effects.finetune_settings(finetune)
    # The trials get the whole section less what shapes the DAG (as before the effects were declared)
    # and the ranking of trials, which only the selection jobs read.
    assert settings == {k: v for k, v in finetune.items() if k not in ("tasks", "grid", "seeds", "stilts", "select_by")}
    assert "select_by" not in config_effects.finetune_tracked(finetune)
    tracked = config_effects.finetune_tracked(finetune)
    assert tracked["implementation"] == {"precision": finetune["implementation"]["precision"]}
    assert {k: v for k, v in tracked.items() if k != "implementation"} == {
        k: v for k, v in settings.items() if k != "implementation"}
    assert config_effects.glue_tracked({**glue, "cache_dir": "/elsewhere"}) == config_effects.glue_tracked(glue)
    assert config_effects.glue_tracked(glue) == {k: v for k, v in glue.items() if k != "cache_dir"}


def test_a_key_outside_the_schema_is_named():
    with pytest.raises(config_effects.BadInput, match=r"runs\.RUN\.implementation\.gpu:"):
        config_effects.state_view({"implementation": {"gpu": 1}})
