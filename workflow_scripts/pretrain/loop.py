"""The training loop: lr, micro-steps, agree across ranks, step, log, stop?, validate/checkpoint.

Time: `elapsed_s` is TRAINING time only (forward, backward, step, and reading batches). Startup,
validation, checkpointing and export are excluded, so the LR curve and the stop depend on how much
training happened, not on how often we paused (Izsak et al. 2021). Before each optimizer step is
applied the ranks agree (a max over ranks) on elapsed time, on whether a stop signal arrived and
on whether any loss was NaN/inf, so all take the same decisions at the same step.

The loop reads the device once per optimizer step, not per micro-batch: losses and the
non-finite flag stay on the device (Window, and the flag read in the step's agreement all-reduce),
token counts come from the host-side batches (prefetch.py reads them ahead on a thread). The
models' forwards do not read it either: what they index by with data-dependent sizes (the masked
slots, modernbert's real tokens and documents) comes with each batch, computed on the host by the
model's host_indices (run.host_indices, on the prefetch thread; on the valid batches once, at load).

SIGTERM (what SLURM sends before its time limit) or SIGINT: finish the current optimizer step,
checkpoint, exit with 128 + signal, so Snakemake counts the job as failed (its outputs would be
missing anyway) and its retry (or a rerun) resumes. Checkpoints also come every
checkpoint_interval_minutes of training and at the end.
"""
import signal
import time
from dataclasses import dataclass
from typing import Any

from workflow_scripts.pretrain import flops
from workflow_scripts.pretrain.state import TrainState


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


def next_multiple(elapsed: float, interval: float) -> float:
    """The next multiple of interval after elapsed (a step longer than the interval skips ahead)."""
    return (elapsed // interval + 1) * interval


@dataclass
class Run:
    """What the loop drives, built by train.main."""
    eng: Any                 # engine.Engine: DeepSpeed, precision, distribution
    stream: Any              # batches.TrainStream: this rank's training micro-batches
    valid: Any               # batches.ValidSet: this rank's validation micro-batches
    plan: Any                # stopping.Budget: when to validate and stop
    schedule: Any            # schedules.Schedule: the LR at each step
    folder: Any              # state.StateFolder: checkpoints and the running log
    tb: Any                  # tb_log.TensorBoard
    micro: int               # implementation.micro_batch_size
    log_every: int           # log_interval_steps
    checkpoint_s: float      # checkpoint_interval_minutes, in seconds
    cost: Any = None         # flops.Cost of a micro-batch (None: no FLOPs in the log)
    peak_tflops: float | None = None   # one device's peak (flops.device_peak); None: no MFU
    host_indices: Any = None # factory.Built.host_indices (None: the forward computes them, on the device)


@dataclass
class Window:
    """This rank's sums over the micro-batches since the last train line. The loss sum stays on the
    device (float64, as the float sum it replaces) and is read at log time: a float() per micro-batch
    would wait for the device every time. The counts come from the host (prefetch.Item)."""
    since: float             # elapsed_s at the last train line
    loss: Any = 0.0          # a device tensor once a micro-batch is added
    micro: int = 0
    tokens: int = 0          # non-padding tokens
    samples: int = 0
    predictions: int = 0     # real masked positions
    documents_seen: int | None = None   # the stream's count as of the last micro-batch added

    def add(self, loss, item) -> None:
        self.loss, self.micro = self.loss + loss.double(), self.micro + 1
        self.tokens += item.tokens
        self.samples += item.samples
        self.predictions += item.predictions
        self.documents_seen = item.documents_seen


def train(state: TrainState, run: Run, stop: StopSignal) -> None:
    """Train from `state` until one of plan's ends holds (it lands in state.reason), validate and
    checkpoint. A stop signal checkpoints and exits 128 + signal."""
    import torch

    eng, plan, log = run.eng, run.plan, run.folder.log
    state.end(plan.stop_after_step(state.elapsed_s, state.step, state.stuck))   # killed just after its last step
    clock, window = Clock(state.elapsed_s), Window(state.elapsed_s)
    validated_at, micro, nonfinite, signum = None, 0, False, 0          # validated_at: in this process
    nonfinite_in_a_row = 0                                              # fp16 skips them (stopping.py); not resumed
    clock.start()
    for item in ([] if state.reason else micro_batches(run, state)):
        if micro == 0:
            lr = run.schedule.lr(state.elapsed_s, state.step)
            eng.set_lr(lr)
        loss = eng.forward_backward(item.batch)    # a device tensor: nothing here waits for the device
        nonfinite = nonfinite | ~torch.isfinite(loss)
        window.add(loss, item)
        micro += 1
        if micro < eng.accumulation:
            eng.step()                               # DeepSpeed only counts the micro-step here
            continue
        # The last micro-batch of a step: all ranks agree on time, signals and a non-finite
        # loss before the optimizer step is applied, so a NaN never reaches the weights.
        eng.synchronize()
        state.elapsed_s, signum, bad = eng.all_reduce([clock.elapsed(), float(stop.signum), nonfinite],
                                                      op="max")
        micro, nonfinite = 0, False
        nonfinite_in_a_row = nonfinite_in_a_row + 1 if bad else 0
        if state.end(plan.stop_before_step(bool(bad), nonfinite_in_a_row)):
            break
        if bad:   # fp16 (else the run ended above, unless switched off): DeepSpeed's overflow check skips it
            log.say(f"step {state.step + 1} | non-finite loss ({nonfinite_in_a_row} in a row; fp16: DeepSpeed skips the step)")
        eng.step()
        state.step += 1
        state.epoch_samples += run.micro * eng.accumulation     # samples each rank reads per optimizer step
        state.stuck = state.stuck + 1 if eng.loss_scale_at_minimum() else 0
        if state.step % run.log_every == 0:
            log_train(run, state, window, lr)
            window = Window(state.elapsed_s)
        if state.end(plan.stop_after_step(state.elapsed_s, state.step, state.stuck)) or signum:
            break
        valid_due = plan.validation_due(state.elapsed_s, state.step, state.last_valid_s)
        ckpt_due = state.elapsed_s >= state.next_ckpt_s
        if valid_due or ckpt_due:
            clock.pause()
            if valid_due:
                valid_loss, validated_at, state.last_valid_s = validate(run, state), state.step, state.elapsed_s
                if valid_loss is not None:
                    state.last_valid_loss = valid_loss
                    if state.end(plan.stop_after_validation(valid_loss, state.elapsed_s)):
                        break
            if ckpt_due:
                state.next_ckpt_s = next_multiple(state.elapsed_s, run.checkpoint_s)
                run.folder.save(eng, state)
                log.say(f"step {state.step} | checkpoint saved")
            clock.start()
    clock.pause()
    if signum and state.reason is None:   # a run that ended at this step ends normally
        run.folder.save(eng, state)
        log.say(f"stopped by {signal.Signals(int(signum)).name} at step {state.step} after "
                f"{state.elapsed_s:.1f}s of training; checkpoint saved, a rerun resumes")
        raise SystemExit(128 + int(signum))
    if validated_at != state.step and state.reason != "nonfinite_loss":   # (a NaN model's valid loss says nothing)
        validate(run, state)
    run.folder.save(eng, state)


def micro_batches(run: Run, state: TrainState):
    """This rank's micro-batches (prefetch.Item) from the state's data position on, epoch after epoch,
    each epoch read ahead on a thread (the position advances as the loop takes them, not as read)."""
    from workflow_scripts.pretrain import prefetch

    while True:
        yield from prefetch.Prefetch(run.stream.epoch(state.epoch, state.epoch_samples // run.micro), run.stream,
                                     pin=run.eng.dist.device.startswith("cuda"), host_indices=run.host_indices)
        state.epoch, state.epoch_samples = state.epoch + 1, 0
        run.folder.log.say(f"epoch {state.epoch} begins (each rank reads {run.stream.micro_per_epoch * run.micro} "
                           f"of its {run.stream.share} samples per epoch)")


def log_train(run: Run, state: TrainState, window: Window, lr: float) -> None:
    """The train line: the mean micro-batch loss and the throughput since the last one, over all ranks
    (tokens/s of non-padding tokens; TFLOP/s per device and MFU from flops.py's model FLOPs); and how
    far into the epoch the run is, with the distinct documents read in it so far (issue 10; summed
    over ranks, absent for shards without document ids: the same on every rank)."""
    stream = run.stream
    counted = stream.counted
    sums = run.eng.all_reduce([window.loss, window.micro, window.tokens, window.samples, window.predictions,
                               *((window.documents_seen, stream.documents) if counted else ())])
    loss_sum, micros, tokens, samples, predictions = sums[:5]
    dt = max(state.elapsed_s - window.since, 1e-9)
    scalars = dict(loss=loss_sum / micros, lr=lr, samples_per_s=samples / dt, tokens_per_s=tokens / dt)
    if run.cost is not None:
        flops_per_s = run.cost.train(samples, predictions) / dt
        scalars["tflops_per_s"] = flops_per_s / run.eng.dist.world / 1e12      # per device
        if run.peak_tflops:
            scalars["mfu"] = flops.mfu(flops_per_s, run.peak_tflops, run.eng.dist.world)
    data = {"epoch_fraction": round(state.epoch_samples / (stream.micro_per_epoch * run.micro), 5)}
    if counted:
        data.update(documents_seen=int(sums[5]), documents=int(sums[6]))
    run.folder.log.event("train", step=state.step, elapsed_s=round(state.elapsed_s, 3), **scalars, epoch=state.epoch,
                         **data)
    run.tb.scalars("train", state.step, **scalars)
    speed = f"{scalars['samples_per_s']:.1f} samples/s | {scalars['tokens_per_s']:.0f} tokens/s"
    if "tflops_per_s" in scalars:
        speed += f" | {scalars['tflops_per_s']:.3g} TFLOP/s per device"
    if "mfu" in scalars:
        speed += f" | MFU {100 * scalars['mfu']:.1f}%"
    run.folder.log.say(f"step {state.step} | {state.elapsed_s:.0f}/{run.plan.budget_s:.0f}s | "
                       f"loss {scalars['loss']:.4f} | lr {lr:.2e} | {speed}")


def validate(run: Run, state: TrainState) -> float | None:
    """Masked-LM loss per masked token over the valid set, the same on every rank (None: no tokens)."""
    mlm_sum, count = 0.0, 0
    for batch in run.valid.batches:
        s, n, _ = run.eng.eval_batch(batch)
        mlm_sum, count = mlm_sum + s, count + n
    mlm_sum, count = run.eng.all_reduce([mlm_sum, count])
    log = run.folder.log
    if not count:   # e.g. one-document text parts leave empty valid shards: nothing to report
        log.say(f"step {state.step} | no validation: the valid shards hold no masked tokens")
        return None
    log.event("valid", step=state.step, elapsed_s=round(state.elapsed_s, 3), valid_loss=mlm_sum / count)
    run.tb.scalars("valid", state.step, loss=mlm_sum / count)
    log.say(f"step {state.step} | valid loss {mlm_sum / count:.4f}")
    return mlm_sum / count
