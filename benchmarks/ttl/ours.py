"""Our side of time_to_loss: our pretrain CLI (workflow_scripts.pretrain.train, as the pretrain rule
runs it) on our samples stage's shards, with a recipe, under two benchmark-only hooks that change
no training decision:
- the loop's clock reads this process's CPU time instead of wall time (one thread: the time the
  one core spent), so total_training_time is a CPU budget the same as the peer's, however busy the
  shared machine is. The loop already counts training only (validation, checkpoints excluded).
- at each of the loop's validations (validation_interval_minutes, the clock paused) the weights
  are saved with their CPU time; after the run each is exported to a Hugging Face folder by the
  model's own exporter, for the one evaluation both sides get.

    python -m benchmarks.ttl.ours --recipe JSON --train ... --valid ... --out DIR
"""
import argparse
import json
import time
import types
from pathlib import Path

from benchmarks.ttl.data import TOKENIZER


def hook_loop(snapshots: Path) -> list:
    """Patch the loop's clock and validation; return the list the snapshots are recorded in."""
    import torch

    from workflow_scripts.pretrain import loop

    taken, validate = [], loop.validate
    loop.time = types.SimpleNamespace(perf_counter=time.process_time)

    def validate_and_save(run, state):
        loss = validate(run, state)
        path = snapshots / f"step_{state.step:07d}.pt"
        torch.save(run.eng.full_state_dict(), path)
        taken.append({"cpu_s": round(state.elapsed_s, 2), "step": state.step, "weights": str(path),
                      "own_valid_loss": loss})
        return loss

    loop.validate = validate_and_save
    return taken


def export_snapshots(recipe: dict, taken: list, out: Path) -> list:
    """Each saved state dict -> a Hugging Face folder, through the model family's exporter."""
    import torch

    from workflow_scripts.pretrain.models import factory, hf_export

    built = factory.build(recipe["model"], recipe["implementation"], hf_export.tokenizer_special_ids(str(TOKENIZER)),
                          nsp=False)
    for snap in taken:
        folder = out / Path(snap["weights"]).stem
        built.export(torch.load(snap.pop("weights")), str(TOKENIZER), str(folder))
        snap["model"] = str(folder)
    return taken


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", required=True, help="JSON of one run recipe (config runs.<run>)")
    p.add_argument("--train", nargs="+", required=True)
    p.add_argument("--valid", nargs="+", required=True)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    import torch

    from workflow_scripts.pretrain import train

    torch.set_num_threads(1)
    (args.out / "weights").mkdir(parents=True, exist_ok=True)
    taken = hook_loop(args.out / "weights")
    try:
        train.main(["--recipe", args.recipe, "--train", *args.train, "--valid", *args.valid, "--tokenizer",
                    str(TOKENIZER), "--state-dir", str(args.out / "state"), "--model-out", str(args.out / "model"),
                    "--log-out", str(args.out / "log.jsonl")])
    except SystemExit as e:          # one_line_errors exits on bad input; a clean end returns
        if e.code:
            raise
    recipe = train.resolve_recipe(args.recipe)
    (args.out / "snapshots.json").write_text(json.dumps(export_snapshots(recipe, taken, args.out), indent=1))


if __name__ == "__main__":
    main()
