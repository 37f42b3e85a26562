# Between config and rules: validation, the tables of corpora/shards/runs/trials, input functions.
import json
import math
import os
import shlex
from pathlib import Path

from workflow_scripts import config_checks, grid

config_checks.validate(config, Path(workflow.basedir) / "config" / "schema.yaml")

GLUE_TASKS = ["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"]
RUNS = list(config["runs"])
TASKS = config["finetune"]["tasks"]
# One train shard (and one valid shard) per text part, numbered across corpora.
TEXT_PARTS = [
    f"results/text/{name}/part_{i}.txt"
    for name, source in config["corpora"].items()
    for i in range(source["parts"])
]
SHARDS = list(range(len(TEXT_PARTS)))


wildcard_constraints:
    run="|".join(RUNS),
    task="|".join(t.replace("-", r"\-") for t in GLUE_TASKS),
    trial=r"lr[^/_]+_bs\d+_ep[^/_]+_seed-?\d+",
    k=r"\d+",


def json_arg(value):
    """A config slice as one shell word; sorted keys keep the params text stable across runs."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def all_train_shards():
    return expand("results/samples/train/shard_{k}.h5", k=SHARDS)


def all_valid_shards():
    return expand("results/samples/valid/shard_{k}.h5", k=SHARDS)


def task_trials(task):
    return grid.trials(config["finetune"]["grid"], config["finetune"]["seeds"], task)


def trial_files(run, task, name):
    return [f"results/runs/{run}/glue/{task}/{trial}/{name}" for trial in task_trials(task)]


def submission_possible():
    return set(GLUE_TASKS) <= set(TASKS)


def final_targets():
    targets = ["results/report/glue_dev.md", "results/report/loss_curves.png"]
    if submission_possible():
        targets += expand("results/runs/{run}/submission.zip", run=RUNS) + ["submission.zip"]
    return targets


# Resources: what a job asks of a machine or a SLURM scheduler (profiles/ say where it runs).


def all_cores(wildcards):
    """Threads for a job that wants the whole machine: every core given locally (--cores).
    Inside a SLURM job, the CPUs sbatch granted, so the submitting side (no --cores: 1, unless
    the profile sets cpus_per_task or cpus_per_gpu) and the job step ask srun for the same."""
    granted = os.environ.get("SLURM_CPUS_PER_TASK")
    return int(granted) if granted else (workflow.resource_settings.cores or 1)


def pretrain_minutes(wildcards):
    """Time limit (runtime, minutes) of a pretraining job. The budget counts training only, so
    add 10% and 30 min for startup, validation, checkpoints and export. Where a partition allows
    less, the profile sets runtime: the job checkpoints on SIGTERM and its retry resumes."""
    return math.ceil(config["runs"][wildcards.run]["total_training_time"] * 60 * 1.1) + 30
