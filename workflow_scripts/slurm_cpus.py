"""The CPUs SLURM granted the job this process runs in, for a rule's `threads`.

    python -m workflow_scripts.slurm_cpus      # prints them (nothing outside SLURM)

sbatch --cpus-per-task=N sets SLURM_CPUS_PER_TASK. sbatch --cpus-per-gpu=N (the SLURM profile's
pretrain) does not, and the executor plugin's job step does not pass SLURM_CPUS_PER_GPU on either
(seen on the test cluster, SLURM 22.05 + plugin 2.8.0); what the step does see is
SLURM_CPUS_ON_NODE, the CPUs allocated on its node (N x its GPUs). Reading only
SLURM_CPUS_PER_TASK would hand such a job Snakemake's --cores: the whole node's cores, not its share.
"""
import os


def granted_cpus(environ=os.environ) -> int | None:
    """CPUs of this SLURM job: per task, else those allocated on its node; None outside SLURM."""
    granted = environ.get("SLURM_CPUS_PER_TASK") or environ.get("SLURM_CPUS_ON_NODE")
    return int(granted) if granted else None


if __name__ == "__main__":
    print(granted_cpus() or "")
