"""Real runs that end early, each for its reason in the log's end line: a NaN loss (its step is not
applied), a validation loss above the early-stopping threshold, and early_exit_time_marker (the LR
still on the total_training_time curve). Relaxing the setting that ended a run lets a rerun train on."""
import pytest

from tests.helpers.pretrain_run import USER_MODULE, events, recipe, run, run_with

pytestmark = pytest.mark.workflow  # each test is two real runs (~30 s here)


def test_nan_loss_stops_before_its_step_is_applied(pretrain_shards, bert_tokenizer_dir, tmp_path):
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_opts.py").write_text(USER_MODULE)
    trace = tmp_path / "trace.txt"
    # The user's optimizer writes NaN into the weights at its 3rd step: step 4's loss is NaN.
    rec = recipe(600, max_steps=10, log_interval_steps=1,
                 optimizer={"name": "my_opts:TracedSGD", "lr": 0.01, "kwargs": {"trace": str(trace), "poison_at": 3}})
    proc = run_with(folder, pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(tmp_path / "log.jsonl")
    end = log[-1]
    assert end["event"] == "end" and end["reason"] == "nonfinite_loss" and end["step"] == 3
    assert "this step was not applied" in end["detail"] and "done (nonfinite_loss" in proc.stdout
    assert len(trace.read_text().splitlines()) == 3          # the optimizer never stepped on the NaN gradients
    assert (tmp_path / "model" / "model.safetensors").exists()

    # Rerun (outputs deleted): an early stop stands; the model is exported again, nothing trained.
    (tmp_path / "log.jsonl").unlink()
    again = run_with(folder, pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert again.returncode == 0, again.stdout + again.stderr
    assert events(tmp_path / "log.jsonl")[-1] == end
    assert len(trace.read_text().splitlines()) == 3


def test_valid_loss_above_the_threshold_after_its_time_stops_the_run(pretrain_shards, bert_tokenizer_dir, tmp_path):
    # After 0.06 s of training a validation is forced; a fresh model's loss (~10.3) is above 5.
    rec = recipe(600, max_steps=40, log_interval_steps=1,
                 early_stopping={"max_valid_loss": 5.0, "after_minutes": 0.001})
    proc = run(pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(tmp_path / "log.jsonl")
    valid, end = [e for e in log if e["event"] == "valid"], log[-1]
    assert end["reason"] == "valid_loss" and "> early_stopping.max_valid_loss 5.0" in end["detail"]
    assert len(valid) == 1 and valid[0]["step"] == end["step"] < 40 and valid[0]["valid_loss"] > 5.0
    assert valid[0]["elapsed_s"] >= 0.06
    train = [e for e in log if e["event"] == "train"]
    assert train[-1]["step"] == end["step"] and all(e["elapsed_s"] < 0.06 for e in train[:-1])

    # Rerun with the threshold lifted (not part of the state key): the same run trains on to max_steps.
    relaxed = {**rec, "early_stopping": {"max_valid_loss": None}}
    again = run(pretrain_shards, bert_tokenizer_dir, tmp_path, relaxed)
    assert again.returncode == 0, again.stdout + again.stderr
    log = events(tmp_path / "log.jsonl")
    assert [e for e in log if e["event"] == "resume"][0]["step"] == end["step"]
    assert log[-1]["reason"] == "max_steps" and log[-1]["step"] == 40


def test_early_exit_keeps_the_full_schedule_and_a_later_marker_continues(pretrain_shards, bert_tokenizer_dir,
                                                                         tmp_path):
    # A 100 s budget with 10% warmup, exited after 1.5 s: the LR is still warming up on the 100 s curve.
    base = recipe(100, max_steps=400, log_interval_steps=1, optimizer={"lr": 1e-3},
                  schedule={"name": "linear", "warmup_proportion": 0.1})
    proc = run(pretrain_shards, bert_tokenizer_dir, tmp_path, {**base, "early_exit_time_marker": 1.5 / 3600})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = events(tmp_path / "log.jsonl")
    end = first[-1]
    train = [e for e in first if e["event"] == "train"]
    assert end["reason"] == "early_exit" and 1.5 <= end["elapsed_s"] < 100 and end["step"] < 400
    assert all(e["elapsed_s"] < 1.5 for e in train[:-1]) and train[-1]["elapsed_s"] >= 1.5
    # Step k's LR: peak x (elapsed before it / 10 s of warmup), not a curve squeezed into 1.5 s.
    assert train[-1]["lr"] == pytest.approx(1e-3 * train[-2]["elapsed_s"] / 10, abs=1e-7)
    assert train[-1]["lr"] < 2e-4

    # The same recipe with a later marker: the final checkpoint is picked up and training goes on.
    later = run(pretrain_shards, bert_tokenizer_dir, tmp_path, {**base, "early_exit_time_marker": 3.0 / 3600})
    assert later.returncode == 0, later.stdout + later.stderr
    assert "which no longer holds: training on" in later.stdout
    log = events(tmp_path / "log.jsonl")
    assert [e["event"] for e in log].count("config") == 1
    assert [e for e in log if e["event"] == "resume"][0]["step"] == end["step"]
    steps = [e["step"] for e in log if e["event"] == "train"]
    assert steps == list(range(1, log[-1]["step"] + 1))     # each step once: the first end line was cut
    assert log[-1]["reason"] == "early_exit" and log[-1]["elapsed_s"] >= 3.0 and log[-1]["step"] > end["step"]
