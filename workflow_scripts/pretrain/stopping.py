"""When a pretraining run validates and when it stops; asked after every optimizer step.

Every input is a value all ranks share (elapsed time and flags are max-reduced over ranks each
step, validation losses are all-reduced), so every rank takes the same decision at the same step.

Stop reasons (the `reason` of the log's end line), checked in this order:
  nonfinite_loss  the step's training loss (on any rank, any micro-batch) or a validation loss is
                  NaN or infinite. Checked before the optimizer step, which is then not applied:
                  NaN gradients never reach the weights or the Adam moments, so the exported
                  model is the one whose forward pass first overflowed, not a NaN-filled one.
                  Under fp16 only after early_stopping.nonfinite_loss_steps such steps in a row:
                  DeepSpeed skips an overflowing step and lowers the loss scale, and a run that
                  recovers (as under the originals, which never stop on it) trains on. fp32 and
                  bf16 stop at the first: no loss scaler recovers there.
  budget          elapsed training time reached total_training_time (none where a step-scheduled
                  run leaves it out: max_steps ends that run).
  early_exit      elapsed reached early_exit_time_marker hours (academic-budget-bert: stop there
                  although the LR schedule runs to total_training_time).
  max_steps       the optimizer step count reached max_steps.
  loss_scale      fp16: the dynamic loss scale sat at its minimum for loss_scale_stuck_steps
                  consecutive steps (academic-budget-bert's scale_cnt_limit counts steps at scale 1,
                  consecutive or not; a diverged run sits there for good, a recovering one leaves).
  valid_loss      after early_stopping.after_minutes of training, a validation loss is above
                  early_stopping.max_valid_loss (academic-budget-bert's early_stop_time /
                  early_stop_eval_loss). A validation is run when after_minutes is crossed, so the
                  check does not wait for the next regular one.
(a SIGTERM/SIGINT stop is no end: the run checkpoints and exits 128 + signal, to be resumed.)
None of these settings is part of the state key (the schema declares them where-to-stop keys,
x-effect stop; max_steps too while the schedule runs on time): rerun an ended run with settings under which
its end no longer holds (a later marker, a higher threshold) and it trains on from its final
checkpoint (still_finished below).

Validation cadence, in minutes of training (academic-budget-bert counts epochs, which are shards
there; ours are not): validation_interval_minutes in the middle of the run,
validation_interval_minutes_begin during its first validation_begin_proportion, and
validation_interval_minutes_end during its last validation_end_proportion (null: the middle
interval). A proportion of the run is on the schedule's clock (time, or steps when schedule.by is
step). A validation is due once the current stage's interval has passed since the last one; there
is always one at the end.
"""
import math
from dataclasses import dataclass

from workflow_scripts.pretrain import schedules


def budget_seconds(recipe: dict) -> float:
    """total_training_time in seconds; infinite where a step-scheduled run leaves it out (recipe_checks
    allows that only with schedule.by step and max_steps, which then ends the run)."""
    hours = recipe.get("total_training_time")
    return math.inf if hours is None else hours * 3600.0


def nonfinite_steps(recipe: dict) -> int:
    """Consecutive non-finite training losses that end the run: early_stopping.nonfinite_loss_steps
    under fp16 (DeepSpeed skips each such step as an overflow), 1 under fp32 and bf16."""
    if recipe["implementation"]["precision"] != "fp16":
        return 1
    return recipe["early_stopping"]["nonfinite_loss_steps"]     # the schema fills it (10)


@dataclass
class Budget:
    budget_s: float
    max_steps: int | None = None
    by: str = "time"
    early_exit_s: float | None = None
    valid_s: float = 1800.0
    valid_begin_s: float | None = None
    valid_end_s: float | None = None
    begin_proportion: float = 0.1
    end_proportion: float = 0.1
    max_valid_loss: float | None = None
    after_s: float = 0.0
    nonfinite_loss: bool = True
    nonfinite_steps: int = 1
    stuck_steps: int | None = None

    @classmethod
    def from_recipe(cls, recipe: dict) -> "Budget":
        def seconds(minutes):
            return None if minutes is None else minutes * 60.0

        es = recipe.get("early_stopping", {})
        marker = recipe.get("early_exit_time_marker")
        return cls(budget_s=budget_seconds(recipe), max_steps=recipe.get("max_steps"),
                   by=recipe.get("schedule", {}).get("by", "time"),
                   early_exit_s=None if marker is None else marker * 3600.0,
                   valid_s=recipe["validation_interval_minutes"] * 60.0,
                   valid_begin_s=seconds(recipe.get("validation_interval_minutes_begin")),
                   valid_end_s=seconds(recipe.get("validation_interval_minutes_end")),
                   begin_proportion=recipe.get("validation_begin_proportion", 0.1),
                   end_proportion=recipe.get("validation_end_proportion", 0.1),
                   max_valid_loss=es.get("max_valid_loss"), after_s=es.get("after_minutes", 0.0) * 60.0,
                   nonfinite_loss=es.get("nonfinite_loss", True), stuck_steps=es.get("loss_scale_stuck_steps"),
                   nonfinite_steps=nonfinite_steps(recipe))

    # ---- validation ----
    def validation_interval_s(self, elapsed_s: float, step: int) -> float:
        f = schedules.run_fraction(self.by, elapsed_s, step, self.budget_s, self.max_steps)
        if f < self.begin_proportion and self.valid_begin_s is not None:
            return self.valid_begin_s
        if f >= 1 - self.end_proportion and self.valid_end_s is not None:
            return self.valid_end_s
        return self.valid_s

    def validation_due(self, elapsed_s: float, step: int, last_valid_s: float) -> bool:
        if elapsed_s - last_valid_s >= self.validation_interval_s(elapsed_s, step):
            return True
        # The valid-loss early stop comes due: measure now rather than at the next regular validation.
        return self.max_valid_loss is not None and last_valid_s < self.after_s <= elapsed_s

    # ---- stopping ----
    def stop_before_step(self, nonfinite: bool, in_a_row: int = 1) -> tuple | None:
        """(reason, detail) when the step about to be applied must not be (in_a_row: consecutive
        steps with a non-finite loss, this one included); else None."""
        if nonfinite and self.nonfinite_loss and in_a_row >= self.nonfinite_steps:
            times = f" for {in_a_row} steps in a row" if in_a_row > 1 else ""
            return "nonfinite_loss", f"the training loss is NaN or infinite{times}; this step was not applied"
        return None

    def stop_after_step(self, elapsed_s: float, step: int, stuck: int) -> tuple | None:
        """(reason, detail) when the run ends after this step (stuck: consecutive steps at the
        minimum fp16 loss scale); else None."""
        if elapsed_s >= self.budget_s:
            return "budget", f"{elapsed_s:.1f}s of training >= total_training_time {self.budget_s:.1f}s"
        if self.early_exit_s is not None and elapsed_s >= self.early_exit_s:
            return "early_exit", f"{elapsed_s:.1f}s of training >= early_exit_time_marker {self.early_exit_s:.1f}s"
        if self.max_steps and step >= self.max_steps:
            return "max_steps", f"step {step} = max_steps"
        if self.stuck_steps and stuck >= self.stuck_steps:
            return "loss_scale", f"fp16 loss scale at its minimum for {stuck} consecutive steps"
        return None

    def stop_after_validation(self, valid_loss: float, elapsed_s: float) -> tuple | None:
        if not math.isfinite(valid_loss) and self.nonfinite_loss:
            return "nonfinite_loss", f"the validation loss is {valid_loss}"
        if self.max_valid_loss is not None and elapsed_s >= self.after_s and valid_loss > self.max_valid_loss:
            return "valid_loss", (f"valid loss {valid_loss:.4f} > early_stopping.max_valid_loss {self.max_valid_loss} "
                                  f"after {elapsed_s / 60:.1f} min of training")
        return None

    def still_finished(self, reason: str, elapsed_s: float, step: int, stuck: int = 0,
                       valid_loss: float | None = None) -> bool:
        """On resuming a run that had ended: does its end hold under this recipe? Where-to-stop keys
        are not part of the state key, so a later early_exit_time_marker, a higher (or no)
        max_valid_loss or loss_scale_stuck_steps, lets the same run train on."""
        if reason in ("budget", "early_exit", "max_steps", "loss_scale"):
            return self.stop_after_step(elapsed_s, step, stuck) is not None
        if reason == "valid_loss":
            return valid_loss is not None and self.stop_after_validation(valid_loss, elapsed_s) is not None
        if reason == "nonfinite_loss":
            return self.nonfinite_loss
        return True
