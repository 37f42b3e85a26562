"""Pretrain a BERT-family model on masked-LM shards for a fixed training-time budget through DeepSpeed.

One process (`python -m workflow_scripts.pretrain.train ...`) or N ranks (`torchrun --nproc_per_node N -m ...`).
The loop reads straight through: schedule, accumulate, agree, step, log, validate, checkpoint.
The model (model.type: our BERT, RoBERTa, ALBERT, DeBERTa-v2) comes from factory.py,
the optimizer from optimizers.py, the LR curve from schedules.py, and when to validate and stop
from stopping.py (time budget, early_exit_time_marker, max_steps, early stopping).

Time: `elapsed` is TRAINING time only (forward, backward, step, and reading batches). Startup,
validation, checkpointing and export are excluded, so the LR curve and the stop depend on how much
training happened, not on how often we paused (Izsak et al. 2021). Before each optimizer step is
applied the ranks agree (a max over ranks) on elapsed, on whether a stop signal arrived and on
whether any loss was NaN/inf, so all take the same decisions at the same step.

Resume: the state folder holds one subfolder per state key: a hash of everything that changes
what is trained (the recipe minus bookkeeping, placement and where-to-stop keys, the shard and
tokenizer files, the world size). A run whose key has a checkpoint resumes from it with its step,
elapsed time (hence the LR schedule position), optimizer, RNG states and data position; any other
key starts fresh; other keys' folders are kept (a reverted edit resumes them) and named in
the log. SIGTERM (what SLURM sends before its time limit) or SIGINT: finish the current optimizer step, checkpoint, exit with 128+signal, so Snakemake
counts the job as failed (its outputs would be missing anyway) and its retry (or a rerun) resumes.
A SIGKILL loses what came after the last periodic checkpoint. Checkpoints come every
checkpoint_interval_minutes of training and at the end; only the newest is kept, and the final
one stays, so a rerun with the same recipe (its outputs deleted) only re-exports, or trains on if
its end no longer holds (a later early_exit_time_marker, a relaxed early_stopping). Delete the state folder to reclaim the
disk (a bert-base checkpoint with Adam moments is ~1.3 GB).

Log (JSON lines, written to the state folder while running, copied to --log-out at the end):
config (the resolved recipe + world_size + derived values) first; train every log_interval_steps
steps {step, elapsed_s, loss, lr, samples_per_s, tokens_per_s, epoch} (loss: mean of the micro-batch
losses since the last train line, over all ranks; tokens: non-padding tokens); valid {step,
elapsed_s, valid_loss} (masked-LM cross-entropy per masked token over the capped valid set; NSP
not included); resume {step, elapsed_s} where a run picked up a checkpoint; end {step, elapsed_s,
reason, detail} last, reason one of budget | early_exit | max_steps | nonfinite_loss | loss_scale |
valid_loss (see stopping.py). With implementation.tensorboard the same scalars go to TensorBoard.
"""
import argparse
import copy
import hashlib
import json
import math
import os
import re
import shutil
import signal
import time
from pathlib import Path
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
# Recipe keys that change neither what is trained nor the checkpoint layout: editing them
# must not throw a run's state away. micro_batch_size: the data position is kept in samples.
# Where a run stops early (early_exit_time_marker, early_stopping) is no part of the trajectory either:
# a later marker continues the same run.
NOT_IN_STATE_KEY = ("validation_interval_minutes", "validation_interval_minutes_begin",
                    "validation_interval_minutes_end", "validation_begin_proportion", "validation_end_proportion",
                    "validation_max_samples", "checkpoint_interval_minutes", "log_interval_steps",
                    "early_exit_time_marker", "early_stopping")
NOT_IN_STATE_KEY_IMPL = ("micro_batch_size", "gpus", "compile", "tensorboard")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", required=True, help="JSON of config runs.<run> (defaults filled in from the schema)")
    p.add_argument("--train", nargs="+", required=True, help="train shards (HDF5)")
    p.add_argument("--valid", nargs="+", required=True, help="validation shards (HDF5)")
    p.add_argument("--tokenizer", required=True, help="tokenizer folder (AutoTokenizer loads it)")
    p.add_argument("--state-dir", required=True, help="resumable state (not a workflow output)")
    p.add_argument("--model-out", required=True, help="Hugging Face model folder to write")
    p.add_argument("--log-out", required=True, help="JSON-lines training log to write")
    return p.parse_args(argv)


def resolve_recipe(text: str) -> dict:
    """Parse the recipe and fill schema defaults (the rule passes it filled; by hand it may be partial)."""
    import yaml
    from jsonschema import Draft202012Validator, validators

    try:
        recipe = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"--recipe is not valid JSON: {e}")
    full = yaml.safe_load(SCHEMA.read_text())
    base = validators.extend(Draft202012Validator, {"properties": _fill_defaults(Draft202012Validator)})
    error = next(iter(base({**full["$defs"]["run"], "$defs": full["$defs"]}).iter_errors(recipe)), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        raise BadInput(f"recipe key {where}: {error.message}")
    from workflow_scripts.pretrain import recipe_checks

    problem = recipe_checks.problem(recipe)
    if problem:
        raise BadInput(f"recipe key {problem}")
    return recipe


def _fill_defaults(validator_class):
    check = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from check(validator, props, instance, schema)
    return properties


def state_key(recipe: dict, files: list, world: int) -> str:
    """Hash of what determines the training trajectory (see the module docstring)."""
    keyed = {k: v for k, v in recipe.items() if k not in NOT_IN_STATE_KEY}
    keyed["implementation"] = {k: v for k, v in recipe["implementation"].items() if k not in NOT_IN_STATE_KEY_IMPL}
    # Files by path, size and modification time: a rebuilt shard (new samples) starts fresh.
    stamps = [(str(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    blob = json.dumps({"recipe": keyed, "files": stamps, "world": world}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Clock:
    """Training time, carried across resumes; paused around validation, checkpoints and export."""

    def __init__(self, elapsed: float):
        self.base, self.since = elapsed, None

    def start(self):
        self.since = time.perf_counter()

    def pause(self):
        if self.since is not None:
            self.base += time.perf_counter() - self.since
            self.since = None

    def elapsed(self) -> float:
        return self.base + (time.perf_counter() - self.since if self.since is not None else 0.0)


class RunLog:
    """JSON lines on rank 0 (the other ranks' calls do nothing); human lines to stdout."""

    def __init__(self, path: Path, active: bool):
        self.path, self.active = path, active

    def start(self, offset: int | None):
        """Fresh (offset None): empty the file. Resume: cut what a killed attempt wrote after its checkpoint."""
        if not self.active:
            return
        if offset is None or not self.path.exists():
            self.path.write_text("")
        else:
            with open(self.path, "r+b") as f:
                f.truncate(offset)

    def offset(self) -> int:
        return self.path.stat().st_size if self.active else 0

    def event(self, event: str, **fields):
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps({"event": event, **fields}) + "\n")

    def say(self, line: str):
        if self.active:
            print(line, flush=True)


def next_multiple(elapsed: float, interval: float) -> float:
    """The next multiple of interval after elapsed (a step longer than the interval skips ahead)."""
    return (elapsed // interval + 1) * interval


class StopSignal:
    """SIGTERM/SIGINT set a flag checked after each optimizer step; a second one kills at once."""

    def __init__(self):
        self.signum = 0
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._handle)

    def _handle(self, signum, frame):
        if self.signum:
            raise SystemExit(128 + signum)
        self.signum = signum
        print(f"received {signal.Signals(signum).name}: checkpointing after this step", flush=True)


@one_line_errors
def main(argv=None):
    args = parse_args(argv)
    recipe = resolve_recipe(args.recipe)
    stop = StopSignal()
    t_start = time.perf_counter()

    from workflow_scripts import atomic
    from workflow_scripts.pretrain import batches, engine, schedules, stopping, tb_log
    from workflow_scripts.pretrain.models import factory, hf_export

    dist = engine.setup_distributed(want_gpu=recipe["implementation"]["gpus"] > 0)
    import torch

    from workflow_scripts.pretrain.models.bert import param_groups

    impl, plan = recipe["implementation"], stopping.Budget.from_recipe(recipe)
    micro = impl["micro_batch_size"]
    accumulation = engine.accumulation_steps(recipe["batch_size"], micro, dist.world)

    # ---- data and model ----
    if not Path(args.tokenizer).is_dir():
        raise BadInput(f"--tokenizer {args.tokenizer}: no such folder")
    tok = hf_export.tokenizer_special_ids(args.tokenizer)
    stream = batches.TrainStream(args.train, dist.rank, dist.world, micro, accumulation, recipe["seed"])
    seq_len = stream.layout["seq_len"]
    valid = batches.ValidSet(args.valid, dist.rank, dist.world, micro, recipe["validation_max_samples"], seq_len)
    if seq_len > recipe["model"]["max_position_embeddings"]:
        raise BadInput(f"shards hold sequences of {seq_len} tokens but model.max_position_embeddings is "
                         f"{recipe['model']['max_position_embeddings']}")
    torch.manual_seed(recipe["seed"])              # the same initial weights on every rank
    built = factory.build(recipe["model"], impl, tok, stream.layout["nsp"])
    model = built.model
    n_params = sum(p.numel() for p in model.parameters())   # before ZeRO-3 partitions them away
    eng = engine.Engine(model, param_groups(model, recipe["optimizer"]["weight_decay"]), recipe, dist)
    torch.manual_seed(recipe["seed"] * 1000 + dist.rank)   # dropout masks differ across ranks

    # ---- state: resume or start fresh ----
    tok_files = sorted(p for p in Path(args.tokenizer).iterdir() if p.is_file())
    key = state_key(recipe, list(args.train) + list(args.valid) + tok_files, dist.world)
    state_root = Path(args.state_dir)
    run_dir = state_root / key
    ckpt_dir = run_dir / "checkpoints"
    if dist.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        # Other keys' states are kept, not deleted: reverting an edit (or restoring shards) then
        # resumes or re-exports instead of spending the GPU-hours again. They cost disk only.
        for old in state_root.iterdir():
            if old.is_dir() and old.name != key and re.fullmatch(r"[0-9a-f]{16}", old.name):
                size = sum(f.stat().st_size for f in old.rglob("*") if f.is_file()) / 2**30
                print(f"keeping the state of another recipe, data or world size: {old} ({size:.2f} GiB); "
                      "delete it to reclaim the space", flush=True)
    eng.barrier()
    log = RunLog(run_dir / "log.jsonl", dist.rank == 0)
    latest = run_dir / "latest.json"
    if latest.exists():
        pos = json.loads(latest.read_text())
        eng.load(str(ckpt_dir), pos["tag"])
        log.start(pos["log_offset"])
        log.event("resume", step=pos["step"], elapsed_s=pos["elapsed_s"])
        log.say(f"resumed {run_dir} at step {pos['step']}, {pos['elapsed_s']:.1f}s of {plan.budget_s:.0f}s trained")
        if pos["reason"] and not plan.still_finished(pos["reason"], pos["elapsed_s"], pos["step"], pos["stuck"],
                                                     pos["last_valid_loss"]):
            log.say(f"the run had ended ({pos['reason']}: {pos['detail']}), which no longer holds: training on")
            pos["reason"] = pos["detail"] = None
    else:
        pos = {"step": 0, "elapsed_s": 0.0, "epoch": 0, "epoch_samples": 0, "reason": None, "detail": None,
               "last_valid_s": 0.0, "last_valid_loss": None, "stuck": 0,
               "next_ckpt_s": recipe["checkpoint_interval_minutes"] * 60.0}
        log.start(None)
        log.event("config", **recipe, world_size=dist.world, gradient_accumulation_steps=accumulation,
                  model_config=built.description, parameters=n_params, seq_len=seq_len,
                  train_samples=sum(i["rows"] for i in stream.infos), steps_per_epoch=stream.steps_per_epoch,
                  valid_samples_per_rank=valid.samples, budget_s=plan.budget_s, state_key=key, deepspeed=eng.config)
    log.say(f"world {dist.world} on {dist.device} | {n_params / 1e6:.2f}M parameters | {'; '.join(built.notes)} | "
            f"batch {recipe['batch_size']} = {micro} x {accumulation} accumulation x {dist.world} | "
            f"{stream.steps_per_epoch} steps/epoch | budget {plan.budget_s:.0f}s | "
            f"startup {time.perf_counter() - t_start:.1f}s")

    schedule = schedules.Schedule(recipe["schedule"], recipe["optimizer"]["lr"], plan.budget_s, recipe["max_steps"])
    tb = tb_log.TensorBoard(run_dir / "tensorboard", impl["tensorboard"] and dist.rank == 0, pos["step"], log.say)
    step, epoch, epoch_samples, stuck = pos["step"], pos["epoch"], pos["epoch_samples"], pos["stuck"]
    last_valid, last_valid_loss, next_ckpt = pos["last_valid_s"], pos["last_valid_loss"], pos["next_ckpt_s"]
    per_rank_step = micro * accumulation     # samples each rank reads per optimizer step

    def position(reason=None, detail=None):
        """Where training stands; `reason` is set once it has ended (a rerun then only exports)."""
        return {"step": step, "elapsed_s": elapsed, "epoch": epoch, "epoch_samples": epoch_samples,
                "last_valid_s": last_valid, "last_valid_loss": last_valid_loss, "next_ckpt_s": next_ckpt,
                "stuck": stuck, "reason": reason, "detail": detail}

    def checkpoint(reason=None, detail=None):
        # Never overwrite the checkpoint latest.json points to (a kill mid-save would ruin both).
        tag = f"step{step}" if not (ckpt_dir / f"step{step}").exists() else f"step{step}.{time.time_ns()}"
        eng.save(str(ckpt_dir), tag, position(reason, detail))   # every rank writes its part, then a barrier
        if dist.rank == 0:
            # The pointer is replaced only once the whole checkpoint is on disk: a kill mid-save
            # leaves the previous one in charge. Then older checkpoints go.
            atomic.write_json(latest, {**position(reason, detail), "tag": tag, "log_offset": log.offset()})
            for old in ckpt_dir.iterdir():
                if old.is_dir() and old.name != tag:
                    shutil.rmtree(old, ignore_errors=True)
        eng.barrier()

    def validate() -> float | None:
        """Masked-LM loss per masked token over the valid set, the same on every rank (None: no tokens)."""
        mlm_sum, count = 0.0, 0
        for batch in valid.batches:
            s, n, _ = eng.eval_batch(batch)
            mlm_sum, count = mlm_sum + s, count + n
        mlm_sum, count = eng.all_reduce([mlm_sum, count])
        if not count:   # e.g. one-document text parts leave empty valid shards: nothing to report
            log.say(f"step {step} | no validation: the valid shards hold no masked tokens")
            return None
        log.event("valid", step=step, elapsed_s=round(elapsed, 3), valid_loss=mlm_sum / count)
        tb.scalars("valid", step, loss=mlm_sum / count)
        log.say(f"step {step} | valid loss {mlm_sum / count:.4f}")
        return mlm_sum / count

    # ---- the loop ----
    elapsed, reason, detail = pos["elapsed_s"], pos["reason"], pos["detail"]
    validated_at = None                       # the step of the last validation in this process
    clock = Clock(elapsed)
    window = {"loss": 0.0, "micro": 0, "tokens": 0, "samples": 0, "since": elapsed}
    if reason is None:
        reason, detail = plan.stop_after_step(elapsed, step, stuck) or (None, None)   # killed just after its last step
    micro_in_step, nonfinite = 0, False
    clock.start()
    while reason is None:
        for batch in stream.epoch(epoch, epoch_samples // micro):
            if micro_in_step == 0:
                lr = schedule.lr(elapsed, step)
                eng.set_lr(lr)
            loss = float(eng.forward_backward(batch))
            nonfinite = nonfinite or not math.isfinite(loss)
            window["loss"] += loss
            window["micro"] += 1
            window["tokens"] += int(batch["attention_mask"].sum())
            window["samples"] += len(batch["input_ids"])
            micro_in_step += 1
            if micro_in_step < accumulation:
                eng.step()                    # DeepSpeed only counts the micro-step here
                continue
            # The last micro-batch of a step: all ranks agree on time, signals and a non-finite
            # loss before the optimizer step is applied, so a NaN never reaches the weights.
            micro_in_step = 0
            eng.synchronize()
            elapsed, signum, bad = eng.all_reduce([clock.elapsed(), float(stop.signum), float(nonfinite)], op="max")
            nonfinite = False
            end = plan.stop_before_step(bool(bad))
            if end:
                reason, detail = end
                break
            eng.step()
            step += 1
            epoch_samples += per_rank_step
            stuck = stuck + 1 if eng.loss_scale_at_minimum() else 0
            if step % recipe["log_interval_steps"] == 0:
                loss_sum, micros, tokens, samples = eng.all_reduce(
                    [window["loss"], window["micro"], window["tokens"], window["samples"]])
                dt = max(elapsed - window["since"], 1e-9)
                log.event("train", step=step, elapsed_s=round(elapsed, 3), loss=loss_sum / micros, lr=lr,
                          samples_per_s=samples / dt, tokens_per_s=tokens / dt, epoch=epoch)
                tb.scalars("train", step, loss=loss_sum / micros, lr=lr, samples_per_s=samples / dt,
                           tokens_per_s=tokens / dt)
                log.say(f"step {step} | {elapsed:.0f}/{plan.budget_s:.0f}s | loss {loss_sum / micros:.4f} | "
                        f"lr {lr:.2e} | {samples / dt:.1f} samples/s")
                window = {"loss": 0.0, "micro": 0, "tokens": 0, "samples": 0, "since": elapsed}
            end = plan.stop_after_step(elapsed, step, stuck)
            if end:
                reason, detail = end
                break
            if signum:
                reason = "signal"
                break
            valid_due, ckpt_due = plan.validation_due(elapsed, step, last_valid), elapsed >= next_ckpt
            if valid_due or ckpt_due:
                clock.pause()
                if valid_due:
                    valid_loss, last_valid, validated_at = validate(), elapsed, step
                    last_valid_loss = valid_loss if valid_loss is not None else last_valid_loss
                    end = plan.stop_after_validation(valid_loss, elapsed) if valid_loss is not None else None
                    if end:
                        reason, detail = end
                        break
                if ckpt_due:
                    next_ckpt = next_multiple(elapsed, recipe["checkpoint_interval_minutes"] * 60.0)
                    checkpoint()
                    log.say(f"step {step} | checkpoint saved")
                clock.start()
        else:
            epoch, epoch_samples = epoch + 1, 0
            log.say(f"epoch {epoch} begins (each rank reads {stream.micro_per_epoch * micro} of its "
                    f"{stream.share} samples per epoch)")
    clock.pause()

    if reason == "signal":
        checkpoint()
        name = signal.Signals(int(signum)).name
        log.say(f"stopped by {name} at step {step} after {elapsed:.1f}s of training; checkpoint saved, "
                f"a rerun resumes")
        raise SystemExit(128 + int(signum))

    if not pos["reason"]:                      # it ended in this process (not a re-export of an ended run)
        if validated_at != step and reason != "nonfinite_loss":   # (a NaN model's valid loss says nothing)
            validate()
        checkpoint(reason, detail)
    log.event("end", step=step, elapsed_s=round(elapsed, 3), reason=reason, detail=detail)
    log.say(f"done ({reason}: {detail}): {step} steps in {elapsed:.1f}s of training "
            f"({step / max(elapsed, 1e-9):.2f} steps/s)")
    tb.close()

    state = eng.full_state_dict()                  # collective under ZeRO-3
    if dist.rank == 0:
        built.export(state, args.tokenizer, args.model_out)
        with atomic.replacing(args.log_out) as tmp:
            shutil.copyfile(log.path, tmp)
        print(f"wrote {args.model_out} and {args.log_out}", flush=True)
    eng.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
