"""Opt-in experiment tracking (config `tracking:`): MLflow or W&B runs beside the JSON-lines log.

backend none (the default) imports nothing and sends nothing. Otherwise:
  pretraining   one tracked run per training state (rank 0 only): params = the recipe, flattened;
                metrics = every train and valid log line (train/loss, train/lr, train/tokens_per_s,
                ..., valid/loss) at its step; tags = the run's name, state key, end reason and
                the exported model folder. Its id is kept in the state folder (tracking.json), so a
                resumed run continues the same tracked run; a fresh state starts a new one.
  fine-tuning   one tracked run per trial: params = task + hparams + settings; metrics = the dev
                scores, steps, final train loss, seconds. Under MLflow it is nested under the
                latest pretraining run of the same name in the experiment; under W&B the trials
                and their pretraining run share a group (the run's name).
A resumed run's metric history keeps what a killed attempt logged after its last checkpoint
(neither tracker can delete points): those steps then appear twice, the later values being the
ones the JSON log keeps. mlflow (pip install mlflow-skinny, the client) and wandb are optional
packages, imported only when chosen.
"""
import json
import time
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.errors import BadInput

BACKENDS = ("none", "mlflow", "wandb")
# What to pip install for each: MLflow's client is enough to log to a server or a local store.
PACKAGES = {"mlflow": "mlflow-skinny", "wandb": "wandb"}
ID_FILE = "tracking.json"
MAX_PARAM_CHARS = 6000          # MLflow's limit on a param value
MLFLOW_BATCH = 100              # MLflow's limit on params per log_batch call


def parse(text: str | None) -> dict:
    """--tracking JSON ({backend, uri, experiment, name}) -> settings; absent: backend none."""
    settings = {"backend": "none", "uri": None, "experiment": "extremebert", "name": None}
    if text:
        try:
            settings.update(json.loads(text))
        except json.JSONDecodeError as e:
            raise BadInput(f"--tracking: not valid JSON ({e})") from None
    if settings["backend"] not in BACKENDS:
        raise BadInput(f"tracking.backend {settings['backend']!r}: use one of {', '.join(BACKENDS)}")
    return settings


def ready(text: str | None) -> dict:
    """The settings, with the chosen tracker's package imported: a missing one stops before any training."""
    settings = parse(text)
    if settings["backend"] != "none":
        need_package(settings["backend"])
    return settings


def need_package(backend: str):
    """The tracker's package, or one line saying how to install it."""
    import importlib

    try:
        return importlib.import_module(backend)
    except ImportError:
        raise BadInput(f"tracking.backend {backend}: the {backend} package is not installed; "
                       f"`pip install {PACKAGES[backend]}`, or set tracking.backend: none") from None


def flat(values: dict, prefix: str = "") -> dict:
    """Nested config -> {"a.b": "text"} (lists and nulls as JSON), as trackers take params."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            out[f"{prefix}{key}"] = text[:MAX_PARAM_CHARS]
    return out


class Off:
    """backend none, and every rank but 0: the same calls, doing nothing."""
    id = None

    def params(self, values: dict) -> None:
        pass

    def scalars(self, prefix: str, step: int, **values) -> None:
        pass

    def tags(self, **values) -> None:
        pass

    def finish(self, **tags) -> None:
        pass


class MLflowRun(Off):
    """One MLflow run through MlflowClient (no process-wide active run): new, or continued by id."""

    def __init__(self, settings: dict, run_id: str | None, tags: dict, parent_of: str | None = None):
        need_package("mlflow")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=settings["uri"])
        if run_id is None:
            name = settings["experiment"]
            found = self.client.get_experiment_by_name(name)
            experiment = found.experiment_id if found else self.client.create_experiment(name)
            if parent_of:
                tags = {**tags, **self.parent_tag(experiment, parent_of)}
            run_id = self.client.create_run(experiment, run_name=settings["name"], tags=tags).info.run_id
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.id = run_id

    def parent_tag(self, experiment: str, run_name: str) -> dict:
        """MLflow's nesting tag naming the latest pretraining run called run_name, if there is one."""
        runs = self.client.search_runs([experiment], f"tags.xbert_stage = 'pretrain' and tags.xbert_run = '{run_name}'",
                                       order_by=["attributes.start_time DESC"], max_results=1)
        return {"mlflow.parentRunId": runs[0].info.run_id} if runs else {}

    def params(self, values: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flat(values).items()]
        for start in range(0, len(items), MLFLOW_BATCH):
            self.client.log_batch(self.id, params=items[start:start + MLFLOW_BATCH])

    def scalars(self, prefix: str, step: int, **values) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.id, metrics=[Metric(f"{prefix}/{k}", float(v), now, step) for k, v in values.items()])

    def tags(self, **values) -> None:
        for key, value in values.items():
            self.client.set_tag(self.id, key, str(value))

    def finish(self, **tags) -> None:
        self.tags(**tags)
        self.client.set_terminated(self.id, "FINISHED")


class WandbRun(Off):
    """One W&B run (WANDB_MODE=offline keeps it on disk, under WANDB_DIR): new, or resumed by id."""

    def __init__(self, settings: dict, run_id: str | None, tags: dict, group: str | None = None):
        wandb = need_package("wandb")
        self.run = wandb.init(project=settings["experiment"], name=settings["name"], id=run_id,
                              resume="allow" if run_id else None, group=group, config={"tags": tags})
        self.id = self.run.id

    def params(self, values: dict) -> None:
        self.run.config.update(flat(values), allow_val_change=True)

    def scalars(self, prefix: str, step: int, **values) -> None:
        self.run.log({f"{prefix}/{k}": v for k, v in values.items()}, step=step)

    def tags(self, **values) -> None:
        for key, value in values.items():
            self.run.summary[key] = str(value)

    def finish(self, **tags) -> None:
        self.tags(**tags)
        self.run.finish()


def open_run(settings: dict, run_id: str | None, tags: dict, parent: str | None = None):
    """The chosen backend's run (parent: the pretraining run's name a fine-tuning trial belongs to)."""
    if settings["backend"] == "mlflow":
        return MLflowRun(settings, run_id, tags, parent_of=parent)
    if settings["backend"] == "wandb":
        return WandbRun(settings, run_id, tags, group=parent or settings["name"])
    return Off()


def for_pretraining(text: str | None, run_name: str, state_dir: Path, resumed: bool, rank: int, facts: dict):
    """Rank 0's tracked run of this training state: the one named in state_dir/tracking.json when
    the run resumed a checkpoint (same backend), else a new one, logged with `facts` as params."""
    settings = parse(text)
    if rank != 0 or settings["backend"] == "none":
        return Off()
    settings["name"] = run_name = settings["name"] or run_name     # the rule names it; by hand: --card's run
    id_file = Path(state_dir) / ID_FILE
    known = json.loads(id_file.read_text()) if resumed and id_file.exists() else {}
    run_id = known.get("id") if known.get("backend") == settings["backend"] else None
    run = open_run(settings, run_id, {"xbert_stage": "pretrain", "xbert_run": run_name,
                                      "xbert_state_key": Path(state_dir).name})
    if run_id is None:
        atomic.write_json(id_file, {"backend": settings["backend"], "id": run.id})
        run.params(facts)
    print(f"tracking: {settings['backend']} run {run.id} ({'continued' if run_id else 'new'})", flush=True)
    return run


def log_trial(text: str | None, record: dict, settings: dict, out_dir: Path) -> None:
    """One fine-tuning trial as its own tracked run (dev_metrics.json's record: hparams, scores)."""
    tracking = parse(text)
    if tracking["backend"] == "none":
        return
    run_name = tracking["name"] or "trial"
    tracking["name"] = f"{run_name}/{record['task']}/{Path(out_dir).name}"
    run = open_run(tracking, None, {"xbert_stage": "finetune", "xbert_run": run_name, "xbert_task": record["task"]},
                   parent=run_name)
    run.params({"task": record["task"], "hparams": record["hparams"], "settings": settings})
    run.scalars("dev", record["steps"], score=record["score"], **record["metrics"])
    run.scalars("train", record["steps"], final_loss=record["final_train_loss"], seconds=record["seconds"])
    run.finish(init_model=record["init_model"], trial_dir=str(Path(out_dir).resolve()))
    print(f"tracking: {tracking['backend']} run {run.id} ({tracking['name']})", flush=True)


class Fanout:
    """The loop's scalar sink: TensorBoard and the tracked run, each given every log line.
    close() closes TensorBoard only: the tracked run is finished after the export (finish)."""

    def __init__(self, tensorboard, tracker):
        self.tensorboard, self.tracker = tensorboard, tracker

    def scalars(self, prefix: str, step: int, **values) -> None:
        self.tensorboard.scalars(prefix, step, **values)
        self.tracker.scalars(prefix, step, **values)

    def close(self) -> None:
        self.tensorboard.close()
