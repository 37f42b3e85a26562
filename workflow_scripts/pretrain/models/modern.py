"""A modern encoder (model.type modernbert) for masked-LM pretraining, unpadded, read top to bottom.

The changes every 2024-25 encoder makes to BERT (MosaicBERT, ModernBERT, NeoBERT): pre-norm with a
final norm, no biases in linear layers or norms, a GeGLU feed-forward, rotary position embeddings
(no position table, so no max-length cliff), head dim 64 by default, the vocabulary padded to a
multiple of 64 (aligned matrix shapes). Unpadded: padding tokens are dropped before the embeddings,
every linear layer runs on the T real tokens of the micro-batch only, and attention is per document
(block-diagonal), so a packed row never attends across documents.

Shapes: B batch, L sequence length, T real tokens in the batch (T <= B*L), H hidden, nh heads,
hd head dim, I GLU width, V padded vocabulary, M masked positions, S documents in the batch.

Our maths is transformers' ModernBertForMaskedLM for the config export_config() writes, and the
parameter names are its names, so the export is a save_pretrained with no mapping:
- every layer attends globally (global_attn_every_n_layers 1): ModernBERT alternates 1 global with
  2 sliding-window layers (window 128) for 8k contexts; at budget lengths (128-512) a window saves
  little and would make the export a different model from the one the block mask trains;
- the embeddings are normed (embeddings.norm), so layer 0 has no attn_norm (ModernBERT's choice);
- RoPE theta 160,000 (ModernBERT's global layers), non-interleaved halves, angles in fp32;
- head: dense (no bias) + exact GELU + norm, then the decoder tied to the word embeddings + a bias.
Positions count from 0 along the row; RoPE makes attention scores depend on the distance only, so
within a document this equals restarting them at each document.

Attention: on CUDA in fp16/bf16 with no attention dropout, torch's varlen FlashAttention
(torch.nn.attention.varlen) on the unpadded tokens with one cu_seqlens entry per document. Anywhere
else (CPU, fp32, dropout), SDPA on the re-padded (B, L) layout with a boolean block mask (query and
key in the same document); there padding still costs attention (only attention) compute.

Where the real tokens, documents and predictions are is data (T, S, M vary): host_indices() finds
them on the host (the prefetch thread), so on a GPU the forward only gathers by given indices and
never waits for the device; called without them (tests, the export check), it runs host_indices itself.
"""
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workflow_scripts.pretrain.models import bert


@dataclass
class ModernConfig:
    vocab_size: int                    # the tokenizer's, padded up to a multiple of 64
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12                # hidden_size / head_dim
    intermediate_size: int = 1152      # GLU width: Wi projects to 2x this (value and gate)
    dropout: float = 0.0               # embeddings and feed-forward (ModernBERT trains with none)
    attention_dropout: float = 0.0     # attention probabilities and output
    max_position_embeddings: int = 512
    rope_theta: float = 160000.0
    norm_eps: float = 1e-5
    pad_token_id: int = 0
    initializer_range: float = 0.02
    initializer_cutoff_factor: float = 2.0

    def to_dict(self) -> dict:
        return asdict(self)


def padded_vocab(vocab_size: int, multiple: int = 64) -> int:
    return math.ceil(vocab_size / multiple) * multiple


class Rotary(nn.Module):
    """cos/sin (T, hd) for each token's position; q, k rotated as (x * cos + rotate_half(x) * sin)."""

    def __init__(self, cfg: ModernConfig):
        super().__init__()
        hd = cfg.hidden_size // cfg.num_heads
        inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float) / hd))   # (hd/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, positions):                                                  # (T,)
        angles = positions[:, None].float() * self.inv_freq                        # (T, hd/2)
        angles = torch.cat([angles, angles], -1)                                   # (T, hd)
        return angles.cos(), angles.sin()


def rotate(x, cos, sin):
    """x (T, nh, hd) rotated in fp32; the two halves of hd pair up (non-interleaved)."""
    x1, x2 = x.float().chunk(2, -1)
    turned = torch.cat([-x2, x1], -1)
    return (x.float() * cos[:, None] + turned * sin[:, None]).to(x.dtype)


@dataclass
class Packing:
    """Where the real tokens are, computed once per batch and read by every layer."""
    index: torch.Tensor        # (T,) flat (B*L) index of each real token, in row order
    shape: tuple               # (B, L)
    block: torch.Tensor        # (B, 1, L, L) bool: query and key in the same document (SDPA path)
    cu_seqlens: torch.Tensor   # (S+1,) int32 document starts in the unpadded order (varlen path)
    max_len: int               # longest document


def row_documents(attention_mask, document_ids=None):
    """(B, L) long: each token's document inside its row (all 0 without document_ids)."""
    return torch.zeros_like(attention_mask, dtype=torch.long) if document_ids is None else document_ids.long()


def unpadding(attention_mask, document_ids=None) -> dict:
    """attention_mask (B, L) 1 on real tokens; document_ids (B, L) optional, the document each token
    belongs to inside its row (contiguous runs; without it a row is one document) -> token_index (T,)
    flat (B*L) index of each real token in row order, cu_seqlens (S+1,) int32 document starts in that
    order, max_seqlen (a Python int) the longest document."""
    B, L = attention_mask.shape
    real, docs = attention_mask.bool(), row_documents(attention_mask, document_ids)
    index = real.flatten().nonzero().squeeze(1)                                    # (T,)
    row = torch.arange(B, device=real.device)[:, None].expand(B, L)
    key = (row * (docs.max() + 1) + docs).flatten()[index]                        # (T,) unique per (row, doc)
    _, counts = torch.unique_consecutive(key, return_counts=True)                 # (S,)
    cu = F.pad(counts.cumsum(0), (1, 0)).to(torch.int32)
    return {"token_index": index, "cu_seqlens": cu, "max_seqlen": int(counts.max()) if counts.numel() else 0}


def host_indices(batch: dict) -> dict:
    """Everything the forward indexes by whose size is data, from a batch's tensors: unpadding()'s
    entries, bert.host_indices' masked_index (M,) (the real slots of the flattened (B*P)
    masked_lm_positions), and masked_tokens (M,), each one's row in the unpadded hidden states (T, H)."""
    mask = batch["attention_mask"]
    B, L = mask.shape
    out = {**unpadding(mask, batch.get("document_ids")), **bert.host_indices(batch)}
    padded = torch.arange(B, device=mask.device)[:, None] * L + batch["masked_lm_positions"].long()   # (B, P)
    unpadded = mask.bool().flatten().long().cumsum(0) - 1                          # (B*L,) -> row in h
    out["masked_tokens"] = unpadded[padded.flatten()[out["masked_index"]]]        # (M,)
    return out


def pack(attention_mask, document_ids=None, indices=None) -> Packing:
    """The Packing of a batch; indices: unpadding()'s (or host_indices') entries, computed here when
    not given. Everything here has a fixed shape, so nothing waits for the device."""
    indices = indices or unpadding(attention_mask, document_ids)
    real, docs = attention_mask.bool(), row_documents(attention_mask, document_ids)
    # Padding is its own "document" (-1): padded queries then attend to padding only, never empty.
    segment = torch.where(real, docs, torch.full_like(docs, -1))
    block = (segment[:, :, None] == segment[:, None, :])[:, None]                 # (B, 1, L, L)
    return Packing(indices["token_index"], tuple(attention_mask.shape), block, indices["cu_seqlens"],
                   indices["max_seqlen"])


def varlen_available(x, dropout_p: float) -> bool:
    if not (x.is_cuda and x.dtype in (torch.float16, torch.bfloat16) and dropout_p == 0.0):
        return False
    try:
        from torch.nn.attention.varlen import varlen_attn   # noqa: F401  (torch >= 2.10)
    except ImportError:
        return False
    return True


def attend(q, k, v, packing: Packing, dropout_p: float):
    """q, k, v (T, nh, hd) -> (T, nh, hd), attention inside each document only."""
    if varlen_available(q, dropout_p):
        from torch.nn.attention.varlen import varlen_attn
        cu, n = packing.cu_seqlens, packing.max_len
        return varlen_attn(q, k, v, cu, cu, n, n, scale=q.shape[-1] ** -0.5)
    B, L = packing.shape
    T, nh, hd = q.shape

    def padded(t):                                                                 # (T, nh, hd) -> (B, nh, L, hd)
        out = t.new_zeros(B * L, nh, hd).index_copy(0, packing.index, t)
        return out.view(B, L, nh, hd).transpose(1, 2)
    y = F.scaled_dot_product_attention(padded(q), padded(k), padded(v), attn_mask=packing.block, dropout_p=dropout_p)
    # index_select, not [index]: its backward is an index_add; indexing's, an accumulating index_put, sorts on a GPU.
    return y.transpose(1, 2).reshape(B * L, nh, hd).index_select(0, packing.index)   # (T, nh, hd)


class Attention(nn.Module):
    def __init__(self, cfg: ModernConfig):
        super().__init__()
        self.nh, self.hd = cfg.num_heads, cfg.hidden_size // cfg.num_heads
        self.Wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=False)    # [q | k | v], heads inside each
        self.Wo = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)
        self.dropout = cfg.attention_dropout
        self.out_drop = nn.Dropout(cfg.attention_dropout)

    def forward(self, x, rope, packing: Packing):                                 # x (T, H)
        T = x.shape[0]
        q, k, v = self.Wqkv(x).view(T, 3, self.nh, self.hd).unbind(1)              # 3 x (T, nh, hd)
        cos, sin = rope
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        y = attend(q, k, v, packing, self.dropout if self.training else 0.0)
        return self.out_drop(self.Wo(y.reshape(T, -1)))                            # (T, H)


class GeGLU(nn.Module):
    """Wo(GELU(x Wv) * (x Wg)): one input matrix Wi = [Wv | Wg] of width 2I."""

    def __init__(self, cfg: ModernConfig):
        super().__init__()
        self.Wi = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.Wo = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):                                                          # (T, H)
        value, gate = self.Wi(x).chunk(2, -1)                                      # 2 x (T, I)
        return self.Wo(self.drop(F.gelu(value) * gate))


def norm(cfg: ModernConfig) -> nn.LayerNorm:
    return nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps, bias=False)


class Layer(nn.Module):
    """Pre-norm: x + attn(norm(x)), then x + mlp(norm(x)). Layer 0 skips attn_norm: its input is the
    already normed embeddings."""

    def __init__(self, cfg: ModernConfig, first: bool):
        super().__init__()
        self.attn_norm = nn.Identity() if first else norm(cfg)
        self.attn = Attention(cfg)
        self.mlp_norm = norm(cfg)
        self.mlp = GeGLU(cfg)

    def forward(self, x, rope, packing):
        x = x + self.attn(self.attn_norm(x), rope, packing)
        return x + self.mlp(self.mlp_norm(x))


class Embeddings(nn.Module):
    """Word embeddings, norm, dropout: no positions (RoPE) and no token types (ModernBERT has none)."""

    def __init__(self, cfg: ModernConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.norm = norm(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, ids):                                                        # (T,)
        return self.drop(self.norm(self.tok_embeddings(ids)))


class Encoder(nn.Module):
    def __init__(self, cfg: ModernConfig):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg, first=i == 0) for i in range(cfg.num_layers))
        self.final_norm = norm(cfg)
        self.rotary = Rotary(cfg)

    def forward(self, input_ids, attention_mask, document_ids=None, indices=None):
        """(B, L) -> hidden states of the real tokens (T, H), and their Packing (indices: see pack)."""
        packing = pack(attention_mask, document_ids, indices)
        B, L = packing.shape
        positions = torch.arange(L, device=input_ids.device).repeat(B)[packing.index]   # (T,)
        rope = self.rotary(positions)
        x = self.embeddings(input_ids.long().flatten()[packing.index])            # (T, H)
        for layer in self.layers:
            x = layer(x, rope, packing)
        return self.final_norm(x), packing


class Head(nn.Module):
    def __init__(self, cfg: ModernConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)
        self.norm = norm(cfg)

    def forward(self, h):
        return self.norm(F.gelu(self.dense(h)))


class ModernForPretraining(nn.Module):
    """Names as transformers' ModernBertForMaskedLM (model.*, head.*, decoder.bias) so the state dict
    is its state dict; the decoder weight is model.embeddings.tok_embeddings.weight (tied)."""

    def __init__(self, cfg: ModernConfig):
        super().__init__()
        self.cfg = cfg
        self.model = Encoder(cfg)
        self.head = Head(cfg)
        self.decoder_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.apply(self._init_weights)

    def _init_weights(self, module):
        # ModernBERT's (Megatron) init: truncated normal, output projections scaled by 1/sqrt(2 layers).
        std = self.cfg.initializer_range
        out_std = std / math.sqrt(2.0 * self.cfg.num_layers)
        for child, s in ((getattr(module, "Wqkv", None), std), (getattr(module, "Wi", None), std),
                         (getattr(module, "Wo", None), out_std), (getattr(module, "tok_embeddings", None), std)):
            if child is not None:
                c = self.cfg.initializer_cutoff_factor * s
                nn.init.trunc_normal_(child.weight, std=s, a=-c, b=c)
        if isinstance(module, Head):
            c = self.cfg.initializer_cutoff_factor * out_std
            nn.init.trunc_normal_(module.dense.weight, std=out_std, a=-c, b=c)

    def logits(self, h):                                                           # (M, H) -> (M, V)
        return F.linear(self.head(h), self.model.embeddings.tok_embeddings.weight, self.decoder_bias)

    def forward(self, input_ids, token_type_ids, attention_mask, masked_lm_positions, masked_lm_ids,
                next_sentence_labels=None, document_ids=None, **indices):
        """(loss, mlm_sum, n) as our BERT; token types and NSP labels are not used (no such inputs).
        indices: host_indices()'s entries, computed here from the batch when not given."""
        if not indices:
            indices = host_indices({"attention_mask": attention_mask, "document_ids": document_ids,
                                    "masked_lm_positions": masked_lm_positions})
        h, packing = self.model(input_ids, attention_mask, document_ids, indices)  # (T, H)
        logits = self.logits(h.index_select(0, indices["masked_tokens"]))          # (M, V)
        targets = masked_lm_ids.long().flatten().index_select(0, indices["masked_index"])   # (M,)
        mlm_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
        n = indices["masked_index"].numel()                                        # a shape: no device read
        return mlm_sum / max(n, 1), mlm_sum.detach(), n

    def encode(self, input_ids, token_type_ids, attention_mask, document_ids=None):
        """Hidden states re-padded to (B, L, H), zeros on padding: for tests and the export check."""
        h, packing = self.model(input_ids, attention_mask, document_ids)
        B, L = packing.shape
        return h.new_zeros(B * L, h.shape[1]).index_copy(0, packing.index, h).view(B, L, -1)

    def dense_mlm_logits(self, input_ids, token_type_ids, attention_mask):
        """The head on every token (B, L, V): the reference the sparse head must equal."""
        return self.logits(self.encode(input_ids, token_type_ids, attention_mask))
