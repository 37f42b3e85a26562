"""Cross-key checks of a pretraining recipe (config runs.<run>) that the JSON schema cannot express.

Light (no torch, no user modules imported), so the config validation can run it when the
workflow is parsed; config_checks.validate_recipe runs it again for train.py on the recipe it is handed.
"""
from workflow_scripts.pretrain import ds_passthrough, optimizers, schedules
from workflow_scripts.pretrain.models import specs


def problem(recipe: dict) -> str | None:
    """'key: what is wrong' for the first problem found, or None. Keys are relative to the recipe."""
    return (specs.check(recipe.get("model", {}), recipe.get("implementation", {}))
            or schedules.check(recipe.get("schedule", {}), recipe.get("max_steps"))
            or _budget(recipe)
            or optimizers.check(recipe.get("optimizer", {}))
            or ds_passthrough.conflict(recipe.get("implementation", {}).get("deepspeed") or {}))


def _budget(recipe: dict) -> str | None:
    """A run needs a clock that ends it: total_training_time, or a step schedule over max_steps
    (ExtremeBERT's recipes count steps only; a fake time budget would also inflate the SLURM request)."""
    if recipe.get("total_training_time") is not None:
        return None
    if recipe.get("schedule", {}).get("by", "time") == "step" and recipe.get("max_steps"):
        return None
    return ("total_training_time: missing (hours of training); only a run with schedule.by: step and max_steps "
            "set may leave it out")
