"""What an edit of each config key changes, read from the schema's `x-effect` annotations.

Each key's effect is declared once in config/schema.yaml, on the key or on a parent all its
children share (nothing below a declared key declares again). The vocabulary:

  results     changes what its rule produces: that rule and everything downstream rerun. In a
              run recipe it is also part of the pretraining state key (a fresh training state).
  plan        decides which jobs exist and what they read (finetune tasks, grid, seeds, STILTs):
              the DAG itself changes, through wildcards and inputs; no job's params hold it.
  stop        where a pretraining run stops, not its trajectory: pretraining reruns and resumes
              the same state (a later early_exit_time_marker continues the run).
  state       the checkpoint layout only (ZeRO stage): a fresh training state, nothing reruns.
  placement   speed, placement or logging only: nothing reruns, not in the state key.
  monitoring  the validation cadence and size: placement, but stop in a run whose
              early_stopping.max_valid_loss is set (a validation then decides where it stops).
              (A NaN validation loss also stops a run; a run that diverges shows it in its
              training loss a step later, so that alone is not worth a rerun.)
  step_clock  max_steps: stop, but results where schedule.by is step (the LR curve and the
              validation stages then run on steps / max_steps).
  time_budget total_training_time: results, but stop where schedule.by is step (it is then only
              a time cap on a step schedule: a larger cap continues the same state).
  selection   how a task's trials are ranked (finetune.select_by): only the selection jobs
              rerun (their params hold it); no trial is handed it, so none reruns.

Pure Python + yaml: the rules import it while the workflow is parsed.
"""
import functools
from pathlib import Path

from workflow_scripts.errors import BadInput

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
EFFECTS = ("results", "plan", "stop", "state", "placement", "monitoring", "step_clock", "time_budget",
           "selection")


@functools.lru_cache(maxsize=None)
def schema(path: Path = SCHEMA) -> dict:
    import yaml

    return yaml.safe_load(Path(path).read_text())


def resolve_ref(node: dict, root: dict) -> dict:
    """The node a local `$ref` ("#/$defs/run") points to, else the node itself."""
    ref = node.get("$ref")
    if ref is None:
        return node
    for part in ref.lstrip("#/").split("/"):
        root = root[part]
    return root


def effect_in_run(effect: str, recipe: dict) -> str:
    """A conditional effect (monitoring, step_clock, time_budget) resolved for one run recipe; others as they are."""
    if effect == "monitoring":
        return "stop" if (recipe.get("early_stopping") or {}).get("max_valid_loss") is not None else "placement"
    if effect == "step_clock":
        return "results" if (recipe.get("schedule") or {}).get("by") == "step" else "stop"
    if effect == "time_budget":
        return "stop" if (recipe.get("schedule") or {}).get("by") == "step" else "results"
    return effect


def _keep(value: dict, node: dict, where: str, wanted: set, recipe: dict | None) -> dict:
    """The keys of `value` (validated config, defaults filled) whose effect is in `wanted`; a key
    without an effect of its own is a section of mixed keys, kept with its own wanted keys."""
    root = schema()
    node = resolve_ref(node, root)
    kept = {}
    for key, item in value.items():
        sub = node.get("properties", {}).get(key)
        if sub is None:
            raise BadInput(f"config key {where}{key}: not in config/schema.yaml; validate the config first")
        sub = resolve_ref(sub, root)
        effect = sub.get("x-effect")
        if effect is None:
            kept[key] = _keep(item, sub, f"{where}{key}.", wanted, recipe)
        elif (effect_in_run(effect, recipe) if recipe is not None else effect) in wanted:
            kept[key] = item
    return kept


def _run_node() -> dict:
    return schema()["$defs"]["run"]


def state_view(recipe: dict) -> dict:
    """What the pretraining state key hashes: the results and state keys of a run recipe."""
    return _keep(recipe, _run_node(), "runs.RUN.", {"results", "state"}, recipe)


def tracked_recipe(recipe: dict) -> dict:
    """Pretraining's rerun trigger: the results and stop keys of a run recipe (the validation
    cadence too, where early_stopping.max_valid_loss is set)."""
    return _keep(recipe, _run_node(), "runs.RUN.", {"results", "stop"}, recipe)


def _section(name: str) -> dict:
    return schema()["properties"][name]


def finetune_settings(finetune: dict) -> dict:
    """What every fine-tuning trial is handed: the finetune section less its plan and selection keys."""
    return _keep(finetune, _section("finetune"), "finetune.", set(EFFECTS) - {"plan", "selection"}, None)


def finetune_tracked(finetune: dict) -> dict:
    """The part of finetune_settings that reruns every trial when edited (its results keys)."""
    return _keep(finetune, _section("finetune"), "finetune.", {"results"}, None)


def glue_tracked(glue: dict) -> dict:
    """config `glue:` as the trials get it: its results keys (where the cache sits is placement)."""
    return _keep(glue, _section("glue"), "glue.", {"results"}, None)


def undeclared(root: dict | None = None) -> list[str]:
    """Schema properties with no effect of their own or inherited, an unknown effect value, or an
    effect declared below a declared one (so that each key's effect is said once): one line each."""
    root = root or schema()
    problems = []

    def walk(node, where, inherited):
        node = resolve_ref(node, root)
        effect = node.get("x-effect")
        if effect is not None:
            if effect not in EFFECTS:
                problems.append(f"{where}: unknown x-effect {effect!r} (one of {', '.join(EFFECTS)})")
            if inherited is not None:
                problems.append(f"{where}: x-effect {effect!r} below one declared on a parent ({inherited!r})")
        current = effect or inherited
        for key, sub in node.get("properties", {}).items():
            sub_effect = resolve_ref(sub, root).get("x-effect")
            if sub_effect is None and current is None and not _has_properties(sub, root):
                problems.append(f"{where}.{key}: no x-effect of its own or from a parent")
            walk(sub, f"{where}.{key}", current)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{where}.*", current)

    walk(root, "(top)", None)
    return problems


def _has_properties(node: dict, root: dict) -> bool:
    """A section whose keys declare their own effects (it has named or mapped children)."""
    node = resolve_ref(node, root)
    return bool(node.get("properties")) or isinstance(node.get("additionalProperties"), dict)
