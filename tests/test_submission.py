"""submission.zip from nine tasks' best predictions, and the validator rejecting each kind of broken zip by name and row."""
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from workflow_scripts.glue import readers, submission, tasks, validate_submission

NAMES = ["CoLA.tsv", "SST-2.tsv", "MRPC.tsv", "STS-B.tsv", "QQP.tsv", "MNLI-m.tsv", "MNLI-mm.tsv", "QNLI.tsv",
         "RTE.tsv", "WNLI.tsv", "AX.tsv"]


@pytest.fixture(scope="module")
def smoke(repo_root):
    return repo_root / "demo/glue_smoke"


@pytest.fixture
def predictions(smoke, tmp_path):
    """results/runs/<run>/glue/<task>/best_predictions.tsv for all nine tasks, over the smoke test files."""
    paths = []
    for name, task in tasks.TASKS.items():
        rows = ["split\tindex\tprediction"]
        for split in task.test:
            for k, ex in enumerate(readers.read_dir_split(task, split, smoke)):
                value = f"{k % 6 * 0.9:.3f}" if task.is_regression else task.labels[k % task.num_labels]
                rows.append(f"{split.name}\t{ex.index}\t{value}")
        path = tmp_path / "glue" / name / "best_predictions.tsv"
        path.parent.mkdir(parents=True)
        path.write_text("\n".join(rows) + "\n")
        paths.append(path)
    return paths


def make(predictions, out):
    submission.main(["--predictions", *map(str, predictions), "--out-dir", str(out / "submission"),
                     "--zip", str(out / "submission.zip")])
    return out / "submission.zip"


def rezip(src, dest, edit):
    """Copy a zip, letting edit(name, text) return (new name, new text) or None to drop the file."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for name in zin.namelist():
            changed = edit(name, zin.read(name).decode())
            if changed:
                zout.writestr(*changed)
    return dest


def test_zip_has_the_11_files_at_its_root(predictions, smoke, tmp_path):
    path = make(predictions, tmp_path / "out")
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(NAMES)
        texts = {n: zf.read(n).decode() for n in NAMES}
    assert sorted(p.name for p in (tmp_path / "out/submission").iterdir()) == sorted(NAMES)
    for name, text in texts.items():
        lines = text.splitlines()
        assert lines[0] == "index\tprediction"
        assert [line.split("\t")[0] for line in lines[1:]] == [str(i) for i in range(32)], name
        assert (tmp_path / "out/submission" / name).read_text() == text
    assert texts["AX.tsv"].splitlines()[2] == "1\tneutral"
    assert texts["MNLI-mm.tsv"].splitlines()[1] == "0\tentailment"
    assert texts["STS-B.tsv"].splitlines()[2] == "1\t0.900"
    assert validate_submission.main([str(path), "--glue-dir", str(smoke)]) == 0
    # Same predictions, same bytes (fixed zip timestamps): reruns don't churn the file.
    assert make(predictions, tmp_path / "again").read_bytes() == path.read_bytes()


def test_outputs_are_readable_by_group_and_others(predictions, tmp_path):
    """Modes as a plain write gives them (0777 / 0666 less the umask), not those of a private temp file."""
    old = os.umask(0o022)
    try:
        path = make(predictions, tmp_path / "out")
    finally:
        os.umask(old)
    folder = tmp_path / "out/submission"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755 and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o644}


def test_validator_cli_exit_codes(predictions, smoke, tmp_path, repo_root):
    path = make(predictions, tmp_path)
    ok = subprocess.run([sys.executable, "-m", "workflow_scripts.glue.validate_submission", str(path), "--glue-dir", str(smoke)],
                        capture_output=True, text=True, cwd=repo_root)
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = rezip(path, tmp_path / "bad.zip", lambda n, t: None if n == "QQP.tsv" else (n, t))
    failed = subprocess.run([sys.executable, "-m", "workflow_scripts.glue.validate_submission", str(bad)],
                            capture_output=True, text=True, cwd=repo_root)
    assert failed.returncode == 1 and "missing QQP.tsv" in failed.stdout


def problems_of(zip_path, **kw):
    return "\n".join(validate_submission.validate(zip_path, **kw)[0])


def test_rejects_a_missing_file(predictions, tmp_path):
    bad = rezip(make(predictions, tmp_path), tmp_path / "bad.zip", lambda n, t: None if n == "WNLI.tsv" else (n, t))
    assert "missing WNLI.tsv at the zip root" in problems_of(bad)


def test_rejects_a_wrong_row_count(predictions, smoke, tmp_path):
    bad = rezip(make(predictions, tmp_path), tmp_path / "bad.zip",
                lambda n, t: (n, "\n".join(t.splitlines()[:-1]) + "\n") if n == "CoLA.tsv" else (n, t))
    msg = problems_of(bad, glue_dir=smoke)
    assert f"CoLA.tsv: 31 rows, but the test file in {smoke} has 32" in msg
    assert "CoLA" not in problems_of(bad).replace("CoLA.tsv: 31 rows, but GLUE", "")  # counts only checked when asked
    assert "CoLA.tsv: 31 rows, but GLUE's official test set has 1063" in problems_of(bad, official=True)


def test_rejects_a_bad_label_naming_file_and_row(predictions, tmp_path):
    def edit(name, text):
        lines = text.splitlines()
        if name == "MNLI-m.tsv":
            lines[4] = "3\tmaybe"
        if name == "STS-B.tsv":
            lines[2] = "1\t5.5"
        if name == "QNLI.tsv":
            lines[1] = "0\t1"
        return name, "\n".join(lines) + "\n"

    msg = problems_of(rezip(make(predictions, tmp_path), tmp_path / "bad.zip", edit))
    assert "MNLI-m.tsv, row 3 (line 5): prediction 'maybe' is not one of entailment / neutral / contradiction" in msg
    assert "STS-B.tsv, row 1 (line 3): prediction '5.5' is not a number in [0, 5]" in msg
    assert "QNLI.tsv, row 0 (line 2): prediction '1' is not one of entailment / not_entailment" in msg


def test_rejects_a_folder_prefix(predictions, tmp_path):
    bad = rezip(make(predictions, tmp_path), tmp_path / "bad.zip", lambda n, t: (f"submission/{n}", t))
    msg = problems_of(bad)
    assert "submission/CoLA.tsv is inside folder 'submission'" in msg
    assert "missing CoLA.tsv" in msg


def test_rejects_bad_header_index_and_extra_file(predictions, tmp_path):
    def edit(name, text):
        lines = text.splitlines()
        if name == "RTE.tsv":
            lines[0] = "id\tlabel"
        if name == "SST-2.tsv":
            lines[3] = "7\t1"
        return name, "\n".join(lines) + "\n"

    bad = rezip(make(predictions, tmp_path), tmp_path / "bad.zip", edit)
    with zipfile.ZipFile(bad, "a") as zf:
        zf.writestr("notes.txt", "hello")
    msg = problems_of(bad)
    assert "RTE.tsv, line 1: header 'id\\tlabel', expected 'index\\tprediction'" in msg
    assert "SST-2.tsv, row 2 (line 4): index '7', expected 2" in msg
    assert "unexpected file 'notes.txt'" in msg


def test_submission_refuses_incomplete_predictions(predictions, tmp_path):
    with pytest.raises(SystemExit, match="--predictions lacks WNLI"):
        make([p for p in predictions if p.parent.name != "WNLI"], tmp_path / "out")
    mnli = next(p for p in predictions if p.parent.name == "MNLI")
    mnli.write_text("".join(line + "\n" for line in mnli.read_text().splitlines() if not line.startswith("diagnostic")))
    with pytest.raises(SystemExit, match=r"MNLI/best_predictions.tsv: no rows for split 'diagnostic' \(needed for AX.tsv\)"):
        make(predictions, tmp_path / "out")
    assert not (tmp_path / "out/submission.zip").exists() and not (tmp_path / "out/submission").exists()
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left behind


def test_submission_validates_before_writing(predictions, tmp_path):
    sst2 = next(p for p in predictions if p.parent.name == "SST-2")
    sst2.write_text(sst2.read_text().replace("test\t5\t1", "test\t5\tpositive"))
    with pytest.raises(SystemExit, match=r"SST-2.tsv, row 5 \(line 7\): prediction 'positive' is not one of 0 / 1"):
        make(predictions, tmp_path / "out")
    assert not (tmp_path / "out/submission.zip").exists()
    shutil.rmtree(tmp_path / "out")
