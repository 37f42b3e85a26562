"""The pieces around the loop: DeepSpeed config from our recipe, recipe defaults, the resume key, the clock."""
import json
import os

import pytest

from tests.conftest import REPO
from workflow_scripts.pretrain import engine, loop, state, train
from workflow_scripts.errors import BadInput


def full_recipe(**over):
    r = train.resolve_recipe(json.dumps({"model": {"hidden_size": 64, "num_layers": 2, "num_heads": 2},
                                            "total_training_time": 0.5, "batch_size": 64,
                                            "implementation": {"micro_batch_size": 8}}))
    for key, value in over.items():
        r[key] = {**r[key], **value} if isinstance(value, dict) else value
    return r


def test_resolve_recipe_fills_schema_defaults_and_rejects_typos():
    r = full_recipe()
    assert r["optimizer"] == {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.98],
                              "eps": 1e-6, "gradient_clipping": 1.0, "kwargs": {}}
    assert r["schedule"] == {"name": "linear", "by": "time", "warmup_proportion": 0.06, "kwargs": {}}
    assert r["implementation"]["precision"] == "fp32" and r["max_steps"] is None
    assert r["implementation"]["compile"] is False and r["implementation"]["tensorboard"] is False
    assert r["model"]["type"] == "bert" and r["model"]["embedding_size"] is None
    assert r["model"]["layer_norm"] == "pre" and r["model"]["intermediate_size"] == 3072
    assert r["early_exit_time_marker"] is None and r["early_stopping"] == {
        "max_valid_loss": None, "after_minutes": 720, "nonfinite_loss": True, "nonfinite_loss_steps": 10,
        "loss_scale_stuck_steps": 100}
    with pytest.raises(BadInput, match="recipe key optimizer: unknown key 'lr_max'"):
        train.resolve_recipe(json.dumps({"model": {}, "total_training_time": 1, "optimizer": {"lr_max": 1}}))
    with pytest.raises(BadInput, match=r"recipe key model\.layer_norm: 'middle' is not one of"):
        train.resolve_recipe(json.dumps({"total_training_time": 1, "model": {"layer_norm": "middle"}}))
    with pytest.raises(BadInput, match="--recipe is not valid JSON"):
        train.resolve_recipe("{model: 1}")
    # A user's schedule by import path passes the schema; a bare unknown name does not.
    train.resolve_recipe(json.dumps({"model": {}, "total_training_time": 1,
                                        "schedule": {"name": "mypkg.lr:cosine"}}))
    with pytest.raises(BadInput, match=r"recipe key schedule\.name"):
        train.resolve_recipe(json.dumps({"model": {}, "total_training_time": 1, "schedule": {"name": "cosin"}}))


@pytest.mark.parametrize("recipe, message", [
    ({"model": {"type": "roberta", "embedding_size": 64}},
     "recipe key model.embedding_size: applies to model.type albert only (this run's type is roberta)"),
    ({"model": {"type": "albert", "relative_attention": False}},
     "recipe key model.relative_attention: applies to model.type deberta-v2 only"),
    ({"model": {"type": "deberta-v2"}, "implementation": {"compile": True}},
     "recipe key implementation.compile: applies to model.type bert only"),
    ({"model": {"hidden_size": 100, "num_heads": 3}}, "recipe key model.hidden_size: 100 is not a multiple"),
    ({"model": {}, "schedule": {"by": "step"}}, "recipe key schedule.by: 'step' needs max_steps"),
    ({"model": {}, "schedule": {"name": "cosine", "kwargs": {"t0": 1}}},
     "recipe key schedule.kwargs: 't0' not a parameter of the cosine curve (allowed: t_0, t_mul, min_lr_ratio)"),
    ({"model": {}, "schedule": {"name": "step", "kwargs": {"decay_rate": 0.5}}},
     "recipe key schedule.kwargs.decay_rate=0.5 must be >= 1"),
    ({"model": {}, "optimizer": {"name": "lamb"}}, "recipe key optimizer.name"),
])
def test_cross_key_problems_stop_in_one_line(recipe, message):
    with pytest.raises(BadInput) as stop:
        train.resolve_recipe(json.dumps({"total_training_time": 1, **recipe}))
    assert str(stop.value).startswith(message) and "\n" not in str(stop.value)


def test_deepspeed_config_is_derived_from_the_recipe():
    r = full_recipe(implementation={"precision": "fp16", "zero_stage": 2}, optimizer={"gradient_clipping": 0.5})
    cfg = engine.ds_config(r, world=4)
    assert cfg["train_batch_size"] == 64 and cfg["train_micro_batch_size_per_gpu"] == 8
    assert cfg["gradient_accumulation_steps"] == 2                # 64 = 8 x 2 x 4 processes
    assert cfg["fp16"]["enabled"] and cfg["fp16"]["loss_scale"] == 0  # dynamic loss scaling
    assert cfg["zero_optimization"] == {"stage": 2} and cfg["gradient_clipping"] == 0.5
    assert "bf16" not in cfg
    assert engine.ds_config(full_recipe(implementation={"precision": "bf16"}), 1)["bf16"] == {"enabled": True}
    assert "fp16" not in engine.ds_config(full_recipe(), 1) and engine.ds_config(full_recipe(), 1)[
        "gradient_accumulation_steps"] == 8
    with pytest.raises(BadInput, match=r"batch_size=64 is not a multiple of .*size \(8\) x processes \(3\)"):
        engine.ds_config(full_recipe(), world=3)


@pytest.mark.parametrize("user", [{"communication_data_type": "fp16"}, {"data_types": {"grad_accum_dtype": "bf16"}},
                                  {"prescale_gradients": True}])
def test_deepspeed_keys_that_change_the_numbers_are_refused(user):
    """The block is placement (an edit keeps the state), so a key that changes what is computed stops it."""
    with pytest.raises(BadInput, match=r"implementation\.deepspeed\.\w+: it changes the training's numbers"):
        engine.ds_config(full_recipe(implementation={"deepspeed": user}), 1)


def test_deepspeed_passthrough_is_deep_merged_into_ours():
    offload = {"device": "cpu", "pin_memory": True}
    user = {"zero_optimization": {"offload_optimizer": offload}, "steps_per_print": 5,
            "flops_profiler": {"enabled": True, "profile_step": 3}}
    r = full_recipe(implementation={"zero_stage": 2, "deepspeed": user})
    cfg = engine.ds_config(r, world=1)
    # Nested sections merge key by key (our stage stays), plain values replace ours, new sections join.
    assert cfg["zero_optimization"] == {"stage": 2, "offload_optimizer": offload}
    assert cfg["steps_per_print"] == 5 and cfg["flops_profiler"] == {"enabled": True, "profile_step": 3}
    assert cfg["train_batch_size"] == 64 and cfg["wall_clock_breakdown"] is False
    assert user == {"zero_optimization": {"offload_optimizer": offload}, "steps_per_print": 5,
                    "flops_profiler": {"enabled": True, "profile_step": 3}}   # the recipe is left as it was
    assert engine.ds_config(full_recipe(implementation={"zero_stage": 2}), 1)["zero_optimization"] == {"stage": 2}


@pytest.mark.parametrize("user, line", [
    ({"train_batch_size": 128}, "implementation.deepspeed.train_batch_size: the workflow sets this from batch_size;"),
    ({"zero_optimization": {"stage": 3, "overlap_comm": True}},
     "implementation.deepspeed.zero_optimization.stage: the workflow sets this from implementation.zero_stage;"),
    ({"fp16": {"initial_scale_power": 12}},
     "implementation.deepspeed.fp16: the workflow sets this from implementation.precision;"),
    ({"optimizer": {"type": "Lamb"}}, "implementation.deepspeed.optimizer: the workflow sets this from optimizer;"),
    ({"scheduler": {"type": "WarmupLR"}}, "implementation.deepspeed.scheduler: the workflow sets this from schedule;"),
])
def test_deepspeed_keys_we_set_are_refused_in_one_line(user, line):
    """At parse time (the recipe checks) and in the engine's config, with the recipe key to set instead."""
    with pytest.raises(BadInput) as stop:
        train.resolve_recipe(json.dumps({"model": {}, "total_training_time": 1,
                                         "implementation": {"deepspeed": user}}))
    assert str(stop.value).startswith("recipe key " + line) and "\n" not in str(stop.value)
    assert "instead and drop it from implementation.deepspeed" in str(stop.value)
    with pytest.raises(BadInput, match="recipe key " + line.split(":")[0]):
        engine.ds_config(full_recipe(implementation={"deepspeed": user}), 1)


def test_deepspeed_reads_the_passthrough_keys_in_a_real_tiny_training(pretrain_shards, tmp_path):
    """DeepSpeed's own engine (CPU, 6 micro-batches, 3 optimizer steps) reads the merged keys: its
    print cadence and timers as set, and the flops profiler writes its report where we point it."""
    import subprocess

    from tests import probes

    profile = tmp_path / "flops.txt"
    # PYTHONPATH: the probe runs by path, and must import this checkout's package, not an installed one.
    env = {**{k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")},
           "PYTHONPATH": str(REPO)}
    proc = subprocess.run(probes.command("ds_passthrough", pretrain_shards["train"][0], profile), cwd=REPO,
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    read = json.loads(proc.stdout.strip().splitlines()[-1])
    # The throughput timer stays off (ds_config: it syncs the device twice per micro-batch).
    assert read == {"steps_per_print": 3, "wall_clock_breakdown": True, "flops_profiler": True,
                    "train_batch_size": 8, "global_steps": 3, "throughput_timer": False}
    report = profile.read_text()
    assert "DeepSpeed Flops Profiler" in report and "params per GPU" in report


def test_state_key_tracks_what_changes_training_only(tmp_path):
    shard = tmp_path / "s.h5"
    shard.write_bytes(b"x" * 10)
    files = [shard]
    base = state.state_key(full_recipe(), files, 1)
    assert base == state.state_key(full_recipe(), files, 1)
    # Bookkeeping and placement that leave the trajectory alone keep the state.
    for same in (dict(validation_interval_minutes=5), dict(log_interval_steps=1), dict(checkpoint_interval_minutes=1),
                 dict(validation_max_samples=10), dict(implementation={"micro_batch_size": 4}),
                 dict(implementation={"tensorboard": True}), dict(implementation={"compile": True}),
                 dict(early_exit_time_marker=0.1), dict(early_stopping={"max_valid_loss": 2.0}),
                 dict(validation_interval_minutes_end=1.0, validation_end_proportion=0.3),
                 dict(max_steps=5)):                   # on the time clock max_steps only decides where it stops
        assert state.state_key(full_recipe(**same), files, 1) == base, same
    # What is trained, on what, by how many processes: a fresh start.
    for other in (dict(optimizer={"lr": 2e-3}), dict(total_training_time=1.0), dict(seed=1),
                  dict(model={"layer_norm": "post"}), dict(implementation={"precision": "bf16"}),
                  dict(model={"type": "roberta"}), dict(schedule={"name": "cosine"}),
                  dict(optimizer={"kwargs": {"amsgrad": True}})):
        assert state.state_key(full_recipe(**other), files, 1) != base, other
    assert state.state_key(full_recipe(), files, 2) != base
    # On the step clock (schedule.by step) max_steps shapes the LR curve: a fresh start.
    by_step = dict(schedule={"by": "step"})
    assert (state.state_key(full_recipe(max_steps=5, **by_step), files, 1)
            != state.state_key(full_recipe(max_steps=6, **by_step), files, 1))
    shard.write_bytes(b"y" * 11)                                   # a rebuilt shard
    assert state.state_key(full_recipe(), files, 1) != base


def test_next_multiple_skips_intervals_a_long_step_jumped_over():
    assert loop.next_multiple(59.0, 30.0) == 60.0
    assert loop.next_multiple(60.0, 30.0) == 90.0
    assert loop.next_multiple(95.0, 30.0) == 120.0


def test_clock_counts_only_running_time():
    import time

    clock = loop.Clock(10.0)
    clock.start()
    time.sleep(0.05)
    clock.pause()
    paused_at = clock.elapsed()
    time.sleep(0.05)                                               # validation, checkpoint: not counted
    assert clock.elapsed() == paused_at and 10.04 < paused_at < 10.5


def test_fp16_on_cpu_is_refused_in_one_line():
    import subprocess

    from tests import probes

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run(probes.command("fp16_engine"), capture_output=True, text=True, env=env, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "implementation.precision=fp16 needs a GPU (this machine has none): use fp32 or bf16")
