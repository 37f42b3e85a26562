"""Cross-key checks of a pretraining recipe (config runs.<run>) that the JSON schema cannot express.

Light (no torch, no user modules imported), so the config validation can run it when the
workflow is parsed; pretrain.py runs it again on the recipe it is handed.
"""
from workflow_scripts.pretrain import optimizers, schedules
from workflow_scripts.pretrain.models import factory


def problem(recipe: dict) -> str | None:
    """'key: what is wrong' for the first problem found, or None. Keys are relative to the recipe."""
    return (factory.check(recipe.get("model", {}), recipe.get("implementation", {}))
            or schedules.check(recipe.get("schedule", {}), recipe.get("max_steps"))
            or optimizers.check(recipe.get("optimizer", {})))
