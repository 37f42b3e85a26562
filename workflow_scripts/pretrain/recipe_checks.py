"""Cross-key checks of a pretraining recipe (config runs.<run>) that the JSON schema cannot express.

Light (no torch, no user modules imported), so the config validation can run it when the
workflow is parsed; config_checks.validate_recipe runs it again for train.py on the recipe it is handed.
"""
from workflow_scripts.pretrain import optimizers, schedules
from workflow_scripts.pretrain.models import specs


def problem(recipe: dict) -> str | None:
    """'key: what is wrong' for the first problem found, or None. Keys are relative to the recipe."""
    return (specs.check(recipe.get("model", {}), recipe.get("implementation", {}))
            or schedules.check(recipe.get("schedule", {}), recipe.get("max_steps"))
            or optimizers.check(recipe.get("optimizer", {})))
