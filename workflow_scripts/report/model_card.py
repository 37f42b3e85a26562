"""The model card (README.md, huggingface_hub's ModelCard) in every model folder we hand out, so it can
be published as it is: what the model is, the data it saw and how much, the recipe, how long it
trained and where it ended, and GLUE dev scores where it was fine-tuned.

The facts come from the run's own records (pretrain_log.jsonl, the shards' attrs, a trial's
dev metrics), never from the config alone: the card says what happened, not what was asked.
"""
import json
from pathlib import Path

from workflow_scripts import atomic

CARD = "README.md"
REPO_URL = "a Snakemake re-implementation of ExtremeBERT (arXiv 2211.17201)"


def _events(log_path) -> dict:
    """The last event of each kind in a pretrain_log.jsonl (config, valid, end, ...)."""
    last = {}
    for line in Path(log_path).read_text().splitlines():
        if line.strip():
            event = json.loads(line)
            last[event["event"]] = event
    return last


def _shard_counts(paths) -> dict:
    """{k: (documents, samples)} of the k-th shard (the rule lists them in shard order), from each
    shard's attrs and row count."""
    import h5py

    counts = {}
    for k, path in enumerate(paths):
        with h5py.File(path, "r") as f:
            docs = f.attrs.get("num_documents")
            counts[k] = (None if docs is None else int(docs), len(f["input_ids"]))
    return counts


def pretrain_facts(log_path, train_shards, valid_shards, run: str, corpora: dict) -> dict:
    """What a card says about a pretraining run. corpora: {name: {type, source, shards: [k, ...] or None
    for every shard}}."""
    ev = _events(log_path)
    config, end, valid = ev["config"], ev.get("end", {}), ev.get("valid")
    train, held_out = _shard_counts(train_shards), _shard_counts(valid_shards)
    data = {}
    for name, corpus in corpora.items():
        ks = corpus["shards"] if corpus.get("shards") is not None else sorted(set(train) | set(held_out))
        docs = [train[k][0] for k in ks if k in train]
        data[name] = {"type": corpus["type"], "source": corpus["source"],
                      "train_documents": None if None in docs else sum(docs),
                      "train_samples": sum(train.get(k, (0, 0))[1] for k in ks),
                      "valid_samples": sum(held_out.get(k, (0, 0))[1] for k in ks)}
    model = config["model"]
    # model.layer_norm applies to our BERT only; the transformers families are post-LN, ours modern pre-LN.
    layer_norm = model.get("layer_norm") if model["type"] == "bert" else {"modernbert": "pre"}.get(model["type"], "post")
    return {"run": run, "model_type": model["type"], "layer_norm": layer_norm,
            "hidden_size": model["hidden_size"], "num_layers": model["num_layers"], "num_heads": model["num_heads"],
            "parameters": config["parameters"], "seq_len": config["seq_len"], "batch_size": config["batch_size"],
            "optimizer": {k: config["optimizer"][k] for k in ("name", "lr", "weight_decay") if k in config["optimizer"]},
            "schedule": {k: config["schedule"][k] for k in ("name", "by", "warmup_proportion")
                         if k in config["schedule"]},
            "total_training_time_h": config.get("total_training_time"), "max_steps": config.get("max_steps"),
            "precision": config["implementation"]["precision"], "world_size": config["world_size"],
            "steps": end.get("step"), "training_seconds": end.get("elapsed_s"), "stop_reason": end.get("reason"),
            "final_valid_loss": valid["valid_loss"] if valid else None, "corpora": data}


def _data_table(corpora: dict) -> str:
    rows = ["| corpus | type | source | train documents | train samples | valid samples |",
            "|---|---|---|---:|---:|---:|"]
    rows += [f"| {n} | {c['type']} | `{c['source']}` | "
             + ("unknown" if c["train_documents"] is None else f"{c['train_documents']:,}")
             + f" | {c['train_samples']:,} | "
             f"{c['valid_samples']:,} |" for n, c in corpora.items()]
    return "\n".join(rows)


def _glue_table(glue: dict) -> str:
    rows = ["| task | dev score | metrics |", "|---|---:|---|"]
    rows += [f"| {t} | {r['score']:.2f} | " + ", ".join(f"{k} {v:.2f}" for k, v in r["metrics"].items()) + " |"
             for t, r in glue.items()]
    return "\n".join(rows)


def _eval_results(glue: dict) -> list:
    from huggingface_hub import EvalResult

    return [EvalResult(task_type="text-classification", dataset_type="nyu-mll/glue", dataset_name=f"GLUE {task}",
                       dataset_config=task.lower().replace("-", ""), dataset_split="validation",
                       metric_type=metric, metric_value=round(value, 4))
            for task, r in glue.items() for metric, value in r["metrics"].items()]


def _hours(seconds) -> str:
    return "unknown" if seconds is None else f"{seconds:,.0f} s ({seconds / 3600:.2f} h)"


def _body(facts: dict, glue: dict, task: str | None) -> str:
    """The card's Markdown below its metadata."""
    opt, sch = facts["optimizer"], facts["schedule"]
    use = ("text-classification", "AutoModelForSequenceClassification") if task else ("fill-mask", "AutoModelForMaskedLM")
    loss, budget = facts["final_valid_loss"], facts["total_training_time_h"]
    lines = [f"# {facts['run']}" + (f", fine-tuned on GLUE {task}" if task else ""), "",
             f"A {facts['model_type']} encoder ({facts['layer_norm']}-LN, {facts['num_layers']} layers, hidden "
             f"{facts['hidden_size']}, {facts['num_heads']} heads, {facts['parameters'] / 1e6:.1f}M parameters) "
             f"pre-trained with masked-LM on a time budget by {REPO_URL}"
             + (f", then fine-tuned on GLUE {task}." if task else "."), "",
             "```python", "from transformers import pipeline", "",
             f'model = pipeline("{use[0]}", model="PATH_OR_REPO_ID")  # or transformers.{use[1]}', "```", "",
             "## Training data", "", _data_table(facts["corpora"]), "",
             f"Samples are {facts['seq_len']} tokens long.", "",
             "## Recipe", "",
             f"- batch {facts['batch_size']} samples on {facts['world_size']} process(es), precision "
             f"{facts['precision']}",
             f"- optimizer {opt.get('name')}, peak LR {opt.get('lr')}, weight decay {opt.get('weight_decay')}",
             f"- schedule {sch.get('name')} by {sch.get('by')}, warmup {sch.get('warmup_proportion')}",
             ("- no time budget" if budget is None else f"- budget {budget:.4g} h")
             + (f", max_steps {facts['max_steps']}" if facts["max_steps"] else ""), "",
             "## Training", "",
             f"- {facts['steps']} optimizer steps in {_hours(facts['training_seconds'])} of training "
             f"(validation and checkpoints not counted; stopped: {facts['stop_reason']})",
             "- final validation MLM loss " + ("not measured" if loss is None else f"{loss:.4f}"), ""]
    if glue:
        lines += ["## GLUE dev", "", _glue_table(glue), ""]
    lines += ["Every figure above comes from this run's own log and shards (pretrain_log.jsonl, the samples' "
              "HDF5 attrs" + (", the GLUE trials' dev metrics" if glue else "") + ").", ""]
    return "\n".join(lines)


def card(facts: dict, glue: dict | None = None, task: str | None = None):
    """The ModelCard: metadata (library, pipeline, datasets, GLUE results as model-index) + body.
    glue: {task: {"score", "metrics"}} dev results to list; task: the GLUE task it was fine-tuned on."""
    from huggingface_hub import ModelCard, ModelCardData

    glue = glue or {}
    hub_datasets = [c["source"] for c in facts["corpora"].values() if c["type"] == "huggingface"]
    data = ModelCardData(library_name="transformers", pipeline_tag="text-classification" if task else "fill-mask",
                         tags=[facts["model_type"], "masked-lm", "extremebert", "snakemake"], model_name=facts["run"],
                         datasets=hub_datasets or None, eval_results=_eval_results(glue) or None,
                         extremebert={**{k: v for k, v in facts.items() if k != "corpora"},
                                      "corpora": facts["corpora"], "finetuned_on": task})
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_body(facts, glue, task)}")


def write(model_dir, card_) -> Path:
    path = Path(model_dir) / CARD
    atomic.write_text(path, str(card_))
    return path


def facts_of(model_dir) -> dict | None:
    """The facts a folder's card recorded (its `extremebert` metadata), or None without a card of ours."""
    from huggingface_hub import ModelCard

    path = Path(model_dir) / CARD
    if not path.is_file():
        return None
    return ModelCard.load(path).data.to_dict().get("extremebert")


def write_finetuned(model_out, base_dir, record: dict) -> Path | None:
    """A fine-tuned folder's card: the base model's facts plus this trial's GLUE dev scores.
    A base folder without our card (a hub model) gets none: we would not know what to say."""
    facts = facts_of(base_dir)
    if facts is None:
        return None
    facts = {k: v for k, v in facts.items() if k != "finetuned_on"}
    return write(model_out, card(facts, {record["task"]: record}, task=record["task"]))
