"""implementation.deepspeed: a user's DeepSpeed config keys, deep-merged into the one we generate.

For what our recipe keys do not cover (ZeRO/CPU offload, the flops profiler, communication
settings, DeepSpeed's own timers and printing). Keys the workflow derives from the recipe are
refused, each naming the recipe key that sets it, so one setting never has two sources.
Light (no torch): recipe_checks runs the conflict check when the workflow is parsed.
"""
import copy

# DeepSpeed key path -> the recipe key that decides it. A key under one of these paths conflicts too.
OURS = {
    ("train_batch_size",): "batch_size",
    ("train_micro_batch_size_per_gpu",): "implementation.micro_batch_size",
    ("gradient_accumulation_steps",): "batch_size and implementation.micro_batch_size",
    ("gradient_clipping",): "optimizer.gradient_clipping",
    ("zero_optimization", "stage"): "implementation.zero_stage",
    ("fp16",): "implementation.precision",
    ("bf16",): "implementation.precision",
    ("bfloat16",): "implementation.precision",      # DeepSpeed's alias of bf16
    ("amp",): "implementation.precision",
    ("torch_autocast",): "implementation.precision",
    # We hand DeepSpeed a torch optimizer and set the LR ourselves on every step.
    ("optimizer",): "optimizer",
    ("scheduler",): "schedule",
}


# Keys that change the numbers a run computes: refused, since this block is a placement key (an edit
# reruns nothing and keeps the training state, which would then mix two different trainings).
NUMERICS = {("prescale_gradients",), ("gradient_predivide_factor",), ("data_types",), ("communication_data_type",),
            ("curriculum_learning",), ("data_efficiency",), ("sparse_gradients",)}


def _paths(tree: dict, prefix=()):
    """Every key path in a nested dict, parents before children."""
    for key, value in tree.items():
        path = prefix + (key,)
        yield path
        if isinstance(value, dict):
            yield from _paths(value, path)


def conflict(user: dict) -> str | None:
    """'implementation.deepspeed.KEY: why' for the first user key the workflow sets itself, or None."""
    for path in _paths(user):
        if path[:1] in NUMERICS:
            return (f"implementation.deepspeed.{path[0]}: it changes the training's numbers, and this block only "
                    "places and observes a run (an edit reruns nothing); drop it")
        for ours, recipe_key in OURS.items():
            if path[: len(ours)] == ours:
                dotted = ".".join(str(p) for p in path)
                return (f"implementation.deepspeed.{dotted}: the workflow sets this from {recipe_key}; "
                        f"set {recipe_key} instead and drop it from implementation.deepspeed")
    return None


def merged(ours: dict, user: dict) -> dict:
    """`ours` with `user` deep-merged in: nested dicts merge key by key, anything else replaces."""
    out = copy.deepcopy(ours)
    for key, value in user.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
