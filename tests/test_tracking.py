"""Opt-in experiment tracking: a real MLflow server on localhost (pretraining, its resume, a fine-tuning
trial nested under it) and W&B in offline mode; the missing-package line; nothing tracked by default."""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.helpers.pretrain_run import REPO, command, events, recipe
from tests.test_finetune import glue, settings, tiny_model  # noqa: F401 (its fixtures)
from workflow_scripts import tracking
from workflow_scripts.errors import BadInput

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="mlflow not installed (envs/dev-requirements.txt installs it)")
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None,
                                 reason="wandb not installed (envs/dev-requirements.txt installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on a free localhost port with a sqlite store; its URI."""
    if importlib.util.find_spec("mlflow") is None:
        pytest.skip("mlflow not installed (envs/dev-requirements.txt installs it)")
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(folder / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1", "--backend-store-uri", f"sqlite:///{folder / 'store.db'}",
                               "--default-artifact-root", str(folder / "artifacts")], stdout=log, stderr=log)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"{uri}/health", timeout=2)
            break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        pytest.fail(f"mlflow server did not come up: {(folder / 'server.log').read_text()[-2000:]}")
    yield uri
    server.terminate()
    server.wait(timeout=30)
    log.close()


def pretrain(shards, tokenizer, out, rec, track: dict, env=None):
    cmd = command(shards, tokenizer, out, rec) + ["--tracking", json.dumps(track)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def tracked(mlflow_server, pretrain_shards, bert_tokenizer_dir, tmp_path_factory):
    """A 6-step run logged to the server, then the same state trained on to step 10 (a later max_steps)."""
    from mlflow.tracking import MlflowClient

    out = tmp_path_factory.mktemp("tracked")
    track = {"backend": "mlflow", "uri": mlflow_server, "experiment": "tests", "name": "tiny"}
    rec = recipe(600, max_steps=6, log_interval_steps=1)
    pretrain(pretrain_shards, bert_tokenizer_dir, out, rec, track)
    first = json.loads(next((out / "state").glob("*/tracking.json")).read_text())
    pretrain(pretrain_shards, bert_tokenizer_dir, out, {**rec, "max_steps": 10}, track)
    return {"out": out, "rec": rec, "first": first, "client": MlflowClient(mlflow_server), "track": track}


@needs_mlflow
def test_pretraining_run_logged_to_a_real_mlflow_server(tracked):
    client, run_id = tracked["client"], tracked["first"]["id"]
    assert tracked["first"]["backend"] == "mlflow"
    run = client.get_run(run_id)
    params, tags = run.data.params, run.data.tags
    assert params["optimizer.lr"] == "0.003" and params["model.hidden_size"] == "64" and params["world_size"] == "1"
    assert tags["xbert_stage"] == "pretrain" and tags["xbert_run"] == "tiny" and run.info.run_name == "tiny"
    assert tags["model_path"] == str((tracked["out"] / "model").resolve()) and tags["end_reason"] == "max_steps"
    assert run.info.status == "FINISHED"
    log = events(tracked["out"] / "log.jsonl")
    train = [e for e in log if e["event"] == "train"]
    loss = client.get_metric_history(run_id, "train/loss")
    # One point per train line of both invocations (steps 1-6, then 7-10 after the resume).
    assert [m.step for m in loss] == [e["step"] for e in train] == list(range(1, 11))
    assert [m.value for m in loss] == pytest.approx([e["loss"] for e in train])
    assert len(client.get_metric_history(run_id, "train/lr")) == 10
    assert {m.step for m in client.get_metric_history(run_id, "valid/loss")} >= {6, 10}


@needs_mlflow
def test_resume_continues_the_same_mlflow_run(tracked):
    """The second invocation resumed the checkpoint and logged into the first one's run: no second run."""
    client = tracked["client"]
    assert json.loads(next((tracked["out"] / "state").glob("*/tracking.json")).read_text()) == tracked["first"]
    experiment = client.get_experiment_by_name("tests").experiment_id
    pretraining = client.search_runs([experiment], "tags.xbert_stage = 'pretrain'")
    assert [r.info.run_id for r in pretraining] == [tracked["first"]["id"]]


@needs_mlflow
def test_finetune_trial_is_a_run_nested_under_its_pretraining_run(tracked, tiny_model, glue, settings,  # noqa: F811
                                                                  tmp_path):
    out = tmp_path / "lr1e-4_bs16_ep1_seed1"
    track = json.dumps(tracked["track"])
    from workflow_scripts.glue import finetune

    finetune.main(["--task", "SST-2", "--glue", json.dumps(glue), "--model", str(tiny_model), "--hparams",
                   json.dumps({"lr": 1e-4, "batch_size": 16, "epochs": 1, "seed": 1}), "--settings",
                   json.dumps(settings), "--metrics-out", str(out / "dev_metrics.json"),
                   "--predictions-out", str(out / "test_predictions.tsv"), "--tracking", track])
    record = json.loads((out / "dev_metrics.json").read_text())
    client = tracked["client"]
    experiment = client.get_experiment_by_name("tests").experiment_id
    [run] = client.search_runs([experiment], "tags.xbert_stage = 'finetune'")
    assert run.info.run_name == "tiny/SST-2/lr1e-4_bs16_ep1_seed1"
    assert run.data.tags["mlflow.parentRunId"] == tracked["first"]["id"]
    assert run.data.params["task"] == "SST-2" and run.data.params["hparams.lr"] == "0.0001"
    assert run.data.metrics["dev/score"] == pytest.approx(record["score"])
    assert run.data.metrics["dev/accuracy"] == pytest.approx(record["metrics"]["accuracy"])
    assert run.data.tags["init_model"] == str(tiny_model)


@needs_wandb
def test_wandb_offline_run_keeps_the_metrics_on_disk(pretrain_shards, bert_tokenizer_dir, tmp_path):
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(tmp_path / "wandb_dir"), WANDB_SILENT="true")
    rec = recipe(600, max_steps=4, log_interval_steps=1)
    pretrain(pretrain_shards, bert_tokenizer_dir, tmp_path, rec, {"backend": "wandb", "experiment": "tests"}, env)
    ids = json.loads(next((tmp_path / "state").glob("*/tracking.json")).read_text())
    [folder] = (tmp_path / "wandb_dir" / "wandb").glob(f"offline-run-*-{ids['id']}")
    records = (folder / f"run-{ids['id']}.wandb").read_bytes()
    # The run's records (protobuf, synced later by `wandb sync`): the metrics' names and the end tag.
    assert b"train/loss" in records and b"valid/loss" in records and b"train/tokens_per_s" in records
    assert b"end_reason" in records and b"max_steps" in records and b"model_path" in records


def test_backend_none_tracks_nothing_and_imports_nothing(tmp_path):
    run = tracking.for_pretraining(None, "demo", tmp_path, False, 0, {"a": 1})
    assert isinstance(run, tracking.Off) and not (tmp_path / tracking.ID_FILE).exists()
    assert isinstance(tracking.for_pretraining('{"backend": "mlflow"}', "demo", tmp_path, False, 1, {}), tracking.Off)


def test_chosen_but_missing_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)       # import wandb now raises ImportError
    with pytest.raises(BadInput, match=r"the wandb package is not installed; `pip install wandb`"):
        tracking.ready('{"backend": "wandb"}')
    with pytest.raises(BadInput, match=r"tracking\.backend 'neptune': use one of none, mlflow, wandb"):
        tracking.parse('{"backend": "neptune"}')


def test_params_are_flattened_as_text():
    assert tracking.flat({"a": {"b": 1, "c": [1, 2]}, "d": None, "e": {}, "f": "x"}) == \
        {"a.b": "1", "a.c": "[1, 2]", "d": "null", "e": "{}", "f": "x"}
