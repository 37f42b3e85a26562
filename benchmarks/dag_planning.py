"""How long `snakemake -n` takes to plan ExtremeBERT's full default fine-tuning grid (issue: under 20 s).

    python -m benchmarks.dag_planning [--repeats 3]

Plans the demo config with the schema's default grid (156 trials per seed per run: MNLI,
QQP, QNLI 4 each, the other six tasks 24 each) in a copy of the working tree, as a user runs
it (`python -m snakemake -n --cores 2`, whole process, wall clock, best of --repeats):
  - 1 run x 1 seed: 156 trials
  - 2 runs x 2 seeds: 624 trials
  - the same with STILTs on (RTE, MRPC, STS-B after MNLI's selection; MNLI keeps its models)
  - the demo's own 9-trial grid, for the fixed cost (interpreter, imports, parsing, validation)
Each plan's Job stats are checked against the expected trial count. No peer: this is a target
from the issue, not a comparison.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

# The workflow tests' helpers: a copy of the working tree as git sees it, and the dry run's Job stats.
from tests.helpers.workflow import copy_repo, planned_jobs

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 20


def write_config(workdir: Path, runs: int, seeds: int, stilts: bool, default_grid: bool) -> None:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if default_grid:
        del config["finetune"]["grid"]  # the schema's default: ExtremeBERT's grid
    config["finetune"]["seeds"] = list(range(1, seeds + 1))
    config["finetune"]["stilts"] = ["RTE", "MRPC", "STS-B"] if stilts else []
    demo = config["runs"]["demo"]
    config["runs"] = {f"run{i}" if i else "demo": demo for i in range(runs)}
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config))


def plan(workdir: Path) -> tuple:
    """(wall seconds, {rule: jobs}) of one dry run."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2"], cwd=workdir,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"snakemake -n failed in {workdir}:\n{proc.stderr[-3000:]}")
    return seconds, planned_jobs(proc)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="dry runs per case; the best counts")
    args = parser.parse_args(argv)

    from workflow_scripts import fetch_demo_data

    fetch_demo_data.main([str(REPO / "resources")])
    cases = [  # (metric name, runs, seeds, stilts, default grid, expected trials, target)
        ("dry_run_seconds_156_trials", 1, 1, False, True, 156, TARGET_S),
        ("dry_run_seconds_624_trials", 2, 2, False, True, 624, TARGET_S),
        ("dry_run_seconds_624_trials_stilts", 2, 2, True, True, 624, TARGET_S),
        ("dry_run_seconds_9_trials_demo", 1, 1, False, False, 9, "none"),  # the fixed cost, for scale
    ]
    results = []
    with tempfile.TemporaryDirectory(prefix="dag_planning_") as tmp:
        workdir = Path(tmp)
        copy_repo(REPO, workdir, REPO / "resources")
        for name, runs, seeds, stilts, default_grid, expected, target in cases:
            write_config(workdir, runs, seeds, stilts, default_grid)
            times = []
            for _ in range(args.repeats):
                seconds, jobs = plan(workdir)
                times.append(seconds)
            trials = jobs.get("finetune_trial", 0) + jobs.get("finetune_mnli_trial", 0)
            if trials != expected:
                raise SystemExit(f"{name}: planned {trials} trials, expected {expected} ({jobs})")
            print(f"{name}: {runs} run(s) x {seeds} seed(s), stilts {'on' if stilts else 'off'}: {trials} trials, "
                  f"{sum(jobs.values())} jobs; dry runs {', '.join(f'{t:.2f}' for t in times)} s", flush=True)
            results.append((name, min(times), target))
    for name, best, target in results:
        print(f"RESULT {name} {best:.2f} target {target} peer none")


if __name__ == "__main__":
    main()
