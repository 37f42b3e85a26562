"""Our modern encoder (modern.py) -> a stock transformers ModernBERT folder (ModernBertForMaskedLM).

The config pins every choice in which transformers' ModernBERT could differ from ours (see
modern.py's docstring): global attention in every layer, RoPE theta, no biases but the decoder's,
the tied decoder. classifier_pooling "mean" is what ModernBERT's own checkpoints fine-tune with; our
pretraining has no sentence-level objective that would train [CLS] alone.
"""
from workflow_scripts.pretrain.models import hf_export


def hf_config(cfg, special: dict):
    """The transformers ModernBertConfig for our ModernConfig; `special` from hf_export.tokenizer_special_ids."""
    from transformers import ModernBertConfig

    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    return ModernBertConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, hidden_activation="gelu",
        max_position_embeddings=cfg.max_position_embeddings, initializer_range=cfg.initializer_range,
        initializer_cutoff_factor=cfg.initializer_cutoff_factor, norm_eps=cfg.norm_eps, norm_bias=False,
        pad_token_id=cfg.pad_token_id, bos_token_id=special.get("cls"), eos_token_id=special.get("sep"),
        cls_token_id=special.get("cls"), sep_token_id=special.get("sep"), attention_bias=False,
        attention_dropout=cfg.attention_dropout, embedding_dropout=cfg.dropout, mlp_dropout=cfg.dropout,
        mlp_bias=False, decoder_bias=True, layer_types=["full_attention"] * cfg.num_layers,
        global_attn_every_n_layers=1,      # the same, for transformers 4.x readers that predate layer_types
        rope_parameters={"full_attention": dict(rope), "sliding_attention": dict(rope)},
        classifier_pooling="mean", classifier_bias=False, classifier_activation="gelu", classifier_dropout=0.0,
        tie_word_embeddings=True, architectures=["ModernBertForMaskedLM"])


def hf_state_dict(state: dict) -> dict:
    """Our names are transformers' but for the decoder bias; the tied decoder weight is left to it."""
    renamed = {("decoder.bias" if k == "decoder_bias" else k): v for k, v in state.items()}
    return {k: v.detach().float().contiguous().clone() for k, v in renamed.items()}


def export(state: dict, cfg, tokenizer_dir: str, out_dir: str, extra=None) -> None:
    """Our weights -> out_dir (config.json, model.safetensors, tokenizer files), atomically (extra: as
    hf_export.write_folder's)."""
    from transformers import ModernBertForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = ModernBertForMaskedLM(hf_config(cfg, hf_export.tokenizer_special_ids(tokenizer_dir)))
    missing, unexpected = model.load_state_dict(hf_state_dict(state), strict=False)
    if set(missing) - {"decoder.weight"} or unexpected:
        raise KeyError(f"modern_export: state does not fit ModernBertForMaskedLM: missing {sorted(missing)}, "
                       f"unexpected {sorted(unexpected)}")
    model.tie_weights()
    hf_export.write_folder(out_dir, tokenizer_dir, lambda tmp: model.save_pretrained(tmp), extra)
