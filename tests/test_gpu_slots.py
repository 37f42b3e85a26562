"""workflow_scripts.gpu_slots: concurrent local jobs get distinct GPUs, wait for free ones, free them on any exit."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import probes

# Each fake job writes "<gpu ids> <start> <end>" (seconds since the epoch): tests/probes/hold_gpus.py.
HOLD = probes.command("hold_gpus")
SHOW = probes.command("show_gpu_env")


@pytest.fixture
def gpu_env(tmp_path, repo_root):
    """Three fake GPUs (ids 0,1,2) and a private lock folder; no SLURM job around us."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(CUDA_VISIBLE_DEVICES="0,1,2", XBERT_GPU_LOCK_DIR=str(tmp_path / "locks"), PYTHONPATH=str(repo_root))
    return env


def slots(n, *command, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "workflow_scripts.gpu_slots", str(n), "--", *command],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def record(path: Path):
    ids, start, end = path.read_text().split()
    return ids.split(","), float(start), float(end)


def test_concurrent_jobs_get_distinct_gpus(gpu_env, tmp_path):
    procs = [slots(n, *HOLD, str(tmp_path / f"job{i}"), "1.5", env=gpu_env) for i, n in enumerate([1, 2])]
    assert all(p.wait(timeout=30) == 0 for p in procs)
    (a, *_), (b, *_) = record(tmp_path / "job0"), record(tmp_path / "job1")
    assert len(a) == 1 and len(b) == 2
    assert sorted(a + b) == ["0", "1", "2"]


def test_waits_while_too_few_are_free_then_runs(gpu_env, tmp_path):
    first = slots(2, *HOLD, str(tmp_path / "first"), "2", env=gpu_env)
    # Its GPUs are held once it says which it got (a fixed sleep raced on a loaded machine).
    assert first.stderr.readline().startswith("gpu_slots: CUDA_VISIBLE_DEVICES=")
    second = slots(2, *HOLD, str(tmp_path / "second"), "0", env=gpu_env)
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0
    ids1, _, end1 = record(tmp_path / "first")
    ids2, start2, _ = record(tmp_path / "second")
    assert start2 >= end1 - 0.05, "the second job ran while the first still held its GPUs"
    assert "waiting for 2 free GPU(s)" in second.stderr.read()


def test_lock_is_freed_when_the_job_is_killed(gpu_env, tmp_path):
    holders = [slots(1, "sleep", "60", env=gpu_env) for _ in range(3)]
    for holder in holders:   # all three GPUs held once each says which it got
        assert holder.stderr.readline().startswith("gpu_slots: CUDA_VISIBLE_DEVICES=")
    holders[1].send_signal(signal.SIGKILL)
    holders[1].wait(timeout=10)
    t0 = time.time()
    late = slots(1, *HOLD, str(tmp_path / "late"), "0", env=gpu_env)
    assert late.wait(timeout=20) == 0
    for p in (holders[0], holders[2]):
        p.kill()
        p.wait()
    ids, start, _ = record(tmp_path / "late")
    assert len(ids) == 1 and start - t0 < 5


def test_zero_gpus_hides_them_and_slurm_jobs_pass_through(gpu_env):
    out = subprocess.run([sys.executable, "-m", "workflow_scripts.gpu_slots", "0", "--", *SHOW],
                         env=gpu_env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["''", "cpu"]
    # Inside a SLURM job, SLURM has already chosen: the command sees its allocation unchanged.
    slurm = dict(gpu_env, SLURM_JOB_ID="7", CUDA_VISIBLE_DEVICES="3")
    out = subprocess.run([sys.executable, "-m", "workflow_scripts.gpu_slots", "1", "--", *SHOW],
                         env=slurm, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "'3'"
    # ...also when the rule asks for 0 (a multi-node launch asks srun for the GPUs itself).
    out = subprocess.run([sys.executable, "-m", "workflow_scripts.gpu_slots", "0", "--", *SHOW],
                         env=slurm, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "'3'"


def test_asking_more_gpus_than_exist_is_one_clear_line(gpu_env):
    res = subprocess.run([sys.executable, "-m", "workflow_scripts.gpu_slots", "4", "--", "true"],
                         env=gpu_env, capture_output=True, text=True)
    assert res.returncode == 1
    assert res.stderr.strip() == "gpu_slots: the job needs 4 GPUs, this machine offers 3 (0,1,2)"


@pytest.mark.workflow
def test_snakemake_local_jobs_never_share_a_gpu(gpu_env, tmp_path, repo_root):
    """Six gpu=1 jobs, four at a time, three GPUs: no two overlapping jobs hold the same GPU id."""
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(textwrap.dedent(f"""
        rule all:
            input: expand("out/{{i}}.txt", i=range(6))
        rule job:
            output: "out/{{i}}.txt"
            resources: gpu=1
            shell: "{sys.executable} -m workflow_scripts.gpu_slots {{resources.gpu}} -- {' '.join(HOLD)} {{output}} 1"
    """))
    res = subprocess.run([sys.executable, "-m", "snakemake", "--profile", str(repo_root / "profiles" / "local"),
                          "--cores", "4", "--retries", "0", "-d", str(work), "-s", str(work / "Snakefile")],
                         env=gpu_env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = [record(work / "out" / f"{i}.txt") for i in range(6)]
    assert all(len(ids) == 1 for ids, _, _ in jobs)
    for i, (ids_a, s_a, e_a) in enumerate(jobs):
        for ids_b, s_b, e_b in jobs[i + 1:]:
            overlap = s_a < e_b and s_b < e_a
            assert not (overlap and ids_a == ids_b), f"GPU {ids_a[0]} shared by two running jobs"
    # Four jobs at a time on three GPUs: every GPU was handed out, none twice at once.
    assert len({ids[0] for ids, _, _ in jobs}) == 3
