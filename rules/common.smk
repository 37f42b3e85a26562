# Between config and rules: validation, the tables of corpora/shards/runs/trials, input functions.
import json
import math
import os
import shlex
import sys
from pathlib import Path

from workflow_scripts import config_checks, config_effects, slurm_cpus, stale_lock
from workflow_scripts.data import tokenizer as tokenizer_folder
from workflow_scripts.data.sources import download, textfiles
from workflow_scripts.errors import BadInput
from workflow_scripts.glue import grid, tasks

# A lock a killed run left, whose holder no longer runs, is removed before Snakemake checks it, so
# the same command resumes without `snakemake --unlock`; a live holder is named (stale_lock.py).
# Jobs Snakemake spawns (a cluster job, a subprocess) parse this too: they leave the lock alone.
if workflow.is_main_process and (notice := stale_lock.check()):
    print(notice, file=sys.stderr)


onstart:
    stale_lock.record_owner()


onsuccess:
    stale_lock.forget_owner()


onerror:
    stale_lock.forget_owner()


# Parse-time checks: bad config, or a local input the config names that is missing, stops the plan
# with one line on stderr before any job runs, so nothing already made is touched (Snakemake would
# add its own header and a stack). URLs are checked when downloaded.


def one_line_or_stop(check):
    try:
        check()
    except BadInput as e:
        raise SystemExit(str(e)) from None


def check_local_inputs():
    """Each corpus's local path, a local tokenizer folder's vocabulary, each asked-for GLUE task's files."""
    for name, source in config["corpora"].items():
        path = source.get("path")
        if source["type"] in ("wikipedia", "text") and not download.is_url(path) and not os.path.exists(path):
            raise BadInput(
                f"corpora.{name}.path: {path} does not exist (relative to {os.getcwd()}): fix the path or remove the corpus"
            )
        if source["type"] == "text" and not download.is_url(path):
            try:
                textfiles.list_files(Path(path))  # a folder (or file) holding no .txt/.jsonl/.parquet
            except BadInput as e:
                raise BadInput(
                    f"corpora.{name}.path: {str(e).removeprefix('corpus: ')}: point it at a text file or a folder of them"
                ) from None
    if config["tokenizer"].get("pretrained"):
        tokenizer_folder.check_pretrained(config["tokenizer"]["pretrained"])
    if config["glue"]["source"] != "dir":
        return
    folder = config["glue"]["path"]
    asked = config["finetune"]["tasks"]
    # Under STILTs MNLI is fine-tuned first, even where finetune.tasks leaves it out.
    stilts = [t for t in config["finetune"]["stilts"] if t in asked]
    for task in asked + (["MNLI"] if stilts and "MNLI" not in asked else []):
        for f in tasks.split_files(tasks.TASKS[task]):
            if not os.path.isfile(os.path.join(folder, f)):
                where = "" if os.path.isdir(folder) else f"; glue.path {folder} is no folder"
                raise BadInput(
                    f"glue: task {task} needs {os.path.join(folder, f)}, which does not exist{where}: "
                    f"point glue.path at a GLUE-layout folder, or drop {task} from "
                    + ("finetune.tasks" if task in asked else "finetune.stilts (STILTs starts from MNLI)")
                )


one_line_or_stop(lambda: config_checks.validate(config, Path(workflow.basedir) / "config" / "schema.yaml"))
one_line_or_stop(check_local_inputs)

GLUE_TASKS = list(tasks.TASKS)  # the one task list: workflow_scripts/glue/tasks.py
RUNS = list(config["runs"])
TASKS = config["finetune"]["tasks"]
# One train shard (and one valid shard) per text part, named as the part is: {corpus}/part_{part}
# (issue 14), so a shard always means one text part, whatever other corpora come and go.
PARTS = [(name, i) for name, source in config["corpora"].items() for i in range(source["parts"])]
TEXT_PARTS = [f"results/text/{name}/part_{i}.txt" for name, i in PARTS]


wildcard_constraints:
    run="|".join(RUNS),
    task="|".join(t.replace("-", r"\-") for t in GLUE_TASKS),
    trial=grid.TRIAL_PATTERN,
    part=r"\d+",


# Shell lines (issue 14): no config value is pasted into a command unquoted. Config slices reach a
# script as data, one JSON word made by json_arg; every path is `{x:q}` in the shell line (corpus and
# run names are also held to a safe pattern by the schema, and a download's file name is sanitised,
# see download.url_filename). A params value that is already shell words (json_arg, shell_flag, the
# launcher) is used without `:q`; tests/test_shell_injection.py checks each shell line for this.


def json_arg(value):
    """A config slice as one shell word; sorted keys keep the params text stable across runs."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def shell_flag(flag, value):
    """`flag value` with the value quoted as one shell word, or nothing where there is no value."""
    return f"{flag} {shlex.quote(str(value))}" if value else ""


# Corpora: what each extraction job reads and is told.


def local_source(name, source):
    """The corpus slice its job gets: a URL `path` replaced by the downloaded copy, and without
    `weight`, which only the samples jobs use (a weight edit must not re-extract the text). A
    `documents` block of by: row (a row each, the default) says nothing more and is left out, so
    corpora made before the block existed are not re-extracted."""
    local = {k: v for k, v in source.items() if k != "weight"}
    if (local.get("documents") or {}).get("by") == "row":
        del local["documents"]
    if download.is_url(source.get("path") or "") and source["type"] != "huggingface":
        local["path"] = f"resources/corpora/{name}/{download.url_filename(source['path'])}"
    return local


def tokenizer_params():
    """config.tokenizer for its job, a null train.strip_accents (follow lowercase, the default) left
    out, so tokenizers trained before the key existed are not retrained."""
    spec = json.loads(json.dumps(config["tokenizer"]))
    if (spec.get("train") or {}).get("strip_accents", False) is None:
        del spec["train"]["strip_accents"]
    return spec


def corpus_input(name, source):
    """The files a corpus job reads (nothing for a Hugging Face dataset: it reads the hub). A
    folder is listed, so editing one file in it reruns the corpus, not only adding one."""
    if source["type"] not in ("wikipedia", "text"):
        return []
    path = local_source(name, source)["path"]
    if source["type"] == "text" and os.path.isdir(path):
        return [str(p) for p in textfiles.list_files(Path(path))]
    return [path]


def earlier_corpora(name):
    """The corpora before `name` in config order: the ones whose copies of a document win over its."""
    names = list(config["corpora"])
    return names[: names.index(name)]


def earlier_hashes(wildcards):
    """The document hashes a corpus's duplicates job checks against, in config order."""
    return [f"results/text/{c}/doc_hashes.npz" for c in earlier_corpora(wildcards.corpus)]


def tokenizer_input():
    """Training reads the text parts; a pretrained tokenizer in a local folder is its files."""
    spec = config["tokenizer"]
    if "train" in spec:
        return TEXT_PARTS
    if os.path.isdir(spec["pretrained"]):
        return sorted(str(p) for p in Path(spec["pretrained"]).iterdir() if p.is_file())
    return []


def part_files(pattern):
    """`pattern` (with {corpus} and {part}) for every text part, in config order."""
    return [pattern.format(corpus=name, part=i) for name, i in PARTS]


def all_train_shards():
    return part_files("results/samples/train/{corpus}/part_{part}.h5")


def all_valid_shards():
    return part_files("results/samples/valid/{corpus}/part_{part}.h5")


def all_sample_stats():
    return part_files("results/samples/stats/{corpus}/part_{part}.json")


def part_weight(wildcards):
    """The corpus weight of a text part (a params function of the wildcard: an edit reruns its jobs)."""
    return config["corpora"][wildcards.corpus]["weight"]


def task_trials(task):
    return grid.trials(config["finetune"]["grid"], config["finetune"]["seeds"], task)


def trial_files(run, task, name):
    return [f"results/runs/{run}/glue/{task}/{trial}/{name}" for trial in task_trials(task)]


# STILTs (Phang et al. 2018; ExtremeBERT for RTE, MRPC, STS-B): these tasks' trials start from
# the run's selected MNLI model. Only tasks the config fine-tunes count.
STILTS = [t for t in config["finetune"]["stilts"] if t in TASKS]


# What an edit reruns is declared once in config/schema.yaml (x-effect) and read by config_effects:
# each rule's tracked params hold what changes its results, the jobs get the whole slice untracked.


def untracked(param):
    """`param(wildcards)` as a params function Snakemake does not track. Snakemake 9 makes a param
    a rerun trigger unless its function takes `output` (as it does for derived params), so the
    wrapper takes it and ignores it: an edit of what it returns reaches the next job without
    making the outputs stale. Only for values whose results-changing part is also tracked."""

    def of_output(wildcards, output):
        return param(wildcards)

    return of_output


def recipe_tracked(wildcards):
    """Pretraining's rerun trigger: what changes the model or where the run stops."""
    return json_arg(config_effects.tracked_recipe(config["runs"][wildcards.run]))


def whole_recipe(wildcards):
    """The whole recipe the job runs (handed over untracked, see recipe_tracked)."""
    return json_arg(config["runs"][wildcards.run])


def tracking_arg(wildcards):
    """`--tracking JSON` (config tracking + the pretraining run's name), or nothing under backend none.
    Handed over untracked: tracking is logging only (x-effect placement)."""
    if config["tracking"]["backend"] == "none":
        return ""
    return shell_flag("--tracking", json.dumps({**config["tracking"], "name": wildcards.run}, sort_keys=True))


def pretrain_card_arg(wildcards):
    """What the run's model card says about its data: each corpus, its source and its shards (untracked:
    corpora are tracked through the shards themselves)."""
    corpora = {
        name: {
            "type": source["type"],
            "source": source.get("path") or source.get("name"),
            "shards": [k for k, (c, _) in enumerate(PARTS) if c == name],  # positions in the train list
        }
        for name, source in config["corpora"].items()
    }
    return json_arg({"run": wildcards.run, "corpora": corpora})


def finetune_settings(wildcards):
    """What every trial is handed: the fine-tuning section less its plan keys (handed over
    untracked; config_effects.finetune_tracked is its rerun trigger)."""
    return json_arg(config_effects.finetune_settings(config["finetune"]))


def start_model(wildcards):
    """A trial's starting model: the pre-trained one, or for a STILTs task the run's selected MNLI model."""
    if wildcards.task in STILTS:
        return f"results/runs/{wildcards.run}/glue/MNLI/best_model"
    return f"results/runs/{wildcards.run}/model"


def glue_files(wildcards):
    """The task's files in a GLUE folder (a missing one stops the plan); none from the hub (datasets caches it)."""
    if config["glue"]["source"] != "dir":
        return []
    return [os.path.join(config["glue"]["path"], f) for f in tasks.split_files(tasks.TASKS[wildcards.task])]


def hub_cache_arg(wildcards):
    """--cache-dir for the hub reader (placement: handed over untracked, see glue.cache_dir)."""
    cache = config["glue"]["cache_dir"]
    return shell_flag("--cache-dir", cache if config["glue"]["source"] == "huggingface" else None)


def keep_model_arg(wildcards, output):
    """The flag that writes the job's model folder, where its outputs include one (MNLI under STILTs)."""
    return shell_flag("--model-out", output.model if "model" in output.keys() else None)


def run_curves_reported():
    """Each run's own loss/LR curves, in RUNS order (the report rule's --pretrain-logs order), shown
    in Snakemake's report under that run. (Snakemake's parser takes a line that starts with `report(`
    for the directive, hence the name.)"""
    flagged = report
    caption = "../report/run_curves.rst"
    return [
        flagged(f"results/report/runs/{run}/loss_curves.png", caption=caption, category="Pretraining", subcategory=run)
        for run in RUNS
    ]


def submission_possible():
    return set(GLUE_TASKS) <= set(TASKS)


def final_targets():
    targets = ["results/report/glue_dev.md", "results/report/loss_curves.png", "results/report/data.md"]
    if submission_possible():
        targets += expand("results/runs/{run}/submission.zip", run=RUNS) + ["submission.zip"]
    return targets


# Resources: what a job asks of a machine or a SLURM scheduler (profiles/ say where it runs).


def all_cores(wildcards):
    """Threads for a job that wants the whole machine: every core given locally (--cores).
    Inside a SLURM job, the CPUs sbatch granted (per task, or per GPU x GPUs: workflow_scripts.slurm_cpus),
    so the submitting side (no --cores: 1, unless the profile sets cpus_per_task or cpus_per_gpu)
    and the job step ask srun for the same."""
    return slurm_cpus.granted_cpus() or workflow.resource_settings.cores or 1


# Time limit of a step-scheduled run that sets no total_training_time (ExtremeBERT counts
# steps): its time is not known beforehand, so ask for a day (ExtremeBERT's 23k steps are its
# "1 day" budget); the profile's set-resources pretrain runtime overrides it.
STEP_RUN_MINUTES = 24 * 60


def pretrain_minutes(wildcards):
    """Time limit (runtime, minutes) of a pretraining job. The budget counts training only, so
    add 10% and 30 min for startup, validation, checkpoints and export. Where a partition allows
    less, the profile sets runtime: the job checkpoints on SIGTERM and its retry resumes."""
    hours = config["runs"][wildcards.run].get("total_training_time")
    if hours is None:
        return STEP_RUN_MINUTES
    return math.ceil(hours * 60 * 1.1) + 30


def pretrain_launcher(wildcards, resources):
    """python (CPU or one GPU); torchrun for several GPUs of one node; with nodes > 1 (SLURM
    profile), one torchrun per node started by srun, meeting at a c10d rendezvous on the
    allocation's first node (a port of its own per job). The plugin strips SLURM_* variables
    from the job step, so srun is told CPUs, memory and GPUs explicitly. Shell words: only
    integers (int() on what a profile sets) go into it, so it is pasted in unquoted."""
    gpus = int(config["runs"][wildcards.run]["implementation"]["gpus"])
    nodes = int(getattr(resources, "nodes", 1) or 1)
    if nodes > 1:
        cpus = int(getattr(resources, "cpus_per_task", 0) or getattr(resources, "cpus_per_gpu", 1) * max(gpus, 1))
        gres = f" --gres=gpu:{gpus}" if gpus else ""
        per_node = (
            f"exec torchrun --nnodes=$SLURM_NNODES --nproc_per_node={max(gpus, 1)} --rdzv_backend=c10d"
            ' --rdzv_endpoint=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1):$((29500 + SLURM_JOB_ID % 20000))'
            ' --rdzv_id=$SLURM_JOB_ID "$@"'
        )
        return (
            f"srun --nodes={nodes} --ntasks-per-node=1 --cpus-per-task={cpus} --mem=0{gres} --kill-on-bad-exit=1"
            f" bash -c '{per_node}' torchrun"
        )
    if gpus > 1:
        return f"torchrun --standalone --nproc_per_node {gpus}"
    return "python"
