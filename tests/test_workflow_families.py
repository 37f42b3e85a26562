"""The five model families through the real workflow: one tiny run each (bert, roberta, albert,
deberta-v2, modernbert), pretrained for a few steps on the real Wikipedia excerpt, fine-tuned on two GLUE smoke
tasks (a classification and a regression), and compared in one report. With fewer than the nine
GLUE tasks the default target is the report (no submission). Config: tests/configs/families.yaml."""
import json

import pytest

from tests.helpers.workflow import copy_repo, feature_config, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

CONFIG = ("--configfile", "tests/configs/families.yaml", "--replace-workflow-config")
FAMILIES = {name: run["model"] for name, run in feature_config("families")["runs"].items()}
EXPORTED_AS = {"bert": "bert", "roberta": "roberta", "albert": "albert", "deberta": "deberta-v2",
               "modern": "modernbert"}
TASKS = feature_config("families")["finetune"]["tasks"]


@pytest.fixture(scope="module")
def families(tmp_path_factory, repo_root, resources):
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("families"), resources)
    assert set(FAMILIES) == set(EXPORTED_AS) and TASKS == ["RTE", "STS-B"]
    jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "2", *CONFIG))
    assert jobs["pretrain"] == 5 and jobs["finetune_trial"] == 10 and jobs["report"] == 1, jobs
    assert "make_submission" not in jobs
    snakemake(workdir, "--cores", "2", "--profile", "profiles/local", *CONFIG, timeout=1500)
    return workdir


def test_every_family_pretrains_in_the_workflow(families):
    for run, family in EXPORTED_AS.items():
        config = json.loads((families / f"results/runs/{run}/model/config.json").read_text())
        assert config["model_type"] == family, run
        log = [json.loads(line) for line in (families / f"results/runs/{run}/pretrain_log.jsonl").open()]
        assert log[0]["model"]["type"] == FAMILIES[run]["type"]
        assert log[-1]["event"] == "end" and log[-1]["reason"] == "max_steps" and log[-1]["step"] == 3
        assert [e["step"] for e in log if e["event"] == "train"] == [1, 2, 3]
    albert = json.loads((families / "results/runs/albert/model/config.json").read_text())
    assert albert["embedding_size"] == 16
    modern = json.loads((families / "results/runs/modern/model/config.json").read_text())
    assert modern["layer_types"] == ["full_attention"] * 2 and modern["vocab_size"] == 30528
    log = [json.loads(line) for line in (families / "results/runs/modern/pretrain_log.jsonl").open()]
    lrs = [e["lr"] for e in log if e["event"] == "train"]
    assert sorted(lrs)[-2:] == pytest.approx([8e-4, 8e-4])       # wsd: held at the peak (linear would decay)


def test_every_family_fine_tunes_in_the_workflow(families):
    for run in FAMILIES:
        for task in TASKS:
            best = json.loads((families / f"results/runs/{run}/glue/{task}/best.json").read_text())
            assert best["task"] == task and len(best["trials"]) == 1, (run, task)
            trial = families / f"results/runs/{run}/glue/{task}" / best["chosen"]
            assert json.loads((trial / "dev_metrics.json").read_text())["train_examples"] > 0
            rows = (trial / "test_predictions.tsv").read_text().splitlines()
            assert rows[0].endswith("index\tprediction") and len(rows) > 1
    table = (families / "results/report/glue_dev.md").read_text()
    assert all(run in table for run in FAMILIES) and all(task in table for task in TASKS)
    assert not (families / "submission.zip").exists()
    assert planned_jobs(snakemake(families, "-n", "--cores", "2", *CONFIG)) == {}
