"""How `python -m pytest` spreads the suite over two workers (pytest-xdist; pyproject's addopts:
-n 2 --dist loadgroup --no-loadscope-reorder).

On CI's two cores much of the suite waits rather than computes: SLURM's status polls and its
30-second limit checks, single-threaded job startups, Snakemake's own bookkeeping. Two workers
overlap those waits. Each module is one xdist group, so a module's fixtures are built once; modules
that share an expensive session fixture form one group (built once, on one worker). The longest
groups start first (longest-first keeps the two workers' ends close); the rest keep their order.
Run one worker with `-n 0` (e.g. to debug with pdb).
"""
import pytest

# Modules that share an expensive session fixture: one group each.
SHARED = {"test_faults": "tiny_run", "test_bad_inputs": "tiny_run"}

# The longest groups, longest first (seconds on CI's two cores, one worker, from --durations):
# the SLURM demo ~420, the default demo ~200, tiny_run's kill/rerun/bad inputs ~250, families ~120.
FIRST = ["test_slurm", "test_workflow", "tiny_run", "test_workflow_families", "test_workflow_mixed",
         "test_workflow_languages", "test_disk_full", "test_shell_injection"]


def group_of(item) -> str:
    module = item.module.__name__.rsplit(".", 1)[-1]
    return SHARED.get(module, module)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of(item)))
    rank = {group: i for i, group in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(group_of(item), len(FIRST)))   # stable: in-module order kept
