"""The model a recipe trains (model.type): our BERT, our modern encoder, or RoBERTa / ALBERT / DeBERTa-v2
from transformers.

Each takes the shards' micro-batches and returns (loss, mlm_sum, n); each exports a Hugging Face
folder that AutoModelForSequenceClassification loads (the GLUE stage). Our BERT lives in bert.py
(+ hf_export.py), the modern encoder in modern.py (+ modern_export.py), the transformers families in hf_families.py, what a spec may say per family in
specs.py. No torch at import here either: the builders are imported when build() runs.

implementation.compile (our BERT only): each encoder layer goes through torch.compile. Layers see
fixed shapes (micro-batch x sequence length), so they compile once (a last, smaller validation
batch once more); the sparse MLM head gathers a data-dependent number of positions and stays eager.
Compiling costs tens of seconds at start-up (a C++ compiler must be installed) and pays back on
long runs; it changes nothing but float rounding.
"""
from dataclasses import dataclass
from typing import Any, Callable
from workflow_scripts.errors import BadInput
from workflow_scripts.pretrain.models import specs


@dataclass
class Built:
    model: Any                          # torch.nn.Module: forward(**batch) -> (loss, mlm_sum, n)
    description: dict                   # the model's full config, for the log's first line
    export: Callable[..., None]   # (full state dict, tokenizer dir, out dir, extra=None): see hf_export.write_folder
    notes: list                         # lines for the human log
    # CPU batch -> the extra forward kwargs (index tensors, ints) whose sizes are data; the prefetch
    # thread runs it on the host, so the forward on a GPU never waits for the device (issue 13).
    host_indices: Callable[[dict], dict]


def build(spec: dict, impl: dict, special: dict, nsp: bool) -> Built:
    """The model for recipe `model:` spec; `special` from hf_export.tokenizer_special_ids; nsp: the
    shards carry next-sentence labels."""
    problem = specs.check(spec, impl)
    if problem:
        raise BadInput(problem)
    builders = {"bert": _bert, "modernbert": _modern}
    return builders.get(spec["type"], _transformers_family)(spec, impl, special, nsp)


def _bert(spec: dict, impl: dict, special: dict, nsp: bool) -> Built:
    from workflow_scripts.pretrain.models import hf_export
    from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining, host_indices

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
    return Built(model, cfg.to_dict(),
                 lambda state, tok, out, extra=None: hf_export.export(state, cfg, tok, out, extra), notes,
                 host_indices)


def _modern(spec: dict, impl: dict, special: dict, nsp: bool) -> Built:
    from workflow_scripts.pretrain.models import modern_export
    from workflow_scripts.pretrain.models.modern import ModernConfig, ModernForPretraining, host_indices, padded_vocab

    options = specs.family_options(spec)
    cfg = ModernConfig(vocab_size=padded_vocab(special["vocab_size"]), pad_token_id=special["pad"],
                       rope_theta=float(options["rope_theta"]),
                       **{k: spec[k] for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size",
                                               "dropout", "attention_dropout", "max_position_embeddings")})
    notes = [f"modernbert (unpadded, GeGLU, RoPE, head dim {options['head_dim']}, vocabulary "
             f"{special['vocab_size']} padded to {cfg.vocab_size})"]
    if nsp:
        notes.append("the shards' next-sentence labels are ignored: modernbert has no NSP head")
    return Built(ModernForPretraining(cfg), cfg.to_dict(),
                 lambda state, tok, out, extra=None: modern_export.export(state, cfg, tok, out, extra), notes,
                 host_indices)


def _transformers_family(spec: dict, impl: dict, special: dict, nsp: bool) -> Built:
    import json

    from workflow_scripts.pretrain.models import hf_families
    from workflow_scripts.pretrain.models.bert import host_indices   # their sparse head is bert.gather_masked

    family = spec["type"]
    config = hf_families.hf_config(spec, special)
    model = hf_families.MaskedLM(family, config)
    notes = [f"{family} ({type(model.hf).__name__}, sparse MLM head)"]
    if nsp:
        notes.append(f"the shards' next-sentence labels are ignored: {family} has no NSP head")
    return Built(model, json.loads(config.to_json_string()),
                 lambda state, tok, out, extra=None: hf_families.export(state, family, config, tok, out, extra),
                 notes, host_indices)
