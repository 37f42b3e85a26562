"""A private one-node SLURM cluster on localhost for the tests: write its config, start and stop it.

Everything (config, state, spool, logs, pid files, job-completion records) lives in one
folder, the daemons listen on free ports, and clients find the cluster through
SLURM_CONF, so nothing touches /etc/slurm and two clusters never collide.

    python tests/slurm/cluster.py start DIR [--gpus N] [--kill-wait S]   # prints the env to export
    python tests/slurm/cluster.py stop DIR

Facts behind the choices are in /work/shared/notes/ENVIRONMENT.md ("A real SLURM
cluster on localhost"): auth/none, linuxproc, no accounting database, fake GPUs as
character devices, and a `srun` wrapper because the executor's job step drops
SLURM_CONF before its inner srun.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Fake GPUs: gres wants one character device per GPU (regular files are refused); these
# exist on every Linux box, so no mknod (root + CAP_MKNOD) is needed.
FAKE_GPU_DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/random"]
PARTITIONS = ("xbert", "xbert-gpu")  # both hold the one node; the first is the default
DAEMONS = ("slurmctld", "slurmd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host() -> str:
    """The node's name: slurmd finds its own line in slurm.conf by it (short hostname)."""
    return socket.gethostname().split(".")[0]


def _mem_mb() -> int:
    """RealMemory must not exceed what slurmd detects, or the node is drained: leave 1 GiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return max(int(line.split()[1]) // 1024 - 1024, 512)
    return 1024


def install_hint() -> str | None:
    """None when the daemons and clients are installed, else what is missing."""
    missing = [exe for exe in ("slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol") if not shutil.which(exe)]
    return f"SLURM not installed (missing {', '.join(missing)}); run tests/slurm/install.sh as root" if missing else None


def write_config(root: Path, gpus: int = 2, kill_wait: int = 30, cpus: int | None = None, mem_mb: int | None = None) -> Path:
    """slurm.conf + gres.conf + the srun wrapper under root; returns the slurm.conf path.

    cpus/mem_mb may exceed the machine (SlurmdParameters=config_overrides, and nothing is
    enforced without cgroups), so a profile's real-cluster requests can be scheduled here."""
    if gpus > len(FAKE_GPU_DEVICES):
        raise SystemExit(f"at most {len(FAKE_GPU_DEVICES)} fake GPUs (asked for {gpus})")
    host = _host()
    for sub in ("state", "spool", "bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cpus = cpus or os.cpu_count() or 1
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=xbert-test",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={_free_port()}",
        f"SlurmdPort={_free_port()}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/none",
        "CredType=cred/none",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "AccountingStorageType=accounting_storage/none",
        "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none",
        # One line per finished job: the test's proof that every Snakemake job went through sbatch.
        "JobCompType=jobcomp/filetxt",
        f"JobCompLoc={root / 'jobcomp.txt'}",
        # squeue is the status command (no slurmdbd, so no sacct): finished jobs must stay
        # visible to it for well over 3x the executor's first status delay.
        "MinJobAge=3600",
        "DefMemPerCPU=1000",
        "MailProg=/bin/true",
        # Seconds between SIGTERM and SIGKILL at a time limit: the pretraining checkpoint window.
        f"KillWait={kill_wait}",
        "OverTimeLimit=0",
        "ReturnToService=2",
        # A container's CPU/memory topology rarely matches what we declare; don't drain for it.
        "SlurmdParameters=config_overrides",
        "SchedulerParameters=sched_min_interval=0,bf_interval=1",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'slurmd.log'}",
        f"PlugStackConfig={root / 'plugstack.conf'}",
        "GresTypes=gpu",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb or _mem_mb()}{gres} State=UNKNOWN",
        *(f"PartitionName={name} Nodes=ALL Default={'YES' if i == 0 else 'NO'} MaxTime=INFINITE State=UP"
          for i, name in enumerate(PARTITIONS)),
        "",
    ]))
    (root / "plugstack.conf").write_text("")
    (root / "gres.conf").write_text("".join(f"Name=gpu File={dev}\n" for dev in FAKE_GPU_DEVICES[:gpus]))
    real_srun = shutil.which("srun") or "/usr/bin/srun"
    wrapper = root / "bin" / "srun"
    wrapper.write_text(f'#!/bin/sh\n# The job step drops SLURM_CONF; put it back.\nexport SLURM_CONF={conf}\nexec {real_srun} "$@"\n')
    wrapper.chmod(0o755)
    return conf


def client_env(root: Path, base: dict | None = None) -> dict:
    """The environment in which sbatch/squeue/srun talk to this cluster."""
    env = dict(os.environ if base is None else base)
    env["SLURM_CONF"] = str(root / "slurm.conf")
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # A caller's own SLURM defaults (a login node's partition/account) must not leak in.
    for var in list(env):
        if var.startswith(("SBATCH_", "SRUN_", "SALLOC_")) or var in ("SLURM_JOB_ID", "SLURM_JOBID"):
            del env[var]
    return env


def _log_tail(root: Path, n: int = 15) -> str:
    out = []
    for daemon in DAEMONS:
        log = root / f"{daemon}.log"
        if log.exists():
            out.append(f"--- {log} (last {n} lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-n:]))
    return "\n".join(out)


def node_state(root: Path) -> str:
    res = subprocess.run(["sinfo", "-h", "-o", "%T"], env=client_env(root), capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else ""


def start(root: Path, gpus: int = 2, kill_wait: int = 30, cpus: int | None = None, mem_mb: int | None = None,
          timeout: float = 30) -> dict:
    """Write the config, start both daemons, wait for the node to be idle; returns client_env()."""
    root = Path(root).resolve()
    hint = install_hint()
    if hint:
        raise SystemExit(hint)
    stop(root)
    conf = write_config(root, gpus=gpus, kill_wait=kill_wait, cpus=cpus, mem_mb=mem_mb)
    env = client_env(root)
    # -c: a fresh cluster every time (no jobs or node state from an earlier run).
    for cmd in (["slurmctld", "-c", "-f", str(conf)], ["slurmd", "-c", "-f", str(conf), "-N", _host()]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}\n{_log_tail(root)}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node_state(root) == "idle":
            return env
        time.sleep(0.3)
    tail = _log_tail(root)
    stop(root)
    raise SystemExit(f"SLURM node not idle after {timeout:.0f} s (state {node_state(root)!r})\n{tail}")


def _pid(root: Path, daemon: str) -> int | None:
    try:
        return int((root / f"{daemon}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def stop(root: Path, timeout: float = 15) -> None:
    """Cancel this cluster's jobs, then stop its daemons by their pid files (never by name)."""
    root = Path(root).resolve()
    if not (root / "slurm.conf").exists():
        return
    env = client_env(root)
    ctld = _pid(root, "slurmctld")
    if ctld and _alive(ctld):
        # Jobs' step daemons outlive slurmd; cancelling first lets slurmd reap them.
        try:
            subprocess.run(["scancel", "--full", "--user", str(os.getuid())], env=env, capture_output=True, timeout=10)
            deadline = time.monotonic() + timeout / 2
            while time.monotonic() < deadline:
                res = subprocess.run(["squeue", "-h", "-o", "%i", "-t", "R,CG,PD"], env=env,
                                     capture_output=True, text=True, timeout=10)
                if res.returncode or not res.stdout.strip():
                    break
                time.sleep(0.5)
        except subprocess.TimeoutExpired:
            pass  # a controller that does not answer is stopped below all the same
    for daemon in ("slurmd", "slurmctld"):
        pid = _pid(root, daemon)
        if pid is None or not _alive(pid):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        (root / f"{daemon}.pid").unlink(missing_ok=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("dir", type=Path, help="folder for the cluster's config, state and logs")
    ap.add_argument("--gpus", type=int, default=2, help="fake GPUs on the node (gres gpu)")
    ap.add_argument("--kill-wait", type=int, default=30, help="seconds between SIGTERM and SIGKILL at a time limit")
    ap.add_argument("--cpus", type=int, default=None, help="CPUs of the node (default: this machine's)")
    ap.add_argument("--mem-mb", type=int, default=None, help="memory of the node (default: this machine's less 1 GiB)")
    args = ap.parse_args(argv)
    if args.action == "stop":
        stop(args.dir)
        return
    env = start(args.dir, gpus=args.gpus, kill_wait=args.kill_wait, cpus=args.cpus, mem_mb=args.mem_mb)
    print(f"export SLURM_CONF={env['SLURM_CONF']}")
    print(f"export PATH={args.dir.resolve() / 'bin'}:$PATH")


if __name__ == "__main__":
    sys.exit(main())
