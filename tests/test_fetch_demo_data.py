"""Fetching the demo data: a failed pip download ends in one clear line and leaves nothing behind."""
import os
import subprocess
import sys


def test_failed_pip_download_is_one_line_and_leaves_no_files(repo_root, tmp_path):
    # PIP_NO_INDEX: pip looks at no index at all, so the download fails here as it does offline.
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.fetch_demo_data", str(tmp_path / "resources")],
                         cwd=repo_root, capture_output=True, text=True, env={**os.environ, "PIP_NO_INDEX": "1"})
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("fetch_demo_data: pip download gensim==4.4.0 failed (exit 1): ERROR: ")
    assert "PyPI must be reachable" in last
    leftovers = [p.relative_to(tmp_path / "resources") for p in (tmp_path / "resources").rglob("*")]
    assert [str(p) for p in leftovers] == ["wheels"]  # the empty wheel folder; no temp file, no half wheel
