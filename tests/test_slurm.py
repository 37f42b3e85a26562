"""The workflow on a real SLURM cluster on localhost, through `--profile profiles/slurm`.

One private cluster per session (tests/slurm/cluster.py: one node, 2 fake GPUs, partitions
xbert and xbert-gpu). The demo runs once through sbatch with a pretraining budget (90 s)
longer than its first time limit (1 min), so the first pretraining job is stopped by SLURM, saves a
checkpoint on SIGTERM, and Snakemake's retry resumes it. Skips, saying why, only where SLURM
cannot be installed (tests/slurm/install.sh needs root and Debian packages).
"""
import collections
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.helpers.workflow import SUBMISSION_FILES, copy_repo, feature_config
from tests.slurm import cluster

pytestmark = pytest.mark.slurm

HERE = Path(__file__).resolve().parent
DEMO_CONFIG = "tests/configs/slurm-demo.yaml"   # the demo with a 90 s pretraining budget (in the copy)
BUDGET_H = feature_config("slurm-demo")["runs"]["demo"]["total_training_time"]
# Jobs that ask for a GPU, which the plugin's partition selection sends to xbert-gpu (the demo
# pretrains on the CPU, gpus: 0, so its pretrain jobs go to xbert).
GPU_RULES = {"finetune_trial"}
# "Job 3 has been submitted with SLURM jobid 12 (log: .../slurm_logs/rule_make_samples/<wildcards>/12.log)."
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/rule_([A-Za-z0-9_]+)/")


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A running localhost cluster: (state folder, environment in which clients reach it)."""
    if cluster.install_hint():
        res = subprocess.run(["bash", str(HERE / "slurm" / "install.sh")], capture_output=True, text=True, timeout=900)
        hint = cluster.install_hint()
        if hint:
            said = (res.stdout + res.stderr).strip().splitlines()[-3:]
            pytest.skip(f"{hint}; tests/slurm/install.sh said: {' | '.join(said)}")
    root = tmp_path_factory.mktemp("slurm")
    # 8 CPUs and 128 GB declared (not enforced: no cgroups), so the profile's real-cluster
    # requests (4 CPUs and 16 GB per trial...) are scheduled as they are, 2 trials at a time.
    try:
        cluster.start(root, gpus=2, kill_wait=30, cpus=8, mem_mb=128000)
    except SystemExit as e:  # installed but not starting: a failure to see, not a skip
        pytest.fail(f"the localhost SLURM cluster did not start: {e}")
    # The venv's python and snakemake for the jobs, behind the srun wrapper that keeps SLURM_CONF.
    env = cluster.client_env(root, dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"))
    env.update(SNAKEMAKE_SLURM_PARTITIONS=str(HERE / "slurm" / "partitions.yaml"), PYTHONUNBUFFERED="1")
    yield root, env
    cluster.stop(root)


def layered_profile(repo: Path, dest: Path) -> Path:
    """tests/slurm/profile over profiles/slurm, set-resources merged rule by rule and key by key
    (a later profile would otherwise replace the whole key); passed as --workflow-profile."""
    base = yaml.safe_load((repo / "profiles/slurm/config.v8+.yaml").read_text())
    test = yaml.safe_load((HERE / "slurm/profile/config.v8+.yaml").read_text())
    merged = dict(test)
    for key in ("default-resources", "set-resources"):
        if key in test:
            combined = dict(base.get(key, {}))
            for name, value in test[key].items():
                combined[name] = {**combined.get(name, {}), **value} if isinstance(value, dict) else value
            merged[key] = combined
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.v8+.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return dest


def run_snakemake(workdir: Path, env: dict, *args, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)


def through_slurm(repo: Path, workdir: Path, env: dict, *args, timeout: int = 900) -> subprocess.CompletedProcess:
    profile = layered_profile(repo, workdir.parent / f"{workdir.name}-profile")
    return run_snakemake(workdir, env, "--profile", str(repo / "profiles/slurm"),
                         "--workflow-profile", str(profile), *args, timeout=timeout)


def jobcomp(root: Path) -> dict:
    """SLURM's job-completion records (jobcomp/filetxt): job id -> {field: value}."""
    path = root / "jobcomp.txt"
    records = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
               for line in (path.read_text().splitlines() if path.exists() else []) if line.strip()]
    return {r["JobId"]: r for r in records}


def submissions(proc) -> list:
    """(SLURM job id, rule) for every sbatch the executor made, in order."""
    return [(m[1], m[2]) for m in SUBMITTED.finditer(proc.stdout + proc.stderr)]


def failure_report(proc, workdir: Path) -> str:
    """Snakemake's last words and the logs (rule log, SLURM log) of each job that failed."""
    named = re.findall(r"^\s+log: (.+?)(?: \(check log file|$)", proc.stdout + proc.stderr, re.M)
    paths = dict.fromkeys(workdir / p.strip() for entry in named for p in entry.split(","))
    tails = [f"--- {p}\n{p.read_text(errors='replace')[-2500:]}" for p in paths if p.is_file()]
    return f"exit {proc.returncode}\n{proc.stderr[-4000:]}\n" + "\n".join(tails[-6:])


# --- the profile on a two-rule workflow: placement, partitions and GPU assignment ------------


def test_profile_places_cpu_and_gpu_jobs(slurm, tmp_path, repo_root):
    root, env = slurm
    work = tmp_path / "two_rules"
    work.mkdir()
    # Rule names of the real workflow, so the profile's set-resources apply to them.
    (work / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input: "trial.txt", "per_gpu.txt"
        rule make_samples:
            output: "samples.txt"
            shell: "echo $SLURM_JOB_ID $SLURM_JOB_PARTITION > {output}"
        rule finetune_trial:
            input: "samples.txt"
            output: "trial.txt"
            resources: gpu=1
            shell: "echo $SLURM_JOB_ID $SLURM_JOB_PARTITION ${{CUDA_VISIBLE_DEVICES:-none}} $SLURM_CPUS_PER_TASK > {output}"
        rule per_gpu:
            output: "per_gpu.txt"
            resources: gpu=2, cpus_per_gpu=3
            shell: "echo ${{SLURM_CPUS_PER_TASK:-unset}} $(PYTHONPATH=REPO python -m workflow_scripts.slurm_cpus) > {output}"
    """).replace("REPO", shlex.quote(str(repo_root))))
    proc = through_slurm(repo_root, work, env, timeout=300)
    assert proc.returncode == 0, failure_report(proc, work)
    cpu_job, cpu_partition = (work / "samples.txt").read_text().split()
    gpu_job, gpu_partition, gpus, cpus = (work / "trial.txt").read_text().split()
    assert (cpu_partition, gpu_partition) == ("xbert", "xbert-gpu")
    assert gpus == "0", "SLURM hands the trial one GPU of its own"
    assert cpus == "4", "the profile's cpus_per_task for a trial"
    # --cpus-per-gpu leaves SLURM_CPUS_PER_TASK unset; a rule's threads (all_cores) count per GPU.
    assert (work / "per_gpu.txt").read_text().split() == ["unset", "6"]
    records = jobcomp(root)
    assert [s for s, rule in submissions(proc) if rule != "per_gpu"] == [cpu_job, gpu_job]
    assert records[cpu_job]["JobState"] == records[gpu_job]["JobState"] == "COMPLETED"


def test_without_a_partitions_file_every_job_goes_to_the_default_partition(slurm, tmp_path, repo_root):
    _, env = slurm
    env = {k: v for k, v in env.items() if k != "SNAKEMAKE_SLURM_PARTITIONS"}
    work = tmp_path / "default"
    work.mkdir()
    (work / "Snakefile").write_text(textwrap.dedent("""
        rule finetune_trial:
            output: "trial.txt"
            resources: gpu=1
            shell: "echo $SLURM_JOB_PARTITION > {output}"
    """))
    proc = through_slurm(repo_root, work, env, timeout=300)
    assert proc.returncode == 0, failure_report(proc, work)
    assert (work / "trial.txt").read_text().split() == ["xbert"]  # the cluster's Default=YES


# --- the demo through sbatch, with a time-limited pretraining -------------------------------


@pytest.fixture(scope="session")
def slurm_demo(slurm, tmp_path_factory, repo_root, resources):
    root, env = slurm
    workdir = tmp_path_factory.mktemp("slurm_demo")
    copy_repo(repo_root, workdir, resources)
    # 90 s of training against the test profile's first 1-minute limit (enforced at 60-90 s,
    # startup and Snakemake's own start come first), so the first job cannot finish.
    plan = run_snakemake(workdir, env, "-n", "--cores", "1", "--configfile", DEMO_CONFIG, timeout=300)
    assert plan.returncode == 0, plan.stderr[-3000:]
    table = (plan.stdout + plan.stderr).split("Job stats:", 1)[1]
    planned = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] not in ("total", "all")}
    before = set(jobcomp(root))
    proc = through_slurm(repo_root, workdir, env, "--configfile", DEMO_CONFIG, timeout=1200)
    assert proc.returncode == 0, failure_report(proc, workdir)
    records = {k: v for k, v in jobcomp(root).items() if k not in before}
    return {"dir": workdir, "proc": proc, "planned": planned, "records": records, "env": env}


def test_every_job_went_through_sbatch(slurm_demo):
    planned, records = slurm_demo["planned"], slurm_demo["records"]
    sent = submissions(slurm_demo["proc"])
    per_rule = collections.Counter(rule for _, rule in sent)
    # Each planned job was one sbatch job; pretraining needed more than one (the retry).
    assert {r: n for r, n in per_rule.items() if r != "pretrain"} == {r: n for r, n in planned.items() if r != "pretrain"}
    assert per_rule["pretrain"] >= 2
    # SLURM itself recorded each of those jobs, and nothing else, as finished.
    assert set(records) == {job for job, _ in sent}
    uuid = {rec["Name"] for rec in records.values()}
    assert len(uuid) == 1, f"jobs from more than one Snakemake run: {uuid}"
    for job, rule in sent:
        rec = records[job]
        assert rec["Partition"] == ("xbert-gpu" if rule in GPU_RULES else "xbert"), (rule, rec)
        if rule != "pretrain":
            assert rec["JobState"] == "COMPLETED", (rule, rec)
    # A trial asked SLURM for a GPU (scontrol keeps finished jobs for MinJobAge).
    trial = next(job for job, rule in sent if rule == "finetune_trial")
    shown = subprocess.run(["scontrol", "show", "job", trial], env=slurm_demo["env"], capture_output=True, text=True).stdout
    assert "gpu:1" in shown, shown


def test_submission_zip_is_complete(slurm_demo):
    with zipfile.ZipFile(slurm_demo["dir"] / "submission.zip") as zf:
        assert set(zf.namelist()) == SUBMISSION_FILES
        for name in zf.namelist():
            assert zf.read(name).decode().splitlines()[0] == "index\tprediction"
    check = subprocess.run([sys.executable, "-m", "workflow_scripts.glue.validate_submission", str(slurm_demo["dir"] / "submission.zip")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_time_limited_pretraining_checkpoints_and_resumes_on_retry(slurm_demo):
    sent = submissions(slurm_demo["proc"])
    attempts = [slurm_demo["records"][job] for job, rule in sent if rule == "pretrain"]
    # The first job hit its 1-minute limit; the retry (10 minutes) finished the budget.
    assert [a["JobState"] for a in attempts] == ["TIMEOUT", "COMPLETED"], attempts
    assert [a["TimeLimit"] for a in attempts] == ["1", "10"]
    events = [json.loads(line) for line in (slurm_demo["dir"] / "results/runs/demo/pretrain_log.jsonl").open()]
    resumes = [e for e in events if e["event"] == "resume"]
    assert resumes and resumes[0]["step"] > 0 and resumes[0]["elapsed_s"] > 0, "the retry started from scratch"
    end = events[-1]
    assert end["event"] == "end" and end["reason"] == "budget"
    assert end["elapsed_s"] >= BUDGET_H * 3600
    model = slurm_demo["dir"] / "results/runs/demo/model"
    assert {"config.json", "model.safetensors"} <= {p.name for p in model.iterdir()}
