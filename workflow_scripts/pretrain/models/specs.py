"""What a recipe's `model:` may say, per family: light data and checks (no torch at import).

recipe_checks (when the workflow is parsed), factory and the builders read these, so each
family's keys, defaults and rules are written once. The types themselves (bert, roberta, albert,
deberta-v2, modernbert) are the schema's enum of model.type.
"""
# Family-specific keys of `model:` and each family's default (the recipe's null = that default).
FAMILY_KEYS = {
    "albert": {"embedding_size": 128, "num_hidden_groups": 1, "inner_group_num": 1},
    "deberta-v2": {"relative_attention": True, "position_buckets": 256, "max_relative_positions": -1,
                   "pos_att_type": ["p2c", "c2p"], "position_biased_input": False},
    # ModernBERT's head width and its global layers' RoPE base (Warner et al. 2024).
    "modernbert": {"head_dim": 64, "rope_theta": 160000.0},
}
# The types that take document_ids (attention inside each document of a row), so the only ones that
# may read packed samples (samples.packing documents); the others would attend across documents.
PACKED_TYPES = ("modernbert",)


def packing_problem(model_type: str) -> str | None:
    """Why a model of this type cannot read packed samples, or None; one line naming the keys to change."""
    if model_type in PACKED_TYPES:
        return None
    return (f"model.type {model_type} would attend across the documents of a packed row: set samples.packing: "
            f"segments, or model.type {' or '.join(PACKED_TYPES)}")


def check(spec: dict, impl: dict) -> str | None:
    """The first problem with a `model:` spec for its type, or None."""
    family = spec.get("type", "bert")
    for owner, keys in FAMILY_KEYS.items():
        for key in keys:
            if spec.get(key) is not None and owner != family:
                return f"model.{key}: applies to model.type {owner} only (this run's type is {family})"
    if impl.get("compile") and family != "bert":   # torch.compile of our encoder layers
        return f"implementation.compile: applies to model.type bert only (this run's type is {family})"
    if family == "modernbert":
        return _check_heads(spec)
    if spec.get("hidden_size", 768) % spec.get("num_heads", 12):
        return f"model.hidden_size: {spec.get('hidden_size')} is not a multiple of model.num_heads ({spec.get('num_heads')})"
    return None


def _check_heads(spec: dict) -> str | None:
    """modernbert: num_heads x head_dim must be hidden_size (transformers' ModernBERT derives the head
    width from the two), and RoPE rotates pairs, so the head width is even."""
    hidden, heads = spec.get("hidden_size", 768), spec.get("num_heads", 12)
    head_dim = family_options({**spec, "type": "modernbert"})["head_dim"]
    if heads * head_dim != hidden:
        fit = f"num_heads {hidden // head_dim}" if hidden % head_dim == 0 else "another head_dim"
        return (f"model.num_heads: {heads} heads of head_dim {head_dim} make {heads * head_dim}, not hidden_size "
                f"{hidden}: set {fit}")
    if head_dim % 2:
        return f"model.head_dim: {head_dim} is odd; rotary embeddings need an even head width"
    return None


def family_options(spec: dict) -> dict:
    """The family-specific keys of a spec, nulls replaced by the family's defaults."""
    return {k: (spec.get(k) if spec.get(k) is not None else default)
            for k, default in FAMILY_KEYS.get(spec["type"], {}).items()}


def position_offset(pad_token_id: int) -> int:
    """Rows before the first real position in a RoBERTa-style position table: RoBERTa (and
    RoBERTa-PreLayerNorm) number real tokens' positions from padding_idx + 1, padding gets
    padding_idx, so a table for M positions has M + pad + 1 rows."""
    return pad_token_id + 1
