"""The GLUE stage as a workflow: STILTs (RTE after MNLI's selection), the hub source, several runs.

Dry runs plan the real demo config; the tiny run starts from a small model placed where
pretraining puts it (results/runs/demo/model) and allows only the GLUE rules, so it runs real
fine-tuning jobs on the smoke set in seconds without pretraining first.
"""
import json
import re

import pytest
import yaml

from tests.helpers.workflow import copy_repo, feature_config, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

GLUE_RULES = ["finetune_trial", "finetune_mnli_trial", "select_trial", "select_mnli_trial"]


def write_config(workdir, name: str, override: dict):
    path = workdir / name
    path.write_text(yaml.safe_dump(override))
    return str(path)


def dag_edges(proc) -> tuple:
    """(node id -> (rule, {wildcard: value}), set of (from, to) edges) from `snakemake -n --dag` DOT output."""
    nodes = {}
    for m in re.finditer(r'^\s*(\d+)\[label = "([^"]*)"', proc.stdout, re.M):
        rule, *fields = m[2].split("\\n")
        nodes[m[1]] = (rule, dict(f.split(": ", 1) for f in fields if ": " in f))
    edges = set(re.findall(r"^\s*(\d+) -> (\d+)", proc.stdout, re.M))
    return nodes, edges


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, repo_root, resources):
    return copy_repo(repo_root, tmp_path_factory.mktemp("glue_wf"), resources)


def test_stilts_plan_puts_rte_and_mrpc_after_mnli_selection(workdir):
    edit = "tests/configs/stilts.yaml"  # the copy's
    jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "2", "--configfile", edit))
    # MNLI's 2 trials (one per seed) keep their models; the other 8 tasks' 16 trials don't.
    assert jobs["finetune_mnli_trial"] == 2 and jobs["finetune_trial"] == 16
    assert jobs["select_mnli_trial"] == 1 and jobs["select_trial"] == 8

    nodes, edges = dag_edges(snakemake(workdir, "-n", "--dag", "--cores", "2", "--configfile", edit))
    select_mnli = [n for n, (rule, _) in nodes.items() if rule == "select_mnli_trial"]
    assert len(select_mnli) == 1
    after_mnli = {nodes[b][1]["task"] for a, b in edges if a == select_mnli[0] and nodes[b][0] == "finetune_trial"}
    assert after_mnli == {"RTE", "MRPC"}
    rte_trials = [n for n, (rule, wc) in nodes.items() if rule == "finetune_trial" and wc.get("task") == "RTE"]
    assert len(rte_trials) == 2 and all((select_mnli[0], n) in edges for n in rte_trials)

    # Off (the default): no MNLI model is kept and every trial starts from the pre-trained model.
    jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "2"))
    assert jobs["finetune_trial"] == 9 and "finetune_mnli_trial" not in jobs and "select_mnli_trial" not in jobs


def test_two_runs_plan_everything_twice_and_one_report(workdir):
    edit = "tests/configs/two-runs.yaml"
    proc = snakemake(workdir, "-n", "-p", "--cores", "2", "--configfile", edit)
    jobs = planned_jobs(proc)
    assert jobs["pretrain"] == 2 and jobs["finetune_trial"] == 16 and jobs["finetune_mnli_trial"] == 2
    assert jobs["make_submission"] == 2 and jobs["report"] == 1
    assert jobs["report_data"] == 1                  # the data report: one, whatever the runs
    report_cmd = next(line for line in proc.stdout.splitlines()
                      if "workflow_scripts.report.make_report" in line and "--pretrain-logs" in line)
    for run in ("demo", "lowlr"):
        assert f"results/runs/{run}/pretrain_log.jsonl" in report_cmd
        assert f"results/runs/{run}/glue/RTE/best.json" in report_cmd
    # Each run's RTE starts from its own MNLI model.
    assert "--task RTE" in proc.stdout
    for run in ("demo", "lowlr"):
        assert re.search(rf"--task RTE .*--model results/runs/{run}/glue/MNLI/best_model ", proc.stdout)


def test_hub_source_plans_no_glue_files_and_a_missing_glue_file_stops_the_plan(workdir, tmp_path):
    hub = write_config(workdir, "hub.yaml", {"glue": {"source": "huggingface", "name": str(tmp_path / "hub"),
                                                      "path": "no/such/folder"}})
    proc = snakemake(workdir, "-n", "-p", "--cores", "2", "--configfile", hub)
    trial_inputs = re.findall(r"rule finetune_trial:\n\s+input: ([^\n]*)", proc.stdout)
    assert len(trial_inputs) == 9 and all(i == "results/runs/demo/model" for i in trial_inputs)
    assert "cache_dir" not in proc.stdout and "--cache-dir" not in proc.stdout

    missing = write_config(workdir, "missing.yaml", {"glue": {"source": "dir", "path": "no/such/folder"}})
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", missing, check=False)
    assert proc.returncode != 0
    assert "no/such/folder/CoLA/train.tsv" in proc.stdout + proc.stderr


def place_tiny_model(folder, tokenizer_dir):
    """What pretraining leaves for a pre-LN run (our export's layout): RoBERTa-PreLayerNorm MLM + tokenizer."""
    import torch
    from transformers import AutoTokenizer, RobertaPreLayerNormConfig, RobertaPreLayerNormForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = RobertaPreLayerNormConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64, max_position_embeddings=130,
                                       pad_token_id=tokenizer.pad_token_id, type_vocab_size=2)
    RobertaPreLayerNormForMaskedLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_tiny_stilts_run_from_the_hub_layout(workdir, hub_copy, bert_tokenizer_dir, tmp_path):
    """MNLI (2 trials) -> its selection exports best_model -> the RTE trial starts from it; data from hub files."""
    cache = tmp_path / "datasets_cache"
    config = feature_config("glue-hub-stilts")
    config["glue"].update(name=str(hub_copy / "hub"), cache_dir=str(cache))
    edit = write_config(workdir, "glue-hub-stilts.yaml", config)
    place_tiny_model(workdir / "results/runs/demo/model", bert_tokenizer_dir)
    targets = ["results/runs/demo/glue/RTE/best.json", "results/runs/demo/glue/MNLI/best.json"]
    proc = snakemake(workdir, *targets, "--cores", "2", "--allowed-rules", *GLUE_RULES, "--configfile", edit)
    run = workdir / "results/runs/demo/glue"

    # Order, from Snakemake's own log: MNLI's selection finished before the RTE trial started.
    text = proc.stdout + proc.stderr
    select_done = text.index("(Rule: select_mnli_trial)")
    rte_start = re.search(r"rule finetune_trial:\n(?:.*\n)*?\s+wildcards: run=demo, task=RTE", text)
    assert rte_start and select_done < rte_start.start()

    best = json.loads((run / "MNLI/best.json").read_text())
    chosen = run / "MNLI" / best["chosen"] / "model"
    assert len(best["trials"]) == 2 and best["init_task"] is None
    assert (run / "MNLI/best_model/model.safetensors").stat().st_ino == (chosen / "model.safetensors").stat().st_ino
    assert json.loads((run / "MNLI/best_model/config.json").read_text())["finetuning_task"] == "MNLI"

    rte_trial = "lr0.0001_bs32_ep1_seed1"
    record = json.loads((run / "RTE" / rte_trial / "dev_metrics.json").read_text())
    assert record["init_task"] == "MNLI" and record["init_model"] == "results/runs/demo/glue/MNLI/best_model"
    log = (workdir / "logs/finetune/demo/RTE" / f"{rte_trial}.log").read_text()
    assert "init: results/runs/demo/glue/MNLI/best_model, fine-tuned on MNLI (STILTs)" in log
    assert json.loads((run / "RTE/best.json").read_text())["init_task"] == "MNLI"
    # The hub files were read (the dir path does not exist), through the configured cache.
    assert record["train_examples"] > 0 and any(cache.rglob("*.arrow"))
    assert not (workdir / "logs/pretrain").exists()  # nothing upstream ran
