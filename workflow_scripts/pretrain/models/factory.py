"""The model a recipe trains (model.type): our BERT, or RoBERTa / ALBERT / DeBERTa-v2 from transformers.

Each takes the shards' micro-batches and returns (loss, mlm_sum, n); each exports a Hugging Face
folder that AutoModelForSequenceClassification loads (the GLUE stage). Our BERT lives in
bert_model.py (+ hf_export.py), the transformers families in hf_families.py. This module stays
light (no torch at import) so config checks can use check().

implementation.compile (our BERT only): each encoder layer goes through torch.compile. Layers see
fixed shapes (micro-batch x sequence length), so they compile once (a last, smaller validation
batch once more); the sparse MLM head gathers a data-dependent number of positions and stays eager.
Compiling costs tens of seconds at start-up (a C++ compiler must be installed) and pays back on
long runs; it changes nothing but float rounding.
"""
from dataclasses import dataclass
from typing import Any, Callable
from workflow_scripts.errors import BadInput

TYPES = ("bert", "roberta", "albert", "deberta-v2")
# Family-specific keys of `model:` and each family's default (the recipe's null = that default).
FAMILY_KEYS = {
    "albert": {"embedding_size": 128, "num_hidden_groups": 1, "inner_group_num": 1},
    "deberta-v2": {"relative_attention": True, "position_buckets": 256, "max_relative_positions": -1,
                   "pos_att_type": ["p2c", "c2p"], "position_biased_input": False},
}


def check(spec: dict, impl: dict) -> str | None:
    """The first problem with a `model:` spec for its type, or None."""
    family = spec.get("type", "bert")
    for owner, keys in FAMILY_KEYS.items():
        for key in keys:
            if spec.get(key) is not None and owner != family:
                return f"model.{key}: applies to model.type {owner} only (this run's type is {family})"
    if impl.get("compile") and family != "bert":
        return f"implementation.compile: applies to model.type bert only (this run's type is {family})"
    if spec.get("hidden_size", 768) % spec.get("num_heads", 12):
        return f"model.hidden_size: {spec.get('hidden_size')} is not a multiple of model.num_heads ({spec.get('num_heads')})"
    return None


@dataclass
class Built:
    model: Any                          # torch.nn.Module: forward(**batch) -> (loss, mlm_sum, n)
    description: dict                   # the model's full config, for the log's first line
    export: Callable[[dict, str, str], None]   # (full state dict, tokenizer dir, out dir)
    notes: list                         # lines for the human log


def build(spec: dict, impl: dict, special: dict, nsp: bool) -> Built:
    """The model for recipe `model:` spec; `special` from hf_export.tokenizer_special_ids; nsp: the
    shards carry next-sentence labels."""
    problem = check(spec, impl)
    if problem:
        raise BadInput(problem)
    family = spec["type"]
    if family == "bert":
        from workflow_scripts.pretrain.models import hf_export
        from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining

        keys = ("hidden_size", "num_layers", "num_heads", "intermediate_size", "layer_norm", "dropout",
                "attention_dropout", "max_position_embeddings")
        cfg = BertConfig(vocab_size=special["vocab_size"], pad_token_id=special["pad"], nsp=nsp,
                         **{k: spec[k] for k in keys})
        model = BertForPretraining(cfg)
        notes = [f"{spec['layer_norm']}-LN BERT" + (" + NSP head" if nsp else "")]
        if impl.get("compile"):
            for layer in model.layers:
                layer.compile()
            notes.append("encoder layers compiled with torch.compile (the first steps include compiling)")
        return Built(model, cfg.to_dict(), lambda state, tok, out: hf_export.export(state, cfg, tok, out), notes)

    import json

    from workflow_scripts.pretrain.models import hf_families

    config = hf_families.hf_config(spec, special)
    model = hf_families.MaskedLM(family, config)
    notes = [f"{family} ({type(model.hf).__name__}, sparse MLM head)"]
    if nsp:
        notes.append(f"the shards' next-sentence labels are ignored: {family} has no NSP head")
    return Built(model, json.loads(config.to_json_string()),
                 lambda state, tok, out: hf_families.export(state, family, config, tok, out), notes)
