"""The plan (workflow_scripts.plan): job counts as Snakemake plans them, estimates from the config and from earlier runs."""
import shutil
from pathlib import Path

import pytest

from tests.helpers.workflow import copy_repo, planned_jobs, snakemake
from workflow_scripts import plan

REPO = Path(__file__).resolve().parents[1]
STAGE_OF_RULE = {"extract_text_": "corpus", "find_duplicate_documents": "corpus", "download_corpus": "corpus",
                 "prepare_tokenizer": "tokenizer", "make_samples": "samples", "pretrain": "pretrain",
                 "finetune_trial": "finetune", "select_trial": "finetune", "finetune_mnli_trial": "finetune",
                 "select_mnli_trial": "finetune", "make_submission": "submission", "copy_submission": "submission",
                 "report": "report"}


def stages(p):
    return {st["stage"]: st for st in p["stages"]}


def demo_plan(results):
    return plan.plan(plan.load_config(REPO / "config" / "config.yaml"), results, None)


def test_demo_plan_counts_jobs_and_estimates_every_stage(tmp_path):
    by = stages(demo_plan(tmp_path))
    assert {k: v["jobs"] for k, v in by.items()} == {"corpus": 2, "tokenizer": 1, "samples": 2, "pretrain": 1,
                                                   "finetune": 18, "submission": 2, "report": 2}
    # The demo's budget (0.02 h = 72 s) + the default start-up; one CPU: device-hours = hours.
    assert by["pretrain"]["seconds"] == 72 + plan.DEFAULT_OVERHEAD_S
    assert by["pretrain"]["device_hours"] == pytest.approx(by["pretrain"]["seconds"] / 3600)
    assert by["finetune"]["seconds"] > 9 * plan.DEFAULT_TRIAL_START_S and "model FLOPs" in by["finetune"]["basis"]
    assert by["corpus"]["seconds"] == pytest.approx((REPO / "resources/enwiki-excerpt.xml.bz2").stat().st_size
                                                    / plan.DEFAULT_RATES["corpus"])
    text = plan.render(demo_plan(tmp_path))
    assert "peak disk:" in text and "cost:" not in text


def test_estimates_come_from_earlier_runs_benchmarks(tmp_path):
    bench = tmp_path / "benchmarks"
    for rel, seconds in (("pretrain/demo.tsv", 200.0), ("finetune/demo/CoLA/lr0.0001_bs16_ep2_seed1.tsv", 30.0),
                         ("corpus/wiki.tsv", 10.0)):
        (bench / rel).parent.mkdir(parents=True, exist_ok=True)
        (bench / rel).write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")
    log = tmp_path / "runs/demo/pretrain_log.jsonl"
    log.parent.mkdir(parents=True)
    log.write_text('{"event": "train", "elapsed_s": 70.0, "loss": 5.0, "lr": 0.001, "mfu": 0.1}\n'
                   '{"event": "end", "elapsed_s": 75.0}\n')
    by = stages(demo_plan(tmp_path))
    assert by["pretrain"]["seconds"] == 72 + (200 - 75)             # the earlier job's time beyond its training
    assert "measured" in by["pretrain"]["basis"] and "measured" in by["corpus"]["basis"]
    assert by["corpus"]["seconds"] == pytest.approx(10.0)
    cola = plan.trial_seconds(plan.load_config(REPO / "config" / "config.yaml"), tmp_path, "demo", "CoLA",
                              "lr0.0001_bs16_ep4_seed1", None)
    assert cola == (60.0, "measured")                               # 15 s per epoch x 4 epochs


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "config" / "recipes").glob("*.yaml")))
def test_real_recipes_plan_without_their_inputs(recipe, tmp_path):
    config = plan.load_config(REPO / "config" / "recipes" / recipe)
    config["cost_per_device_hour"] = 2.0
    p = plan.plan(config, tmp_path, "NVIDIA H100 80GB HBM3")
    by = stages(p)
    assert by["pretrain"]["seconds"] and by["pretrain"]["device_hours"] > 1     # GPU-days of pretraining
    gpus = {r["implementation"]["gpus"] for r in config["runs"].values()}
    assert by["finetune"]["device_hours"] > 0 and by["samples"]["jobs"] == sum(c["parts"] for c in config["corpora"].values())
    text = plan.render(p)
    assert "cost:" in text and "not estimated: corpus, samples" in text, text     # the dumps are not here
    assert gpus and all(g >= 1 for g in gpus)


@pytest.mark.workflow
def test_plan_counts_the_jobs_snakemake_plans(repo_root, resources, tmp_path):
    work = copy_repo(repo_root, tmp_path / "w", resources)
    planned = planned_jobs(snakemake(work, "-n", "--forceall", "--cores", "2"))
    counted = {}
    for rule, n in planned.items():
        if rule != "all":
            stage = next(s for prefix, s in STAGE_OF_RULE.items() if rule.startswith(prefix))
            counted[stage] = counted.get(stage, 0) + n
    p = plan.plan(plan.load_config(work / "config" / "config.yaml"), work / "results", None)
    assert {k: v["jobs"] for k, v in stages(p).items() if v["jobs"]} == counted
    shutil.rmtree(work / ".snakemake", ignore_errors=True)


@pytest.mark.parametrize("family", ["bert", "roberta", "modernbert"])
def test_parameter_estimate_matches_the_built_model(family):
    """The checkpoint-disk estimate's weight count, against the model the recipe builds (GeGLU's third
    matrix, no biases and the padded vocabulary for modernbert)."""
    from workflow_scripts.pretrain.models import factory

    spec = {"type": family, "hidden_size": 64, "num_layers": 3, "num_heads": 2, "intermediate_size": 96,
            "dropout": 0.0, "attention_dropout": 0.0, "max_position_embeddings": 128, "layer_norm": "pre",
            **({"head_dim": 32} if family == "modernbert" else {})}
    model = factory.build(spec, {}, {"vocab_size": 1000, "pad": 0, "cls": 101, "sep": 102}, nsp=False).model
    assert plan.parameters(spec, 1000) == pytest.approx(sum(p.numel() for p in model.parameters()), rel=0.01)
