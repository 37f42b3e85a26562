"""Model FLOPs of a training step and the device's peak FLOP/s: what turns tokens/s into TFLOP/s and MFU.

The convention (Kaplan et al. 2020 sec. 2.1; Chinchilla, Hoffmann et al. 2022, appendix F; PaLM,
Chowdhery et al. 2022, appendix B, which defines MFU with it): count the matrix multiplications
only, 2 FLOPs per multiply-add; the backward pass costs twice the forward (gradients with respect
to the inputs and to the weights, each a matmul of the forward's size), so a training step is 3x
its forward. Embedding lookups, LayerNorm, softmax, GELU, biases and dropout are not counted (they
are memory-bound and well under 1% of BERT-base's FLOPs); activation recomputation is not counted
either (model FLOPs, not hardware FLOPs).

Forward FLOPs of one encoder layer for one query token, hidden H, intermediate I, keys L:
    q, k, v, out projections   2 * 4 * H * H
    scores q.k and mix p.v     2 * 2 * L * H     (all heads together: nh * hd = H)
    feed-forward               2 * F * H * I     (F = 2 matrices: up, down; a gated GLU has 3)
DeBERTa-v2 adds per relative term (c2p, p2c) 2 * 2S * H, its scores against the 2S relative
positions (S = position_buckets); ALBERT's factorized embedding adds the E -> H projection per
token (2 * E * H). The MLM head per predicted token: dense 2 * H * Hh + decoder 2 * Hh * V
(Hh = H, or E for ALBERT), on the masked positions only (the sparse head, every family we train).
Our BERT also runs its last layer sparsely (models/bert.py): keys and values for all L tokens,
the rest for the R = P (+1 [CLS] with NSP) rows the head reads.

A family is one entry of FAMILIES (a new model type adds one). Not counted: DeBERTa's projection
of its 2S relative embeddings through the query and key matrices, once per micro-batch and layer
(2 * 2 * 2S * H * H; ~2% of a BERT-base-sized step at micro-batch 32).
"""
import functools
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    ffn_matrices: int = 2             # GELU feed-forward: up, down (a gated GLU has 3)
    sparse_last_layer: bool = False   # our BERT: last layer computed for the head's rows only
    embedding_key: str | None = None  # spec key of a factorized embedding width (ALBERT)
    relative_terms: tuple = ()        # spec keys: (span key, terms key) of DeBERTa's relative attention
    nsp_head: bool = False            # trains the shards' next-sentence labels (pooler + 2-way head)
    vocab_multiple: int = 1           # the model pads its vocabulary (and so its decoder) to a multiple


FAMILIES = {
    "bert": Family(sparse_last_layer=True, nsp_head=True),
    "roberta": Family(),
    "albert": Family(embedding_key="embedding_size"),
    "deberta-v2": Family(relative_terms=("position_buckets", "pos_att_type")),
    # GeGLU: Wi is two up matrices, then Wo. Unpadded, it skips padding rows; counting all L positions
    # as computed overstates its MFU by the shards' padding fraction (the log's tokens/s is exact).
    "modernbert": Family(ffn_matrices=3, vocab_multiple=64),
}


@dataclass(frozen=True)
class Shape:
    """What the count needs of a model, whichever config it came from."""
    family: str
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    embedding: int | None = None      # factorized embedding width (ALBERT), else None
    relative_span: int = 0            # DeBERTa: S, so 2S relative positions
    relative_terms: int = 0           # DeBERTa: how many of c2p, p2c


def shape_of_spec(spec: dict, vocab: int) -> Shape:
    """The Shape of a recipe's `model:` (defaults filled, family options as specs.family_options)."""
    from workflow_scripts.pretrain.models import specs

    family = FAMILIES[spec["type"]]
    options = specs.family_options(spec)
    span, terms = 0, 0
    if family.relative_terms and options.get("relative_attention", True):
        span_key, terms_key = family.relative_terms
        span = options[span_key] if options[span_key] > 0 else spec["max_position_embeddings"]
        terms = len(options[terms_key])
    vocab = -(-vocab // family.vocab_multiple) * family.vocab_multiple
    return Shape(spec["type"], spec["hidden_size"], spec["num_layers"], spec["intermediate_size"], vocab,
                 options.get(family.embedding_key) if family.embedding_key else None, span, terms)


def shape_of_hf_config(config) -> Shape:
    """The Shape of a transformers config (fine-tuning loads Hugging Face folders)."""
    family = {"roberta-prelayernorm": "roberta"}.get(config.model_type, config.model_type)
    family = family if family in FAMILIES else "bert"      # the same count for any BERT-like encoder
    span = terms = 0
    if getattr(config, "relative_attention", False):
        buckets = getattr(config, "position_buckets", -1)
        span = buckets if buckets > 0 else config.max_position_embeddings
        terms = len(getattr(config, "pos_att_type", None) or ())
    return Shape(family, config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size,
                 getattr(config, "embedding_size", None) if family == "albert" else None, span, terms)


def layer_row(shape: Shape, keys: int) -> int:
    """Forward FLOPs of one layer for one query row attending over `keys` tokens (module docstring)."""
    H = shape.hidden
    ffn = FAMILIES[shape.family].ffn_matrices
    return 2 * 4 * H * H + 2 * 2 * keys * H + 2 * ffn * H * shape.intermediate + shape.relative_terms * 2 * 2 * shape.relative_span * H


@dataclass(frozen=True)
class Cost:
    """Forward FLOPs = per_sequence x sequences + per_prediction x predicted tokens."""
    per_sequence: int
    per_prediction: int

    def train(self, sequences: float, predictions: float) -> float:
        """FLOPs of forward + backward (3x the forward)."""
        return 3.0 * (self.per_sequence * sequences + self.per_prediction * predictions)


def pretraining_cost(shape: Shape, seq_len: int, predictions: int, nsp: bool) -> Cost:
    """Masked-LM pretraining, sequences of seq_len tokens, P = predictions per sequence (the shards'
    max_predictions); nsp: the shards carry next-sentence labels (used by families with an NSP head)."""
    H, L = shape.hidden, seq_len
    family = FAMILIES[shape.family]
    nsp = nsp and family.nsp_head
    rows = predictions + int(nsp)            # the sparse last layer's rows: P, and [CLS] with NSP
    embed = 2 * shape.embedding * H * L if shape.embedding else 0
    if family.sparse_last_layer:
        encoder = (shape.layers - 1) * L * layer_row(shape, L) + L * 2 * 2 * H * H + rows * (layer_row(shape, L) - 2 * 2 * H * H)
    else:
        encoder = shape.layers * L * layer_row(shape, L)
    pooler = 2 * H * H + 2 * H * 2 if nsp else 0
    head_width = shape.embedding or H
    return Cost(embed + encoder + pooler, 2 * H * head_width + 2 * head_width * shape.vocab)


def classifier_cost(shape: Shape, seq_len: int, labels: int) -> Cost:
    """Sequence classification (fine-tuning) over padded sequences of seq_len: the whole encoder, pooler, classifier."""
    H, L = shape.hidden, seq_len
    embed = 2 * shape.embedding * H * L if shape.embedding else 0
    return Cost(embed + shape.layers * L * layer_row(shape, L) + 2 * H * H + 2 * H * labels, 0)


# ---- the device's peak ----
# Dense (no 2:4 sparsity) tensor-core TFLOP/s per GPU, from the vendors' datasheets and
# architecture whitepapers: A100 (A100 datasheet), H100 SXM/PCIe/NVL and H200 (H100, H200
# datasheets: H200 has H100 SXM's compute), V100 (V100 datasheet), T4, A10, L4, L40, L40S (their
# datasheets), RTX 3090 (GA102 whitepaper, FP16/BF16 with FP32 accumulate) and RTX 4090 (Ada
# whitepaper, FP32 accumulate). fp32 is the TF32 tensor-core figure where the GPU has TF32 (the
# engine allows TF32 matmuls), else plain FP32. None: the GPU lacks that type (V100/T4: no bf16).
# First match wins: more specific names first. Matched against torch.cuda.get_device_name().
GPU_PEAK_TFLOPS = [
    ("h100 pcie", {"bf16": 756, "fp16": 756, "fp32": 378}),
    ("h100 nvl", {"bf16": 835, "fp16": 835, "fp32": 418}),
    ("h100", {"bf16": 989, "fp16": 989, "fp32": 495}),
    ("h200", {"bf16": 989, "fp16": 989, "fp32": 495}),
    ("a100", {"bf16": 312, "fp16": 312, "fp32": 156}),
    ("a10g", {}),                                       # AWS's A10 variant: not the A10's figures
    ("a10", {"bf16": 125, "fp16": 125, "fp32": 62.5}),
    ("l40s", {"bf16": 362, "fp16": 362, "fp32": 183}),
    ("l40", {"bf16": 181, "fp16": 181, "fp32": 90.5}),
    ("l4", {"bf16": 121, "fp16": 121, "fp32": 60}),
    ("v100", {"bf16": None, "fp16": 125, "fp32": 15.7}),
    ("3090", {"bf16": 71, "fp16": 71, "fp32": 35.6}),
    ("4090", {"bf16": 165.2, "fp16": 165.2, "fp32": 82.6}),
    ("t4", {"bf16": None, "fp16": 65, "fp32": 8.1}),
]


def gpu_peak_tflops(name: str, precision: str) -> float | None:
    """The table's figure for a GPU name (torch.cuda.get_device_name) and precision, or None."""
    lowered = name.lower()
    for key, peaks in GPU_PEAK_TFLOPS:
        if key in lowered:
            return peaks.get(precision)
    return None


@functools.lru_cache(maxsize=None)
def measured_tflops(precision: str = "fp32", size: int = 512, repeats: int = 5) -> float:
    """A CPU's achievable matmul rate, measured once per process (best of `repeats` size^3 products):
    CPUs publish no single peak, and this is what a well-shaped matmul gets here."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float32}[precision]
    g = torch.Generator().manual_seed(0)     # its own: the global generator drives the run's dropout
    a, b = (torch.randn(size, size, generator=g).to(dtype) for _ in range(2))
    a @ b                                               # warm-up (thread pool, caches)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size ** 3 / best / 1e12


def device_peak(device: str, precision: str, override_tflops: float | None = None) -> tuple:
    """(peak TFLOP/s of one device, where the figure comes from); (None, reason) where unknown."""
    if override_tflops is not None:
        return float(override_tflops), "config (implementation.peak_tflops)"
    if device.startswith("cuda"):
        import torch

        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_tflops(name, precision)
        if peak is None:
            return None, f"{name} {precision}: not in flops.GPU_PEAK_TFLOPS (set implementation.peak_tflops)"
        return float(peak), f"{name} {precision} (vendor dense tensor-core figure)"
    return measured_tflops(precision), f"CPU {precision}, measured by a {512}^3 matmul probe"


def mfu(flops_per_s: float, peak_tflops: float | None, devices: int) -> float | None:
    """Model FLOPs utilization: achieved model FLOP/s over the devices' summed peak (None: peak unknown)."""
    if not peak_tflops:
        return None
    return flops_per_s / (peak_tflops * 1e12 * devices)
