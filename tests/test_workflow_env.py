"""envs/workflow.yaml (the rules' conda env) is generated from the pins, and its pip section resolves."""
import importlib.util
import json
import subprocess
import sys

import pytest
import yaml
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO


def generator():
    spec = importlib.util.spec_from_file_location("make_workflow_env", REPO / "envs" / "make_workflow_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pip_section(text):
    deps = yaml.safe_load(text)["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict))


def test_committed_env_file_is_the_generators_output():
    assert (REPO / "envs" / "workflow.yaml").read_text() == generator().expected_text()


def test_env_file_is_self_contained_and_holds_the_whole_lock():
    """No -r/-c lines (Snakemake builds the env from a copy elsewhere); every lock pin, torch first."""
    text = (REPO / "envs" / "workflow.yaml").read_text()
    lines = pip_section(text)
    assert lines[0].startswith("torch==")
    assert not [line for line in lines if line.startswith("-")]
    locked = generator().read_pins((REPO / "envs" / "constraints.txt").read_text())
    assert sorted(lines) == sorted(f"{name}=={version}" for name, version in locked.values())


def test_top_level_requirements_follow_torch_with_locked_versions():
    make = generator()
    lines = make.pip_lines("# top\nnumpy\nPyYAML\ntorch==2.0\n", "pyyaml==6.0\nTorch==2.0\nnumpy==2.1\nsix==1.0\n")
    # Names as the lock spells them (pip freeze), the top-level ones in requirements order, then the rest.
    assert lines == ["Torch==2.0", "numpy==2.1", "pyyaml==6.0", "six==1.0"]


@pytest.mark.parametrize(
    ("requirements", "constraints", "message"),
    [
        ("numpy\n", "torch==2.0\n", "no pin for numpy"),
        ("numpy==2.0\n", "torch==2.0\nnumpy==2.1\n", "numpy==2.0 in requirements.txt but ==2.1"),
        ("numpy\n", "numpy==2.1\n", "no pin for torch"),
        ("numpy>=2\n", "numpy==2.1\ntorch==2.0\n", "is not `name` or `name==version`"),
    ],
)
def test_pins_that_disagree_stop_with_one_line(requirements, constraints, message):
    with pytest.raises(SystemExit, match=message):
        generator().pip_lines(requirements, constraints)


def test_check_mode_fails_on_a_stale_file(tmp_path, monkeypatch):
    make = generator()
    for name in ("requirements.txt", "constraints.txt"):
        (tmp_path / name).write_text((REPO / "envs" / name).read_text())
    (tmp_path / "workflow.yaml").write_text("channels: []\n")
    monkeypatch.setattr(make, "ENVS", tmp_path)
    with pytest.raises(SystemExit, match="out of date"):
        make.main(["--check"])
    make.main([])
    make.main(["--check"])


@pytest.mark.workflow
def test_pip_section_resolves_to_exactly_the_lock_in_a_fresh_venv(tmp_path):
    """What conda's pip step would install: pip resolves the section alone (PyPI, no conda channels
    here) to exactly the pinned versions, nothing added; and that env's python, started in the repo
    root as the rules start it, imports the workflow's package without installing it."""
    lines = pip_section((REPO / "envs" / "workflow.yaml").read_text())
    (tmp_path / "pip.txt").write_text("\n".join(lines) + "\n")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report",
                    str(tmp_path / "report.json"), "-r", str(tmp_path / "pip.txt")], check=True, timeout=600)
    report = json.loads((tmp_path / "report.json").read_text())
    resolved = {canonicalize_name(i["metadata"]["name"]): Version(i["metadata"]["version"]).base_version
                for i in report["install"]}
    pinned = {canonicalize_name(n): Version(v).base_version for n, _, v in (line.partition("==") for line in lines)}
    # Equal sets: no pin left out by the resolver, nothing pulled in that the lock does not hold.
    assert resolved == pinned
    found = subprocess.run([python, "-c", "import workflow_scripts; print(workflow_scripts.__file__)"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert found.startswith(str(REPO / "workflow_scripts"))
