"""Real tiny workflow runs: the demo end to end, what a config edit reruns, and bad configs.

The demo runs once per session in a copy of the repo (resources/ linked in), exactly as a user
runs it: `snakemake --cores all --profile profiles/local`.
"""
import base64
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.helpers.workflow import SUBMISSION_FILES, copy_repo, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

UPSTREAM = {"extract_text_wiki", "prepare_tokenizer", "make_samples", "pretrain"}


@pytest.fixture(scope="session")
def demo(tmp_path_factory, repo_root, resources) -> Path:
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("demo"), resources)
    snakemake(workdir, "--cores", "all", "--profile", "profiles/local")
    return workdir


def test_demo_ends_with_a_valid_submission(demo):
    with zipfile.ZipFile(demo / "submission.zip") as zf:
        assert set(zf.namelist()) == SUBMISSION_FILES
        for name in zf.namelist():
            rows = zf.read(name).decode().splitlines()
            assert rows[0] == "index\tprediction"
            assert [int(r.split("\t")[0]) for r in rows[1:]] == list(range(len(rows) - 1))
    smoke = demo / "demo" / "glue_smoke"
    with zipfile.ZipFile(demo / "submission.zip") as zf:
        n_cola = len((smoke / "CoLA" / "test.tsv").read_text().splitlines()) - 1
        assert len(zf.read("CoLA.tsv").decode().splitlines()) - 1 == n_cola
    check = subprocess.run([sys.executable, "-m", "workflow_scripts.glue.validate_submission", str(demo / "submission.zip")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_demo_writes_report_model_and_log(demo):
    assert (demo / "results/report/loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (demo / "results/report/glue_dev.md").read_text()
    assert "demo" in table and "CoLA" in table
    model = demo / "results/runs/demo/model"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in model.iterdir()}
    events = [yaml.safe_load(line)["event"] for line in (demo / "results/runs/demo/pretrain_log.jsonl").open()]
    assert events[0] == "config" and events[-1] == "end" and "train" in events and "valid" in events
    # The model card names the config's corpora and counts what their shards hold (rule -> --card).
    card = yaml.safe_load((model / "README.md").read_text().split("---")[1])
    assert card["pipeline_tag"] == "fill-mask" and card["extremebert"]["run"] == "demo"
    wiki = card["extremebert"]["corpora"]["wiki"]
    assert wiki["type"] == "wikipedia" and wiki["train_documents"] > 0 and wiki["train_samples"] > 0
    # `snakemake publish` plans one upload per run (after GLUE, whose scores its card lists).
    assert planned_jobs(snakemake(demo, "-n", "publish", "--cores", "2")) == {"publish_model": 1, "publish": 1}


def test_snakemake_report_shows_each_stage(demo, tmp_path):
    """`snakemake --report` after the demo: one self-contained page with the workflow's description,
    every report() file under its stage and run, with its caption and its bytes embedded."""
    page = tmp_path / "report.html"
    snakemake(demo, "--report", str(page))
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']https?:""", html)  # nothing fetched when it is opened
    assert "ExtremeBERT as a Snakemake workflow" in html and "one model per run: demo)" in html  # workflow.rst
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", html).group(1))
    report = "results/report/"
    assert {c: {sub: sorted(files) for sub, files in subs.items()} for c, subs in categories.items()} == {
        "Data": {"all runs": [report + "data.md"]},
        "Pretraining": {"all runs": [report + "loss_curves.png"], "demo": [report + "runs/demo/loss_curves.png"]},
        "GLUE": {"all runs": [report + "glue_dev.md", report + "glue_dev.tsv", report + "glue_vs_device_hours.png"]},
        "Timings": {"all runs": [report + "timings.md"]}}
    results = json.loads(re.search(r"var results = (\{.*?\});\n", html).group(1))
    assert results[report + "data.md"]["caption"].startswith("<p>The data report: per corpus")
    assert results[report + "runs/demo/loss_curves.png"]["caption"].startswith("<p>This run's pretraining alone")
    for path, entry in results.items():
        assert base64.b64decode(entry["data_uri"].split("base64,", 1)[1]) == (demo / path).read_bytes(), path
    tsv = (demo / report / "glue_dev.tsv").read_text().splitlines()
    assert tsv[0].startswith("run\ttask\tscore") and len(tsv) == 1 + 9 and all(r.startswith("demo\t") for r in tsv[1:])
    # The data report is written with the samples, before pretraining: all that `samples` needs.
    assert planned_jobs(snakemake(demo, "-n", "--cores", "2", "--forceall", "samples")) == {
        "extract_text_wiki": 1, "prepare_tokenizer": 1, "find_duplicate_documents": 1, "make_samples": 2,
        "report_data": 1, "samples": 1}


def test_nothing_left_to_do_after_the_demo(demo):
    assert planned_jobs(snakemake(demo, "-n", "--cores", "2")) == {}


def test_finetune_lr_edit_reruns_no_upstream_stage(demo, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text(yaml.safe_dump({"finetune": {"grid": {"default": {"lr": [5e-5], "batch_size": [16], "epochs": [2]}}}}))
    jobs = planned_jobs(snakemake(demo, "-n", "--cores", "2", "--configfile", str(edit)))
    assert jobs.get("finetune_trial") == 9
    assert not UPSTREAM & set(jobs), jobs


def test_placement_edits_rerun_nothing(demo, tmp_path):
    """Speed/placement/logging keys (STYLE 9) never make the model or the trials stale."""
    edit = tmp_path / "edit.yaml"
    edit.write_text(yaml.safe_dump({
        "runs": {"demo": {"validation_interval_minutes": 1, "log_interval_steps": 5,
                          "implementation": {"tensorboard": True, "zero_stage": 1,
                                             "deepspeed": {"wall_clock_breakdown": True}}}},
        "finetune": {"implementation": {"eval_batch_size": 7}},
        "tracking": {"backend": "mlflow", "uri": "http://127.0.0.1:1", "experiment": "elsewhere"}}))
    assert planned_jobs(snakemake(demo, "-n", "--cores", "2", "--configfile", str(edit))) == {}


def test_validation_cadence_reruns_pretrain_under_max_valid_loss(demo, tmp_path):
    """With early_stopping.max_valid_loss set, a validation decides where the run stops, so the
    cadence and the validation size are rerun triggers there (placement only without it)."""
    workdir = shutil.copytree(demo, tmp_path / "demo", symlinks=True)
    target = "results/runs/demo/pretrain_log.jsonl"
    stopping = {"early_stopping": {"max_valid_loss": 100.0}}
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"runs": {"demo": stopping}}))
    # A stop edit: pretraining reruns, resumes the demo's finished state and only re-exports.
    snakemake(workdir, target, "--cores", "2", "--configfile", str(base))
    for change in ({"validation_interval_minutes": 1}, {"validation_max_samples": 16},
                   {"validation_interval_minutes_end": 0.5, "validation_end_proportion": 0.5}):
        edit = tmp_path / "edit.yaml"
        edit.write_text(yaml.safe_dump({"runs": {"demo": {**stopping, **change}}}))
        jobs = planned_jobs(snakemake(workdir, target, "-n", "--cores", "2", "--configfile", str(edit)))
        assert set(jobs) == {"pretrain"}, (change, jobs)
    placement = tmp_path / "placement.yaml"
    placement.write_text(yaml.safe_dump({"runs": {"demo": {**stopping, "log_interval_steps": 5}}}))
    assert planned_jobs(snakemake(workdir, target, "-n", "--cores", "2", "--configfile", str(placement))) == {}


def test_a_corrupt_shard_is_rebuilt_by_the_next_plain_run(demo, tmp_path):
    """Issue 14: pretraining that finds a damaged shard stops in one line and sets the shard aside, so
    the plain rerun rebuilds that shard (its samples job only) and trains, instead of "Nothing to be
    done" with no model. A short budget keeps the retrain quick."""
    workdir = shutil.copytree(demo, tmp_path / "demo", symlinks=True)
    shard = workdir / "results/samples/train/wiki/part_1.h5"
    whole = shard.read_bytes()
    shard.write_bytes(whole[: len(whole) // 2])  # cut short, as a copy interrupted
    target = "results/runs/demo/pretrain_log.jsonl"
    proc = snakemake(workdir, target, "--cores", "2", "--forcerun", "pretrain", check=False)
    assert proc.returncode != 0
    last = (workdir / "logs/pretrain/demo.log").read_text().splitlines()[-1]
    assert last.startswith(f"shard {shard.relative_to(workdir)}: not a readable HDF5 file"), last
    assert last.endswith(f"moved aside to {shard.relative_to(workdir)}.corrupt so that the next run rebuilds it")
    assert not shard.exists() and (workdir / "results/samples/train/wiki/part_1.h5.corrupt").exists()
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump({"runs": {"demo": {"total_training_time": 0.002}}}))
    proc = snakemake(workdir, target, "--cores", "2", "--configfile", str(short))
    assert planned_jobs(proc) == {"make_samples": 1, "pretrain": 1}, planned_jobs(proc)
    assert shard.read_bytes() == whole  # rebuilt as it was
    assert (workdir / "results/runs/demo/model/model.safetensors").is_file()


def test_pretrain_lr_edit_reruns_pretrain_onward(demo, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text(yaml.safe_dump({"runs": {"demo": {"optimizer": {"lr": 5e-4}}}}))
    jobs = planned_jobs(snakemake(demo, "-n", "--cores", "2", "--configfile", str(edit)))
    assert {"pretrain", "finetune_trial", "make_submission", "report"} <= set(jobs)
    assert not {"extract_text_wiki", "prepare_tokenizer", "make_samples"} & set(jobs), jobs


def test_masked_lm_prob_edit_reruns_samples_onward(demo, tmp_path):
    edit = tmp_path / "edit.yaml"
    edit.write_text(yaml.safe_dump({"samples": {"masked_lm_prob": 0.2}}))
    jobs = planned_jobs(snakemake(demo, "-n", "--cores", "2", "--configfile", str(edit)))
    assert {"make_samples", "pretrain", "finetune_trial", "make_submission"} <= set(jobs)
    assert not {"extract_text_wiki", "prepare_tokenizer"} & set(jobs), jobs


@pytest.mark.parametrize("override, expected", [
    ({"samples": {"mask_lm_prob": 0.2}}, "config key samples: unknown key 'mask_lm_prob'"),
    ({"runs": {"demo": {"total_training_time": "two hours"}}}, "runs.demo.total_training_time: 'two hours' is not of type 'number'"),
    ({"runs": {"demo": {"implementation": {"deepspeed": {"gradient_clipping": 0.5}}}}},
     "config key runs.demo.implementation.deepspeed.gradient_clipping: the workflow sets this from "
     "optimizer.gradient_clipping; set optimizer.gradient_clipping instead"),
])
def test_bad_config_stops_before_any_job(tmp_path_factory, repo_root, resources, override, expected):
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("bad"), resources)
    edit = workdir / "bad.yaml"
    edit.write_text(yaml.safe_dump(override))
    proc = snakemake(workdir, "--cores", "2", "--configfile", str(edit), check=False)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()


def test_full_default_grid_is_planned(tmp_path_factory, repo_root, resources):
    """Issue: `snakemake -n` plans ExtremeBERT's default grid, 156 trials per seed per run."""
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("grid"), resources)
    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    del config["finetune"]["grid"]
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "2"))
    assert jobs["finetune_trial"] == 156
    assert jobs["select_trial"] == 9


def test_lint_is_clean(repo_root):
    """STYLE 11: `snakemake --lint` finds nothing (every rule has log, benchmark, conda env)."""
    proc = snakemake(repo_root, "--lint", check=False)
    assert proc.returncode == 0 and "good condition" in proc.stdout + proc.stderr, proc.stdout[-3000:]
