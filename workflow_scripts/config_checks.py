"""Config validation: the JSON schema (filling in defaults) plus cross-key checks it cannot express.

Each failure is one line naming the key, the bad value and what would be allowed, raised when
the workflow is parsed, before any job is planned.
"""
import copy
from pathlib import Path
from workflow_scripts.errors import BadInput


class ConfigError(BadInput):
    pass


def _validator_filling_defaults(schema):
    """A Draft 2020-12 validator that writes each property's `default` into the instance."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])  # editing the config never edits the schema
        yield from check_properties(validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": properties_with_defaults})
    return cls(schema)


def _describe(error) -> str:
    """One line in the user's terms: where in the config, what is wrong, what is allowed."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        keys = ", ".join(repr(k) for k in extra)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"config key {where}: unknown key {keys}{hint}"
    if error.validator == "propertyNames":
        return f"config key {where}: {error.message}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        return f"config key {where}: {error.schema.get('description', error.message)}"
    return f"config key {where}: {error.message}"


def validate(config: dict, schema_path) -> None:
    """Validate `config` in place against the YAML schema, filling defaults; raise ConfigError."""
    import yaml
    from jsonschema.exceptions import best_match

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _validator_filling_defaults(schema)
    error = best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    check(config)


def _check_packing(samples: dict, run: str, recipe: dict) -> None:
    """Packed samples feed only the types that attend per document, and hold no sentence pairs."""
    from workflow_scripts.pretrain.models import specs  # light: no torch

    if samples.get("packing", "segments") != "documents":
        return
    if samples["nsp"]:
        raise ConfigError("config key samples.nsp: true cannot go with samples.packing: documents (packed rows hold "
                          "whole documents, no sentence pairs): set nsp false or packing segments")
    problem = specs.packing_problem(recipe["model"]["type"])
    if problem:
        raise ConfigError(f"config key runs.{run}.{problem} (samples.packing: documents)")


def check(config: dict) -> None:
    from workflow_scripts.data.sources import row_documents  # light: no datasets, no pyarrow
    from workflow_scripts.pretrain import recipe_checks  # light: no torch, no user modules

    for name, source in config["corpora"].items():
        try:
            row_documents.check_source(source["type"], source.get("documents"), f"config key corpora.{name}.")
        except BadInput as e:
            raise ConfigError(str(e)) from None
    for run, recipe in config["runs"].items():
        problem = recipe_checks.problem(recipe)
        if problem:
            raise ConfigError(f"config key runs.{run}.{problem}")
        _check_packing(config["samples"], run, recipe)
        positions = recipe["model"]["max_position_embeddings"]
        for key in ("samples", "finetune"):
            if config[key]["max_seq_length"] > positions:
                raise ConfigError(
                    f"config key {key}.max_seq_length: {config[key]['max_seq_length']} is longer than "
                    f"runs.{run}.model.max_position_embeddings ({positions})")
        impl = recipe["implementation"]
        processes = max(impl["gpus"], 1)
        per_step = impl["micro_batch_size"] * processes
        if recipe["batch_size"] % per_step:
            raise ConfigError(
                f"config key runs.{run}.batch_size: {recipe['batch_size']} is not a multiple of "
                f"implementation.micro_batch_size ({impl['micro_batch_size']}) x processes ({processes}) = {per_step}")
    finetune = config["finetune"]
    grid = finetune["grid"]
    if "default" not in grid:
        missing = [t for t in finetune["tasks"] if t not in grid]
        if missing:
            raise ConfigError(f"config key finetune.grid: no `default` entry and no entry for {', '.join(missing)}")
        # STILTs fine-tunes MNLI first, even where `tasks` leaves it out.
        stilts = [t for t in finetune["stilts"] if t in finetune["tasks"]]
        if stilts and "MNLI" not in grid:
            raise ConfigError(f"config key finetune.grid: no `default` entry and no entry for MNLI, which "
                              f"finetune.stilts ({', '.join(stilts)}) fine-tunes first")
    for task, entry in grid.items():
        for key in ("lr", "batch_size", "epochs"):
            if key not in entry:
                raise ConfigError(f"config key finetune.grid.{task}: lacks `{key}` (a list of values to search)")


def validate_recipe(recipe: dict, schema_path) -> None:
    """Validate one pretraining recipe (config runs.<run>) in place, filling defaults, with the same
    cross-key checks; raise ConfigError naming keys relative to the recipe ("recipe key optimizer: ...")."""
    import yaml
    from jsonschema.exceptions import best_match

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _validator_filling_defaults({**schema["$defs"]["run"], "$defs": schema["$defs"]})
    error = best_match(validator.iter_errors(recipe))
    if error is not None:
        raise ConfigError("recipe key " + _describe(error).removeprefix("config key "))
    from workflow_scripts.pretrain import recipe_checks  # light: no torch, no user modules

    problem = recipe_checks.problem(recipe)
    if problem:
        raise ConfigError(f"recipe key {problem}")
