"""Running real Snakemake workflows from the tests: a copy of the working tree, the snakemake
command line, the dry run's job table, the feature configs in tests/configs/, a folder's hashes."""
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "tests" / "configs"
# The faults and bad-input tests' run (tests/configs/faults-tiny.yaml), as a user types it.
FAULTS_ARGS = ["--cores", "2", "--profile", "profiles/local", "--configfile", "tests/configs/faults-tiny.yaml"]
FAULTS_RUN = [sys.executable, "-m", "snakemake", *FAULTS_ARGS]
SUBMISSION_FILES = {"CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv",
                    "MNLI-mm.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv", "AX.tsv"}


def copy_repo(repo: Path, dest: Path, resources: Path) -> Path:
    """The working tree as git sees it (tracked + new files, nothing ignored), plus the demo data."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=repo, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = repo / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    (dest / "resources").symlink_to(resources)
    return dest


def snakemake_env() -> dict:
    """The environment with the venv first on PATH (the rules' `python` is the venv's)."""
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def snakemake(workdir: Path, *args, check=True, timeout=900):
    """`python -m snakemake ARGS` in workdir with the venv first on PATH; on failure (check) the test
    fails with Snakemake's last words and every log that mentions an error."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=snakemake_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted((workdir / "logs").rglob("*.log"))
                         if "rror" in p.read_text())
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}\n{logs}")
    return proc


def planned_jobs(proc) -> dict:
    """The 'Job stats' table of a dry run: rule name -> count."""
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def feature_config(name: str) -> dict:
    """tests/configs/NAME.yaml as a dict (for a test that fills in paths only known at run time)."""
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def write_config(path: Path, config: dict) -> str:
    """Write a config (a feature config with its run-time paths, or a per-test edit) for --configfile."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def tree_hashes(root: Path) -> dict:
    """Every file under root (relative path) -> its sha256: what a failed run must leave as it was."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
