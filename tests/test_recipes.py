"""The shipped paper recipes hold the papers' values (read from their scripts and READMEs), so a drift fails.

ExtremeBERT: extreme-bert/extreme-bert (configs/bert-base.yaml, main.py, pretrain_search.sh,
run_pretraining.sh, finetune_search.sh, run_glue.sh, summarize_val.sh). academic-budget-bert:
IntelLabs/academic-budget-bert README (the best-configuration run_pretraining.py example) and
dataset/README. Each recipe's header comment names its remaining deviations.
"""
import math
from pathlib import Path

import pytest
import yaml

from workflow_scripts import config_checks
from workflow_scripts.pretrain import schedules, stopping

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
RECIPES = REPO / "config" / "recipes"

# Pretraining values both papers share (run_pretraining.sh / the README example).
BERT_LARGE_PRE_LN = {"type": "bert", "hidden_size": 1024, "num_layers": 24, "num_heads": 16,
                     "intermediate_size": 4096, "layer_norm": "pre", "dropout": 0.1, "attention_dropout": 0.1}
ADAMW = {"name": "adamw", "lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.98], "eps": 1e-6,
         "gradient_clipping": 0.0}
SAMPLES = {"max_seq_length": 128, "masked_lm_prob": 0.15, "max_predictions_per_seq": 20, "dup_factor": 10,
           "short_seq_prob": 0.1, "nsp": False, "seed": 42}
# finetune_search.sh's grid (the 24h-BERT paper's table 7).
SEARCH_GRID = {"default": {"lr": [1e-5, 3e-5, 5e-5, 8e-5], "batch_size": [16, 32], "epochs": [3, 5, 10]},
               **{t: {"lr": [5e-5, 8e-5], "batch_size": [32], "epochs": [3, 5]} for t in ("MNLI", "QQP", "QNLI")}}
ALL_TASKS = {"CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"}


def load(name):
    text = (RECIPES / name).read_text()
    config = yaml.safe_load(text)
    config_checks.validate(config, SCHEMA)   # the schema parses it, defaults filled
    return text, config


def only_run(config):
    (recipe,) = config["runs"].values()
    return recipe


def subset(actual: dict, expected: dict) -> dict:
    return {k: actual[k] for k in expected}


def test_extremebert_pretraining_is_its_scripts():
    text, config = load("extremebert.yaml")
    run = only_run(config)
    assert subset(run["model"], BERT_LARGE_PRE_LN) == BERT_LARGE_PRE_LN
    assert run["optimizer"] == {**ADAMW, "kwargs": {}}
    # pretrain_search.sh: elastic step decay, interval_shrink_rate 1.4142, cr_k 6, on steps.
    assert run["schedule"] == {"name": "elastic_step", "by": "step", "warmup_proportion": 0.06,
                               "kwargs": {"interval_shrink_rate": 1.4142, "cr_k": 6}}
    assert run["max_steps"] == 23000 and run["batch_size"] == 4096 and run["seed"] == 42
    assert "total_training_time" not in run                     # steps only: no fake time budget
    assert run["implementation"]["precision"] == "fp16"
    assert subset(config["samples"], SAMPLES) == SAMPLES and config["samples"]["valid_fraction"] == 0.1
    assert config["tokenizer"] == {"pretrained": "bert-large-uncased"}
    sources = {(c["name"], c["config"]) for c in config["corpora"].values()}
    assert sources == {("wikipedia", "20220301.en"), ("bookcorpusopen", "plain_text")}
    assert sum(c["parts"] for c in config["corpora"].values()) == 256
    # an article / a book per row already: each row is a document, as their shards take them
    assert {c["documents"]["by"] for c in config["corpora"].values()} == {"row"}
    budget = stopping.Budget.from_recipe(run)
    assert budget.budget_s == math.inf and budget.max_steps == 23000


def extremebert_lr(step, init_lr=1e-3, steps=23000, warmup=0.06, shrink=1.4142, cr_k=6):
    """ExtremeBERT's LR at an optimizer step, re-derived from pretrain_search.sh (num_iter =
    int(steps * (1 - warmup))) and customized_lr_curves.get_elastic_step_decay_curve."""
    total_warmup = warmup * steps
    if step < total_warmup:
        return init_lr * step / total_warmup
    t, num_iter = step - total_warmup, int(steps * (1 - warmup))
    if t >= num_iter:
        return 0.0
    a = 1 / shrink
    k = math.floor(math.log(1 - t / num_iter) / math.log(a))
    return init_lr * min(min(1, 0.5 / a) ** (k - cr_k + 1), 1)


def test_extremebert_lr_curve_step_by_step():
    run = only_run(load("extremebert.yaml")[1])
    curve = schedules.Schedule(run["schedule"], run["optimizer"]["lr"], stopping.budget_seconds(run), run["max_steps"])
    steps = [0, 690, 1380, 5000, 10000, 15000, 18000, 20000, 21000, 22000, 22500, 22999]
    for step in steps:
        assert curve.lr(elapsed_s=1e9, step=step) == pytest.approx(extremebert_lr(step), rel=1e-9, abs=1e-12), step
    assert extremebert_lr(15000) == 1e-3 and extremebert_lr(22500) < 1e-3 / 4   # holds, then steps down


def test_extremebert_finetuning_is_its_run_glue():
    _, config = load("extremebert.yaml")
    ft = config["finetune"]
    assert set(ft["tasks"]) == ALL_TASKS and ft["grid"] == SEARCH_GRID and ft["seeds"] == [42]
    assert set(ft["stilts"]) == {"RTE", "MRPC", "STS-B"}
    assert ft["select_by"] == "first_metric"
    assert (ft["warmup_proportion"], ft["weight_decay"], ft["adam_betas"], ft["adam_eps"]) == (0.06, 0.1, [0.9, 0.999], 1e-8)
    assert ft["max_grad_norm"] == 1.0 and ft["max_seq_length"] == 128
    assert ft["implementation"]["precision"] == "fp32"


def test_academic_budget_bert_is_its_readme_best_configuration():
    _, config = load("academic-budget-bert-24h.yaml")
    run = only_run(config)
    assert subset(run["model"], BERT_LARGE_PRE_LN) == BERT_LARGE_PRE_LN
    assert run["optimizer"] == {**ADAMW, "kwargs": {}}
    assert run["schedule"] == {"name": "linear", "by": "time", "warmup_proportion": 0.06, "kwargs": {}}
    assert run["total_training_time"] == 24.0 and run["early_exit_time_marker"] == 24.0
    assert run["max_steps"] is None and run["batch_size"] == 4096 and run["seed"] == 42
    assert (run["validation_begin_proportion"], run["validation_end_proportion"]) == (0.05, 0.01)
    assert subset(run["early_stopping"], {"max_valid_loss": 6.0, "after_minutes": 180}) == {
        "max_valid_loss": 6.0, "after_minutes": 180}
    assert run["implementation"]["precision"] == "fp16" and run["implementation"]["micro_batch_size"] == 32
    assert subset(config["samples"], SAMPLES) == SAMPLES
    assert config["tokenizer"] == {"pretrained": "bert-large-uncased"}
    # Theirs reads a book per document; the hub's bookcorpus is a sentence per row with no book id, so
    # rows are joined into book-sized documents (a quarter of a mean book), never a sentence each.
    books = config["corpora"]["books"]
    assert books["name"] == "bookcorpus"
    assert subset(books["documents"], {"by": "chars", "chars": 100000}) == {"by": "chars", "chars": 100000}
    assert config["corpora"]["wiki"]["documents"]["by"] == "row"   # a dump: a document per article
    ft = config["finetune"]
    assert set(ft["tasks"]) == ALL_TASKS and ft["grid"] == SEARCH_GRID
    assert set(ft["stilts"]) == {"RTE", "MRPC", "STS-B"}
    assert (ft["weight_decay"], ft["adam_betas"], ft["adam_eps"], ft["max_grad_norm"]) == (0.01, [0.9, 0.999], 1e-8, 1.0)
    assert ft["implementation"]["precision"] == "fp32"


@pytest.mark.parametrize("name, named", [
    ("extremebert.yaml", ["Embedding LayerNorm", "Vocabulary", "Validation cadence", "STILTs"]),
    ("academic-budget-bert-24h.yaml", ["BookCorpus as documents", "Vocabulary", "Validation cadence"]),
])
def test_each_paper_recipe_names_its_deviations(name, named):
    header = "".join(line for line in (RECIPES / name).read_text().splitlines(keepends=True)
                     if line.startswith("#"))
    assert "deviations" in header.lower()
    for topic in named:
        assert topic in header, topic


def test_modern_budget_recipe_holds_the_papers_choices():
    """ModernBERT-base's shape, MosaicBERT/ModernBERT's 30% masking, no dropout, LR 8e-4, wsd 1-sqrt."""
    text, config = load("modern-budget.yaml")
    run = only_run(config)
    model = run["model"]
    base = {"type": "modernbert", "hidden_size": 768, "num_layers": 22, "intermediate_size": 1152,
            "dropout": 0.0, "attention_dropout": 0.0}
    assert subset(model, base) == base
    assert model["num_heads"] * model["head_dim"] == model["hidden_size"] and model["head_dim"] == 64
    assert run["optimizer"] == {"name": "adamw", "lr": 8e-4, "weight_decay": 0.01, "betas": [0.9, 0.98], "eps": 1e-6,
                                "gradient_clipping": 1.0, "kwargs": {}}
    assert run["schedule"] == {"name": "wsd", "by": "time", "warmup_proportion": 0.06,
                               "kwargs": {"decay_fraction": 0.2, "shape": "1-sqrt", "min_lr_ratio": 0.0}}
    assert run["total_training_time"] == 24.0 and run["batch_size"] == 4096
    assert run["implementation"]["gpus"] == 1 and run["implementation"]["precision"] == "bf16"
    samples = config["samples"]
    assert samples["masked_lm_prob"] == 0.3 and samples["max_predictions_per_seq"] >= 0.3 * samples["max_seq_length"]
    assert samples["packing"] == "documents" and samples["nsp"] is False
    assert "deviations" in text.lower() and "Packing" in text and "Vocabulary" in text
    # The hub's bookcorpus is a sentence per row: joined into book-sized documents, as the 24 h recipe.
    assert subset(config["corpora"]["books"]["documents"], {"by": "chars", "chars": 100000}) == {
        "by": "chars", "chars": 100000}
    # The 24-hour curve: flat at the peak until 0.06 + 0.94 x 0.8 of the time, 1-sqrt down to 0 at 24 h.
    curve = schedules.Schedule(run["schedule"], 8e-4, stopping.budget_seconds(run))
    hour = 3600.0
    assert curve.lr(0.03 * 24 * hour, 0) == pytest.approx(4e-4)
    assert curve.lr(0.8 * 24 * hour, 0) == pytest.approx(8e-4)
    end_of_stable = 0.06 + 0.94 * 0.8
    assert curve.lr((end_of_stable + 0.94 * 0.2 * 0.25) * 24 * hour, 0) == pytest.approx(4e-4)
    assert curve.lr(24 * hour, 0) == pytest.approx(0.0, abs=1e-15)


def test_the_tiny_modern_run_is_the_recipe_at_cpu_size():
    """tests/configs/families.yaml's `modern` run keeps the recipe's choices; only sizes and the clock differ."""
    recipe = only_run(load("modern-budget.yaml")[1])
    tiny = yaml.safe_load((REPO / "tests" / "configs" / "families.yaml").read_text())["runs"]["modern"]
    assert tiny["model"]["type"] == "modernbert"
    assert tiny["model"]["dropout"] == recipe["model"]["dropout"] == 0.0
    assert tiny["optimizer"] == {k: v for k, v in recipe["optimizer"].items() if k != "kwargs"}
    assert tiny["schedule"] == {**recipe["schedule"], "by": "step"}   # 3 steps: the step clock
