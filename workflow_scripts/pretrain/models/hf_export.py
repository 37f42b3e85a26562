"""Our BERT's weights -> a Hugging Face folder (config.json, model.safetensors, tokenizer files).

No custom code and no trust_remote_code: both variants map exactly onto stock transformers.
- post-LN is the original BERT: model_type `bert`, BertForPreTraining / BertForMaskedLM keys
  (bert.*, cls.predictions.*, cls.seq_relationship.* with NSP).
- pre-LN is RoBERTa-PreLayerNorm's layout: LN before attention and FFN, one final LN, the same
  MLM head, token types kept (type_vocab_size 2). Its position ids start at pad_token_id + 1 for
  real tokens (padding gets position pad_token_id), so our position table is written shifted by
  pad_token_id + 1 rows: every real token then sees exactly our position vector. Padding tokens
  get other vectors than ours, which no real token ever attends to. This holds while padding
  sits after the text (what tokenizers do); a [PAD] id inside the text would shift positions.
The NSP classifier has no slot in roberta-prelayernorm and is left out there (its pooler is kept).
"""
import shutil
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.errors import BadInput
from workflow_scripts.pretrain.models.specs import position_offset


def _layer_map(i: int, pre_ln: bool) -> dict:
    """Our per-layer module names -> the HF ones (without the model prefix)."""
    hf = f"encoder.layer.{i}."
    m = {
        f"layers.{i}.attention.query": hf + "attention.self.query",
        f"layers.{i}.attention.key": hf + "attention.self.key",
        f"layers.{i}.attention.value": hf + "attention.self.value",
        f"layers.{i}.attention.out": hf + "attention.output.dense",
        f"layers.{i}.ffn.up": hf + "intermediate.dense",
        f"layers.{i}.ffn.down": hf + "output.dense",
    }
    if pre_ln:
        m[f"layers.{i}.ln_attention"] = hf + "attention.LayerNorm"
        m[f"layers.{i}.ln_ffn"] = hf + "intermediate.LayerNorm"
    else:
        m[f"layers.{i}.ln_attention"] = hf + "attention.output.LayerNorm"
        m[f"layers.{i}.ln_ffn"] = hf + "output.LayerNorm"
    return m


def hf_state_dict(state: dict, cfg) -> dict:
    """Our state dict (names as in bert.py) -> HF names; tied decoder weights are left to HF."""
    import torch

    pre = cfg.layer_norm == "pre"
    base = "roberta_prelayernorm." if pre else "bert."
    modules = {
        "embeddings.word": base + "embeddings.word_embeddings",
        "embeddings.position": base + "embeddings.position_embeddings",
        "embeddings.token_type": base + "embeddings.token_type_embeddings",
        "embeddings.ln": base + "embeddings.LayerNorm",
        "pooler": base + "pooler.dense",
    }
    for i in range(cfg.num_layers):
        modules.update({k: base + v for k, v in _layer_map(i, pre).items()})
    if pre:
        modules.update({"final_ln": base + "LayerNorm", "mlm.dense": "lm_head.dense", "mlm.ln": "lm_head.layer_norm"})
        params = {"mlm.bias": "lm_head.bias"}
    else:
        modules.update({"mlm.dense": "cls.predictions.transform.dense", "mlm.ln": "cls.predictions.transform.LayerNorm",
                        "nsp_head": "cls.seq_relationship"})
        params = {"mlm.bias": "cls.predictions.bias"}
    out = {}
    for name, tensor in state.items():
        module, _, leaf = name.rpartition(".")
        if name in params:
            out[params[name]] = tensor
        elif module in modules:
            out[f"{modules[module]}.{leaf}"] = tensor
        elif pre and module == "nsp_head":
            continue   # see the module docstring
        else:
            raise KeyError(f"hf_export: no Hugging Face name for our parameter {name!r}")
    if pre:
        # Shift the position table: HF row pad_token_id + 1 + p holds our position p.
        key, offset = base + "embeddings.position_embeddings.weight", position_offset(cfg.pad_token_id)
        ours = out[key]
        shifted = torch.zeros(ours.shape[0] + offset, ours.shape[1], dtype=ours.dtype)
        shifted[offset:] = ours
        out[key] = shifted
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def hf_config(cfg, special_ids: dict):
    """The transformers config object for our model config."""
    common = dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                  num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size, hidden_act="gelu",
                  hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.attention_dropout,
                  type_vocab_size=cfg.type_vocab_size, layer_norm_eps=cfg.layer_norm_eps,
                  initializer_range=cfg.initializer_range, pad_token_id=cfg.pad_token_id, tie_word_embeddings=True)
    if cfg.layer_norm == "pre":
        from transformers import RobertaPreLayerNormConfig

        return RobertaPreLayerNormConfig(
            **common, max_position_embeddings=cfg.max_position_embeddings + position_offset(cfg.pad_token_id),
            bos_token_id=special_ids.get("cls"), eos_token_id=special_ids.get("sep"),
            architectures=["RobertaPreLayerNormForMaskedLM"])
    from transformers import BertConfig

    return BertConfig(**common, max_position_embeddings=cfg.max_position_embeddings,
                      architectures=["BertForPreTraining" if cfg.nsp else "BertForMaskedLM"])


def tokenizer_special_ids(tokenizer_dir: str) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tok.pad_token_id is None:
        raise BadInput(f"tokenizer {tokenizer_dir}: has no padding token ([PAD]); the model needs one")
    return {"vocab_size": len(tok), "pad": tok.pad_token_id, "cls": tok.cls_token_id, "sep": tok.sep_token_id}


def export(state: dict, cfg, tokenizer_dir: str, out_dir: str, extra=None) -> None:
    """Our BERT's weights -> out_dir (config.json, model.safetensors, tokenizer files), atomically;
    extra(tmp), if given, adds its files (the model card) before the rename."""
    from safetensors.torch import save_file

    def write(tmp: Path):
        hf_config(cfg, tokenizer_special_ids(tokenizer_dir)).save_pretrained(tmp)
        save_file(hf_state_dict(state, cfg), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    write_folder(out_dir, tokenizer_dir, write, extra)


def write_folder(out_dir: str, tokenizer_dir: str, write_model, extra=None) -> None:
    """A model folder written atomically: the tokenizer files and whatever write_model(tmp) and then
    extra(tmp) put there go into a temp folder beside out_dir, renamed over it at the end (so a
    killed export never leaves a model without its card)."""
    with atomic.replacing_dir(out_dir) as tmp:
        # Tokenizer files first, so the model's config.json wins should the tokenizer folder carry one.
        for f in sorted(Path(tokenizer_dir).iterdir()):
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
        write_model(tmp)
        if extra is not None:
            extra(tmp)
