"""Cross-key checks the schema cannot express; run when the workflow is parsed.

Each failure is one line naming the key, the bad value and what would be allowed.
"""


class ConfigError(ValueError):
    pass


def check(config: dict) -> None:
    for run, recipe in config["runs"].items():
        impl = recipe["implementation"]
        processes = max(impl["gpus"], 1)
        per_step = impl["micro_batch_size"] * processes
        if recipe["batch_size"] % per_step:
            raise ConfigError(
                f"runs.{run}.batch_size={recipe['batch_size']} is not a multiple of "
                f"implementation.micro_batch_size ({impl['micro_batch_size']}) x processes ({processes}) = {per_step}")
    grid = config["finetune"]["grid"]
    if "default" not in grid:
        missing = [t for t in config["finetune"]["tasks"] if t not in grid]
        if missing:
            raise ConfigError(f"finetune.grid has no `default` entry and no entry for {', '.join(missing)}")
    for task, entry in grid.items():
        for key in ("lr", "batch_size", "epochs"):
            if key not in entry:
                raise ConfigError(f"finetune.grid.{task} lacks `{key}` (a list of values to search)")
    if config["glue"]["source"] == "dir" and not config["glue"].get("path"):
        raise ConfigError("glue.path is required when glue.source is dir")
