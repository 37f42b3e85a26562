"""The CPUs a SLURM job was granted, per task or on its node (workflow_scripts.slurm_cpus); the
per-GPU case on a real cluster is in tests/test_slurm.py::test_profile_places_cpu_and_gpu_jobs."""
import pytest

from workflow_scripts.slurm_cpus import granted_cpus


@pytest.mark.parametrize("environ, expected", [
    ({}, None),                                                     # not in SLURM: Snakemake's --cores
    ({"SLURM_CPUS_PER_TASK": "4", "SLURM_CPUS_ON_NODE": "4"}, 4),   # --cpus-per-task
    ({"SLURM_CPUS_ON_NODE": "16", "SLURM_GPUS_ON_NODE": "2"}, 16),  # --cpus-per-gpu=8, 2 GPUs
])
def test_granted_cpus_reads_per_task_then_on_node(environ, expected):
    assert granted_cpus(environ) == expected
