"""Pretrain a BERT-family model on masked-LM shards for a fixed training-time budget through DeepSpeed.

One process (`python -m workflow_scripts.pretrain.train ...`) or N ranks (`torchrun --nproc_per_node N -m ...`).
main reads in five steps: parse (the recipe, defaults filled from the schema), build (data,
model, engine), resume (or start fresh), run the loop, export. Each part is handed its own
config group: the model (model.type: our BERT, RoBERTa, ALBERT, DeBERTa-v2) comes from
models/factory.py, the optimizer from optimizers.py, DeepSpeed from engine.py, the LR curve from
schedules.py, when to validate and stop from stopping.py (time budget, early_exit_time_marker,
max_steps, early stopping), the loop from loop.py (time, signals), the resumable state from
state.py.

Resume: a run whose state key has a checkpoint resumes from it with its step, elapsed time (hence
the LR schedule position), optimizer, RNG states and data position (state.py). A SIGKILL loses
what came after the last periodic checkpoint (every checkpoint_interval_minutes of training, or
every tenth of the budget where that is shorter: state.checkpoint_interval_s). The final
checkpoint stays, so a rerun with the same recipe (its outputs deleted) only re-exports, or trains
on if its end no longer holds (a later early_exit_time_marker, a relaxed early_stopping). Delete
the state folder to reclaim the disk (a bert-base checkpoint with Adam moments is ~1.3 GB).

Log (JSON lines, written to the state folder while running, copied to --log-out at the end):
config (the resolved recipe + world_size + derived values + the speed fields: device, peak_tflops,
peak_source, flops_per_sequence, flops_per_prediction, see flops.py) first; train every
log_interval_steps steps {step, elapsed_s, loss, lr, samples_per_s, tokens_per_s, tflops_per_s, mfu,
epoch} (loss: mean of the micro-batch losses since the last train line, over all ranks; tokens:
non-padding tokens; tflops_per_s: model TFLOP/s per device; mfu: over the device's peak, absent
where it is unknown); valid {step, elapsed_s, valid_loss} (masked-LM cross-entropy per masked
token over the capped valid set; NSP not included); resume {step, elapsed_s, speed fields} where a
run picked up a checkpoint; end {step, elapsed_s, reason, detail, devices, device_hours (training
time x devices), samples_seen, tokens_seen (samples x sequence length)} last, reason one of budget
| early_exit | max_steps | nonfinite_loss | loss_scale | valid_loss (see stopping.py). With implementation.tensorboard the same scalars go to TensorBoard,
and with config tracking to MLflow or W&B (tracking.py).
"""
import argparse
import json
import math
import shutil
import time
from pathlib import Path

from workflow_scripts.cli import one_line_errors
from workflow_scripts.errors import BadInput

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", required=True, help="JSON of config runs.<run> (defaults filled in from the schema)")
    p.add_argument("--train", nargs="+", required=True, help="train shards (HDF5)")
    p.add_argument("--valid", nargs="+", required=True, help="validation shards (HDF5)")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (AutoTokenizer loads it)")
    p.add_argument("--state-dir", required=True, help="resumable state (not a workflow output)")
    p.add_argument("--model-out", required=True, help="Hugging Face model folder to write")
    p.add_argument("--log-out", required=True, help="JSON-lines training log to write")
    p.add_argument("--card", help='JSON for the model card: {"run": NAME, "corpora": {NAME: {"type", "source", '
                                  '"shards": [k, ...]}}} (default: the run named by --model-out\'s folder, one '
                                  "corpus holding every shard)")
    p.add_argument("--tracking", help="JSON of config tracking (MLflow / W&B); absent: nothing is tracked")
    return p.parse_args(argv)


def card_spec(args) -> dict:
    """What the model card says about where the run's shards came from (the rule knows the corpora)."""
    from workflow_scripts.cli import json_object

    if args.card:
        return json_object(args.card, "--card")
    run = Path(args.model_out).resolve().parent.name
    return {"run": run, "corpora": {"samples": {"type": "shards", "source": str(Path(args.train[0]).parent),
                                                "shards": None}}}


def resolve_recipe(text: str) -> dict:
    """Parse the recipe and fill schema defaults (the rule passes it filled; by hand it may be partial)."""
    from workflow_scripts import config_checks

    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"--recipe is not valid JSON: {e}") from None
    config_checks.validate_recipe(recipe, SCHEMA)
    return recipe


def load_data(args, model: dict, dist, micro: int, accumulation: int, seed: int, valid_max: int):
    """This rank's train stream and valid set; the shards' sequences must fit the model's positions."""
    from workflow_scripts.pretrain import batches

    stream = batches.TrainStream(args.train, dist.rank, dist.world, micro, accumulation, seed)
    seq_len = stream.layout["seq_len"]
    if stream.layout["packed"]:
        from workflow_scripts.pretrain.models import specs

        problem = specs.packing_problem(model["type"])
        if problem:
            raise BadInput(f"train shard {stream.infos[0]['path']} is packed (samples.packing: documents) but {problem}")
    valid = batches.ValidSet(args.valid, dist.rank, dist.world, micro, valid_max, seq_len)
    if seq_len > model["max_position_embeddings"]:
        raise BadInput(f"shards hold sequences of {seq_len} tokens but model.max_position_embeddings is "
                       f"{model['max_position_embeddings']}")
    return stream, valid


def resume(folder, eng, plan, speed: dict):
    """The checkpointed state of this key (None: a fresh start); an ended run trains on when its end
    no longer holds under this recipe's where-to-stop keys."""
    state = folder.load(eng)
    if state is None:
        return None
    folder.log.event("resume", step=state.step, elapsed_s=state.elapsed_s, **speed)   # maybe another device
    folder.log.say(f"resumed {folder.dir} at step {state.step}, {state.elapsed_s:.1f}s of {plan.budget_s:.0f}s trained")
    if state.reason and not plan.still_finished(state.reason, state.elapsed_s, state.step, state.stuck,
                                                state.last_valid_loss):
        folder.log.say(f"the run had ended ({state.reason}: {state.detail}), which no longer holds: training on")
        state.reason = state.detail = None
    return state


@one_line_errors
def main(argv=None):
    args = parse_args(argv)
    recipe = resolve_recipe(args.recipe)
    from workflow_scripts import tracking
    from workflow_scripts.pretrain import engine, flops, loop, optimizers, schedules, state, stopping, tb_log
    from workflow_scripts.pretrain.models import factory, hf_export

    stop, t_start = loop.StopSignal(), time.perf_counter()
    impl, model_spec = recipe["implementation"], recipe["model"]
    dist = engine.setup_distributed(want_gpu=impl["gpus"] > 0)
    import torch

    # ---- build: data, model, engine ----
    if not Path(args.tokenizer).is_dir():
        raise BadInput(f"--tokenizer {args.tokenizer}: no such folder")
    micro = impl["micro_batch_size"]
    accumulation = engine.accumulation_steps(recipe["batch_size"], micro, dist.world)
    stream, valid = load_data(args, model_spec, dist, micro, accumulation, recipe["seed"],
                              recipe["validation_max_samples"])
    torch.manual_seed(recipe["seed"])              # the same initial weights on every rank
    special = hf_export.tokenizer_special_ids(args.tokenizer)
    built = factory.build(model_spec, impl, special, stream.layout["nsp"])
    valid.batches = [{**b, **built.host_indices(b)} for b in valid.batches]   # once: they are read every validation
    n_params = sum(p.numel() for p in built.model.parameters())   # before ZeRO-3 partitions them away
    groups = optimizers.param_groups(built.model, recipe["optimizer"]["weight_decay"])
    eng = engine.Engine(built.model, groups, recipe, dist)
    torch.manual_seed(recipe["seed"] * 1000 + dist.rank)   # dropout masks differ across ranks
    plan = stopping.Budget.from_recipe(recipe)
    cost = flops.pretraining_cost(flops.shape_of_spec(model_spec, special["vocab_size"]), stream.layout["seq_len"],
                                  stream.layout["predictions"], stream.layout["nsp"])
    peak_tflops, peak_source = flops.device_peak(dist.device, impl["precision"], impl.get("peak_tflops"))
    speed = dict(device=eng.device_name(), peak_tflops=peak_tflops, peak_source=peak_source,
                 flops_per_sequence=cost.per_sequence, flops_per_prediction=cost.per_prediction)

    # ---- resume, or start fresh ----
    tok_files = sorted(p for p in Path(args.tokenizer).iterdir() if p.is_file())
    key = state.state_key(recipe, list(args.train) + list(args.valid) + tok_files, dist.world)
    folder = state.StateFolder(args.state_dir, key, dist.rank)
    folder.create()
    eng.barrier()
    log = folder.log
    position = resume(folder, eng, plan, speed)
    if position is None:
        position = state.TrainState(next_ckpt_s=state.checkpoint_interval_s(recipe))
        log.event("config", **recipe, world_size=dist.world, gradient_accumulation_steps=accumulation,
                  model_config=built.description, parameters=n_params, seq_len=stream.layout["seq_len"],
                  train_samples=sum(i["rows"] for i in stream.infos), steps_per_epoch=stream.steps_per_epoch,
                  valid_samples_per_rank=valid.samples, budget_s=plan.budget_s if math.isfinite(plan.budget_s) else None, state_key=key, deepspeed=eng.config, **speed)
    log.say(f"world {dist.world} on {dist.device} | {n_params / 1e6:.2f}M parameters | {'; '.join(built.notes)} | "
            f"batch {recipe['batch_size']} = {micro} x {accumulation} accumulation x {dist.world} | "
            f"{stream.steps_per_epoch} steps/epoch | budget {plan.budget_s:.0f}s | "
            f"startup {time.perf_counter() - t_start:.1f}s")

    # ---- run ----
    schedule = schedules.Schedule(recipe["schedule"], recipe["optimizer"]["lr"], plan.budget_s, recipe["max_steps"])
    tracker = tracking.for_pretraining(args.tracking, card_spec(args)["run"], folder.dir, folder.tag is not None,
                                       dist.rank, {**recipe, "world_size": dist.world, "parameters": n_params})
    tb = tracking.Fanout(tb_log.TensorBoard(folder.dir / "tensorboard", impl["tensorboard"] and dist.rank == 0,
                                            position.step, log.say), tracker)
    run = loop.Run(eng, stream, valid, plan, schedule, folder, tb, micro, recipe["log_interval_steps"],
                   state.checkpoint_interval_s(recipe), cost, peak_tflops, built.host_indices)
    if position.reason is None:                    # else it had ended, and its end holds: export again
        loop.train(position, run, stop)
    samples_seen = position.step * recipe["batch_size"]
    device_hours = position.elapsed_s * dist.world / 3600
    log.event("end", step=position.step, elapsed_s=round(position.elapsed_s, 3), reason=position.reason,
              detail=position.detail, devices=dist.world, device_hours=round(device_hours, 6),
              samples_seen=samples_seen, tokens_seen=samples_seen * stream.layout["seq_len"])
    log.say(f"done ({position.reason}: {position.detail}): {position.step} steps in {position.elapsed_s:.1f}s of "
            f"training ({position.step / max(position.elapsed_s, 1e-9):.2f} steps/s, {device_hours:.4g} device-hours)")
    tb.close()
    export(eng, built, folder, args)
    tracker.finish(model_path=str(Path(args.model_out).resolve()), end_reason=position.reason)
    torch.distributed.destroy_process_group()


def export(eng, built, folder, args) -> None:
    """The trained weights as a Hugging Face folder and the log beside it, written by rank 0."""
    from workflow_scripts import atomic
    from workflow_scripts.report import model_card

    weights = eng.full_state_dict()                  # collective under ZeRO-3
    if eng.dist.rank == 0:
        spec = card_spec(args)
        facts = model_card.pretrain_facts(folder.log.path, args.train, args.valid, spec["run"], spec["corpora"])
        built.export(weights, args.tokenizer, args.model_out, lambda tmp: model_card.write(tmp, model_card.card(facts)))
        with atomic.replacing(args.log_out) as tmp:
            shutil.copyfile(folder.log.path, tmp)
        print(f"wrote {args.model_out} and {args.log_out}", flush=True)
    eng.barrier()


if __name__ == "__main__":
    main()
