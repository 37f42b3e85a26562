"""Give a local job its own GPUs: pick free ones under file locks, export CUDA_VISIBLE_DEVICES, exec the command.

    python -m workflow_scripts.gpu_slots N -- COMMAND [ARGS...]

Snakemake's `gpu` resource only counts GPUs; it never says which ones, so two jobs on a
multi-GPU workstation would both land on GPU 0. Each GPU here is a lock file, held with
flock by the command itself (the lock's file descriptor survives exec), so the kernel frees
it whenever the job ends, crashed or killed, and no stale claim can outlive a job.

- N = 0: GPUs hidden (CUDA_VISIBLE_DEVICES="", DS_ACCELERATOR=cpu): `gpus: 0` means a CPU run.
- Inside a SLURM job: the command runs as is; SLURM already chose the GPUs.
- No GPU on the machine: the command runs as is (the CPU demo).
- Otherwise N free GPUs among CUDA_VISIBLE_DEVICES (when set) or all the machine's, waiting
  while fewer are free. Locks live in $XBERT_GPU_LOCK_DIR (default: <tmp>/xbert-gpu-locks),
  shared by every workflow on the machine, since GPUs are.
"""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else every NVIDIA GPU present."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return [str(i) for i in range(len(list(proc.iterdir())))]
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def lock_dir() -> Path:
    d = Path(os.environ.get("XBERT_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / "xbert-gpu-locks")
    d.mkdir(parents=True, exist_ok=True)
    try:
        d.chmod(0o1777)  # several users share one workstation's GPUs
    except PermissionError:
        pass
    return d


def try_acquire(gpus: list[str], n: int, locks: Path) -> dict[str, int] | None:
    """Lock n of gpus without waiting: {gpu id: open fd holding its lock}, or None (nothing held)."""
    import fcntl

    held = {}
    for gpu in gpus:
        path = locks / f"gpu_{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        held[gpu] = fd
        if len(held) == n:
            return held
    for fd in held.values():
        os.close(fd)
    return None


def acquire(gpus: list[str], n: int, locks: Path, poll_s: float = 2.0) -> dict[str, int]:
    """Wait until n GPUs are free; never hold some while waiting for the rest (no deadlock)."""
    waited = False
    while True:
        held = try_acquire(gpus, n, locks)
        if held is not None:
            return held
        if not waited:
            print(f"gpu_slots: waiting for {n} free GPU(s) of {','.join(gpus)} (locks in {locks})", file=sys.stderr, flush=True)
            waited = True
        time.sleep(poll_s * random.uniform(0.5, 1.5))


@one_line_errors
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gpus", type=int, help="GPUs the command needs (the rule's gpu resource)")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its arguments")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise BadInput("gpu_slots: no command given (usage: python -m workflow_scripts.gpu_slots N -- COMMAND ...)")
    if args.gpus < 0:
        raise BadInput(f"gpu_slots: GPU count must be >= 0, got {args.gpus}")
    if "SLURM_JOB_ID" in os.environ:
        pass  # SLURM already gave the job its GPUs (and a multi-node launch asks srun for them)
    elif args.gpus == 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["DS_ACCELERATOR"] = "cpu"
    else:
        gpus = visible_gpus()
        if gpus:
            if args.gpus > len(gpus):
                raise BadInput(f"gpu_slots: the job needs {args.gpus} GPUs, this machine offers {len(gpus)} ({','.join(gpus)})")
            held = acquire(gpus, args.gpus, lock_dir())
            for fd in held.values():
                os.set_inheritable(fd, True)  # the exec'd command keeps holding the locks
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(held)
            print(f"gpu_slots: CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}", file=sys.stderr, flush=True)
    try:
        os.execvp(command[0], command)
    except OSError as e:
        raise BadInput(f"gpu_slots: cannot run {command[0]!r}: {e.strerror}") from None


if __name__ == "__main__":
    main()
