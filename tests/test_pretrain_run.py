"""Real pretraining runs through DeepSpeed on the CPU, seconds each: outputs, log, resume, torchrun."""
import json
import signal
import subprocess
import sys
import time

import pytest

from tests import probes
from tests.helpers.pretrain_run import REPO, command, events, recipe, resumed, run

TRAIN_FIELDS = {"event", "step", "elapsed_s", "loss", "lr", "samples_per_s", "tokens_per_s", "tflops_per_s", "mfu"}


@pytest.fixture(scope="module")
def finished(pretrain_shards, bert_tokenizer_dir, tmp_path_factory):
    """One 6-second run, a train line every step, validating every 3 seconds of training."""
    out = tmp_path_factory.mktemp("run")
    rec = recipe(6, validation_interval_minutes=0.05, log_interval_steps=1)
    proc = run(pretrain_shards, bert_tokenizer_dir, out, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "recipe": rec, "proc": proc}


@pytest.fixture(scope="module")
def learned(pretrain_shards, bert_tokenizer_dir, tmp_path_factory):
    """A fixed number of steps (not seconds), so the loss check does not depend on machine load."""
    out = tmp_path_factory.mktemp("learn")
    rec = recipe(600, max_steps=16, optimizer={"lr": 5e-3}, schedule={"name": "constant", "warmup_proportion": 0})
    proc = run(pretrain_shards, bert_tokenizer_dir, out, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"log": events(out / "log.jsonl"), "out": out, "recipe": rec}


def test_run_writes_a_loadable_model_and_the_log(finished, bert_tokenizer_dir):
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    out = finished["out"]
    names = {p.name for p in (out / "model").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= names
    tok = AutoTokenizer.from_pretrained(out / "model")
    enc = tok("a short test sentence", return_tensors="pt")
    assert AutoModel.from_pretrained(out / "model")(**enc).last_hidden_state.shape == (1, enc["input_ids"].shape[1], 64)
    assert AutoModelForSequenceClassification.from_pretrained(out / "model", num_labels=2)(**enc).logits.shape == (1, 2)

    log = events(out / "log.jsonl")
    first, last = log[0], log[-1]
    assert first["event"] == "config" and first["world_size"] == 1 and first["gradient_accumulation_steps"] == 2
    assert first["model"]["hidden_size"] == 64 and first["optimizer"]["name"] == "adamw"   # defaults resolved
    assert last["event"] == "end" and last["reason"] == "budget"
    train = [e for e in log if e["event"] == "train"]
    assert train and all(set(e) >= TRAIN_FIELDS for e in train)
    assert [e["step"] for e in train] == list(range(1, last["step"] + 1))
    # The stop rule, checked every optimizer step: every step but the last began inside the budget.
    # (elapsed_s is rounded to ms: a step just under 6 s may read 6.0)
    assert all(e["elapsed_s"] <= 6.0 for e in train[:-1]) and train[-1]["elapsed_s"] >= 6.0
    assert last["elapsed_s"] == train[-1]["elapsed_s"]
    assert all(e["samples_per_s"] > 0 and e["tokens_per_s"] > e["samples_per_s"] for e in train)
    # Model FLOPs (flops.py) over the CPU's measured matmul rate; the end line's device-hours.
    assert first["device"] == "cpu" and first["peak_tflops"] > 0 and "probe" in first["peak_source"]
    per_sample = 3 * first["flops_per_sequence"]
    assert all(e["tflops_per_s"] * 1e12 >= e["samples_per_s"] * per_sample * 0.999 for e in train)
    assert all(0 < e["mfu"] == pytest.approx(e["tflops_per_s"] / first["peak_tflops"]) for e in train)
    assert last["device_hours"] == pytest.approx(last["elapsed_s"] / 3600, abs=1e-6) and last["devices"] == 1
    assert last["samples_seen"] == last["step"] * first["batch_size"]
    assert last["tokens_seen"] == last["samples_seen"] * first["seq_len"]
    assert "step 2 |" in finished["proc"].stdout and "done (budget:" in finished["proc"].stdout


def test_model_folder_carries_a_model_card_of_the_run(finished):
    """README.md (huggingface_hub's ModelCard) says what the log and shards say: publishable as is."""
    from huggingface_hub import ModelCard

    out = finished["out"]
    card = ModelCard.load(out / "model" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "transformers" and data["pipeline_tag"] == "fill-mask"
    log = events(out / "log.jsonl")
    end, valid = log[-1], [e for e in log if e["event"] == "valid"][-1]
    facts = data["extremebert"]
    assert (facts["steps"], facts["training_seconds"], facts["stop_reason"]) == (end["step"], end["elapsed_s"],
                                                                                 "budget")
    assert facts["final_valid_loss"] == valid["valid_loss"] and facts["parameters"] == log[0]["parameters"]
    # By hand (no --card) the run is named by the model folder's parent, one corpus holding every shard.
    assert facts["run"] == out.name and facts["corpora"]["samples"]["train_samples"] == 512   # 2 shards x 256
    assert facts["corpora"]["samples"]["valid_samples"] == 64
    assert f"{end['step']} optimizer steps" in card.text


def test_lr_follows_the_time_schedule(finished):
    """Step k runs at peak * linear(elapsed after step k-1 / budget): warmup 10%, then decay to 0."""
    train = [e for e in events(finished["out"] / "log.jsonl") if e["event"] == "train"]
    before = [0.0] + [e["elapsed_s"] for e in train[:-1]]
    for e, t in zip(train, before, strict=True):
        f = t / 6.0
        expected = 3e-3 * (f / 0.1 if f < 0.1 else (1 - f) / 0.9)
        assert e["lr"] == pytest.approx(expected, abs=3e-3 * 1e-3), (e, t)


def test_validation_every_interval_and_at_the_end(finished):
    log = events(finished["out"] / "log.jsonl")
    train = [e for e in log if e["event"] == "train"]
    valid = [e for e in log if e["event"] == "valid"]
    # A validation after each step whose training time crossed the 3 s interval, and one at the end.
    crossed = [e["step"] for e in train[:-1] if e["elapsed_s"] >= 3.0][:1]
    assert [v["step"] for v in valid] == crossed + [train[-1]["step"]]
    assert all(0 < v["valid_loss"] < 11 for v in valid)


def test_loss_goes_down(learned):
    log = learned["log"]
    train = [e["loss"] for e in log if e["event"] == "train"]
    valid = [e["valid_loss"] for e in log if e["event"] == "valid"]
    assert log[-1] == {**log[-1], "event": "end", "reason": "max_steps", "step": 16}
    # ln(30522) = 10.33 is the loss of a uniform guess, where the run starts.
    assert train[0] > 9.8 and train[-1] < train[0] - 1.0, train
    assert valid[-1] < 9.5, valid


def test_finished_state_resumes_to_the_same_model(finished, pretrain_shards, bert_tokenizer_dir, tmp_path):
    """Same recipe again (model output deleted, as Snakemake would): the final checkpoint is
    loaded, nothing is trained, and the exported weights are exactly the first run's."""
    from safetensors.torch import load_file

    out = finished["out"]
    again = tmp_path / "again"
    (again).mkdir()
    (again / "state").symlink_to(out / "state")
    proc = run(pretrain_shards, bert_tokenizer_dir, again, finished["recipe"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(again / "log.jsonl")
    resumed = [e for e in log if e["event"] == "resume"]
    assert resumed and log[-1]["event"] == "end" and log[-1]["step"] == resumed[0]["step"]
    a, b = load_file(out / "model" / "model.safetensors"), load_file(again / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_changed_recipe_starts_fresh(finished, pretrain_shards, bert_tokenizer_dir, tmp_path):
    out = finished["out"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    state = fresh / "state"
    (state).mkdir()
    old = [p for p in (out / "state").iterdir() if p.is_dir()]
    for p in old:                                    # a copy of the finished run's state
        subprocess.run(["cp", "-r", str(p), str(state)], check=True)
    rec = recipe(1.5, optimizer={"lr": 1e-3})        # another learning rate
    proc = run(pretrain_shards, bert_tokenizer_dir, fresh, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(fresh / "log.jsonl")
    assert not any(e["event"] == "resume" for e in log)
    assert log[0]["event"] == "config" and log[0]["optimizer"]["lr"] == 1e-3
    assert "keeping the state of another recipe" in proc.stdout
    assert {p.name for p in state.iterdir()} == {log[0]["state_key"]} | {p.name for p in old}
    assert log[0]["state_key"] not in {p.name for p in old}


@pytest.mark.workflow  # a long real run (30-45 s here)
def test_sigterm_checkpoints_and_a_rerun_resumes(pretrain_shards, bert_tokenizer_dir, tmp_path):
    rec = recipe(600, max_steps=12, checkpoint_interval_minutes=60, log_interval_steps=1)
    proc = subprocess.Popen(command(pretrain_shards, bert_tokenizer_dir, tmp_path, rec), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Wait for a few optimizer steps in the running log, then send what SLURM sends.
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        logs = list((tmp_path / "state").glob("*/log.jsonl"))
        if logs and any(e["event"] == "train" and e["step"] >= 3 for e in events(logs[0])):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert "checkpoint saved" in output and not (tmp_path / "model").exists()
    latest = json.loads(next((tmp_path / "state").glob("*/latest.json")).read_text())
    assert 3 <= latest["step"] < 12 and latest["elapsed_s"] > 0

    again = run(pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert again.returncode == 0, again.stdout + again.stderr
    log = events(tmp_path / "log.jsonl")
    assert log[0]["event"] == "config" and log[-1]["event"] == "end" and log[-1]["reason"] == "max_steps"
    resume = [resumed(e) for e in log if e["event"] == "resume"]
    assert resume == [{"event": "resume", "step": latest["step"], "elapsed_s": latest["elapsed_s"]}]
    # Each step logged exactly once: what the killed attempt logged past its checkpoint was cut.
    train = [e for e in log if e["event"] == "train"]
    assert [e["step"] for e in train] == list(range(1, 13))
    # Training time carried over: the resumed steps continue from the checkpoint's elapsed time.
    after = [e for e in train if e["step"] > latest["step"]]
    assert after and all(e["elapsed_s"] > latest["elapsed_s"] for e in after)


@pytest.mark.workflow  # a long real run (30-45 s here)
def test_sigkill_then_rerun_resumes_from_the_periodic_checkpoint(learned, pretrain_shards, bert_tokenizer_dir,
                                                                 tmp_path):
    """kill -9 (no handler runs, no checkpoint on the way out) mid-run, then the same command again:
    it resumes from the last periodic checkpoint, logs each step once, stops at the same step, and
    ends with exactly the weights of the run that was never interrupted (learned: same recipe, its
    LR constant, so independent of timing; checkpoint_interval_minutes is not part of the state key)."""
    from safetensors.torch import load_file

    rec = {**learned["recipe"], "checkpoint_interval_minutes": 0.002}      # a checkpoint every ~0.1 s of training
    proc = subprocess.Popen(command(pretrain_shards, bert_tokenizer_dir, tmp_path, rec), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        pointers = list((tmp_path / "state").glob("*/latest.json"))
        if pointers and json.loads(pointers[0].read_text())["step"] >= 5:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "model").exists()
    latest = json.loads(next((tmp_path / "state").glob("*/latest.json")).read_text())
    assert 5 <= latest["step"] < 16 and latest["reason"] is None

    again = run(pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert again.returncode == 0, again.stdout + again.stderr
    log = events(tmp_path / "log.jsonl")
    assert [e["event"] for e in log].count("config") == 1
    assert [resumed(e) for e in log if e["event"] == "resume"] == [
        {"event": "resume", "step": latest["step"], "elapsed_s": latest["elapsed_s"]}]
    assert [e["step"] for e in log if e["event"] == "train"] == list(range(2, 17, 2))
    assert log[-1]["event"] == "end" and log[-1]["reason"] == "max_steps" and log[-1]["step"] == 16
    a = load_file(learned["out"] / "model" / "model.safetensors")
    b = load_file(tmp_path / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)


def torch_equal(x, y) -> bool:
    import torch

    return bool(torch.equal(x, y))


def test_checkpoint_restores_weights_optimizer_and_rng_exactly(pretrain_shards):
    """Resuming continues bit-for-bit: after loading, the same batches give the same weights and
    Adam moments as the run that never stopped (dropout on, so the RNG state matters too)."""
    proc = subprocess.run(probes.command("engine_round_trip", pretrain_shards["train"][0]), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("SAME"), proc.stdout + proc.stderr


@pytest.mark.workflow  # a long real run (30-45 s here)
def test_two_ranks_through_torchrun(pretrain_shards, bert_tokenizer_dir, tmp_path):
    """2 CPU ranks: they agree on the time-budget stop (none hangs), and under ZeRO-3 the parameters
    partitioned across them are gathered for the checkpoint and the export."""
    rec = recipe(3, implementation={"micro_batch_size": 4, "gpus": 2, "zero_stage": 3})
    launcher = (sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    proc = run(pretrain_shards, bert_tokenizer_dir, tmp_path, rec, launcher=launcher)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(tmp_path / "log.jsonl")
    assert log[0]["world_size"] == 2 and log[0]["gradient_accumulation_steps"] == 1
    assert log[-1]["event"] == "end" and log[-1]["reason"] == "budget" and log[-1]["step"] > 0
    assert proc.stdout.count("done (") == 1               # only rank 0 speaks
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(tmp_path / "model", output_loading_info=True)
    assert not info["mismatched_keys"] and model.embeddings.word_embeddings.weight.shape == (30522, 64)
    assert model.embeddings.LayerNorm.weight.std() > 0       # trained values, not an empty ZeRO-3 shard
