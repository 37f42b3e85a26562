"""Our BERT for masked-LM pretraining (pre-LN or post-LN), read top to bottom, nanoGPT style.

Shapes: B batch, L sequence length, H hidden, nh heads, hd = H / nh head size, I intermediate,
V vocabulary, P max predictions per sequence, M = number of real masked positions in the batch,
R = rows whose last-layer output is used (P, plus [CLS] with NSP).

Two speed tricks, neither changing the maths:
- The sparse MLM head (Izsak et al. 2021): the dense+GELU+LayerNorm+decoder head runs ONLY on
  the ~15% masked positions (gathered first), not on all B*L tokens; on a CPU it is most of a
  small model's step time.
- The sparse last layer: only the masked positions (and [CLS] for NSP) have their outputs used,
  so the last layer computes queries, attention, output projection and feed-forward for those R
  rows alone, with keys and values from every token. That is ~70% of one layer's work saved
  (~6% of BERT-base's encoder, ~18% of a 4-layer one). encode() keeps the full last layer.
Parameter names follow our own layout; hf_export.py maps them 1:1 onto transformers' `bert`
(post-LN) or `roberta-prelayernorm` (pre-LN).

Which of the P prediction slots are real is data (M varies): host_indices() finds them on the host
(the prefetch thread), so on a GPU the forward only gathers by a given index and never waits for
the device; called without it (tests, benchmarks), the forward runs host_indices itself.
"""
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    layer_norm: str = "pre"            # "pre": LN before each sublayer + a final LN; "post": original BERT
    dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12      # BERT's value; the export writes it into config.json
    pad_token_id: int = 0
    nsp: bool = False                  # next-sentence head (only when the shards carry labels)
    initializer_range: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)


class Embeddings(nn.Module):
    """word + position + token type, then LayerNorm and dropout (both LN variants keep this LN)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, input_ids, token_type_ids):
        L = input_ids.shape[1]
        pos = torch.arange(L, device=input_ids.device)                             # (L,)
        x = self.word(input_ids) + self.position(pos)[None] + self.token_type(token_type_ids)  # (B, L, H)
        return self.drop(self.ln(x))


class SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        if cfg.hidden_size % cfg.num_heads:
            raise ValueError(f"model.hidden_size={cfg.hidden_size} is not a multiple of "
                             f"model.num_heads={cfg.num_heads}")
        self.nh = cfg.num_heads
        # Separate q/k/v projections (not one fused matrix) so the weights map 1:1 onto HF.
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attention_dropout = cfg.attention_dropout
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, xq, x, keep):
        """Queries from xq (B, R, H), keys and values from x (B, L, H); R = L except in the sparse last layer."""
        B, L, H = x.shape
        R = xq.shape[1]
        heads = lambda t, n: t.view(B, n, self.nh, H // self.nh).transpose(1, 2)  # (B, n, H) -> (B, nh, n, hd)
        q, k, v = heads(self.query(xq), R), heads(self.key(x), L), heads(self.value(x), L)
        # keep: (B, 1, 1, L) bool, True where the key is a real token (padding is never attended).
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                           dropout_p=self.attention_dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, R, H)                                     # (B, R, H)
        return self.drop(self.out(y))


class FeedForward(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.up = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):                                                          # (B, L, H)
        return self.drop(self.down(F.gelu(self.up(x))))                            # exact (erf) GELU, as HF "gelu"


class Layer(nn.Module):
    """pre-LN: x + f(LN(x)) (stable at high learning rates, the paper's choice);
    post-LN: LN(x + f(x)) (the original BERT)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.pre_ln = cfg.layer_norm == "pre"
        self.attention = SelfAttention(cfg)
        self.ln_attention = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg)
        self.ln_ffn = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, keep, rows=None):
        """x (B, L, H) -> (B, L, H); with rows (B, R) of positions, only those rows' outputs (B, R, H)."""
        pick = (lambda t: t) if rows is None else (lambda t: t.gather(1, rows[..., None].expand(-1, -1, t.shape[-1])))
        if self.pre_ln:
            normed = self.ln_attention(x)
            x = pick(x) + self.attention(pick(normed), normed, keep)
            return x + self.ffn(self.ln_ffn(x))
        x = self.ln_attention(pick(x) + self.attention(pick(x), x, keep))
        return self.ln_ffn(x + self.ffn(x))


class MLMHead(nn.Module):
    """dense + GELU + LayerNorm, then the decoder tied to the word embeddings, plus a bias."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, h, word_weight):                                             # h: (M, H) or (B, L, H)
        h = self.ln(F.gelu(self.dense(h)))
        return F.linear(h, word_weight, self.bias)                                 # (..., V); word_weight: (V, H)


class BertForPretraining(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_layers))
        # pre-LN leaves the residual stream un-normalised: one LayerNorm closes the encoder.
        self.final_ln = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) if cfg.layer_norm == "pre" else None
        self.mlm = MLMHead(cfg)                                                   # decoder = embeddings.word (tied)
        if cfg.nsp:
            self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)             # tanh(dense([CLS]))
            self.nsp_head = nn.Linear(cfg.hidden_size, 2)
        self.apply(self._init_weights)

    def _init_weights(self, module):
        # BERT's init: N(0, 0.02) weights, zero biases, unit LayerNorms.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.cfg.initializer_range)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def encode(self, input_ids, token_type_ids, attention_mask):
        """input_ids, token_type_ids, attention_mask: (B, L) -> hidden states (B, L, H)."""
        keep = attention_mask.bool()[:, None, None, :]                            # (B, 1, 1, L)
        x = self.embeddings(input_ids.long(), token_type_ids.long())
        for layer in self.layers:
            x = layer(x, keep)
        return self.final_ln(x) if self.final_ln is not None else x

    def forward(self, input_ids, token_type_ids, attention_mask, masked_lm_positions, masked_lm_ids,
                next_sentence_labels=None, masked_index=None):
        """Returns (loss, mlm_sum, n_predictions): loss = mean MLM cross-entropy over the
        real masked positions (+ NSP mean when the head exists); the sum and count let
        validation average over tokens across batches and ranks. masked_index: host_indices()'s."""
        keep = attention_mask.bool()[:, None, None, :]                            # (B, 1, 1, L)
        x = self.embeddings(input_ids.long(), token_type_ids.long())              # (B, L, H)
        for layer in self.layers[:-1]:
            x = layer(x, keep)
        # The sparse last layer: outputs only where they are used. Shards pad masked_lm_positions
        # with 0 past the real predictions; position 0 is [CLS], never a real prediction, so
        # positions > 0 mark the real ones (the padded slots compute [CLS], harmlessly; the head skips them).
        positions = masked_lm_positions.long()                                    # (B, P)
        use_nsp = self.cfg.nsp and next_sentence_labels is not None
        rows = torch.cat([torch.zeros_like(positions[:, :1]), positions], 1) if use_nsp else positions
        h = self.layers[-1](x, keep, rows)                                        # (B, R, H)
        if self.final_ln is not None:
            h = self.final_ln(h)
        if masked_index is None:                                                  # not given by the host
            masked_index = host_indices({"masked_lm_positions": positions})["masked_index"]
        slots = h[:, 1:] if use_nsp else h                                        # (B, P, H)
        picked = slots.reshape(-1, slots.shape[-1]).index_select(0, masked_index)  # (M, H)
        logits = self.mlm(picked, self.embeddings.word.weight)                     # (M, V)
        targets = masked_lm_ids.long().flatten().index_select(0, masked_index)     # (M,)
        mlm_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
        n = masked_index.numel()                                                  # a shape: no device read
        loss = mlm_sum / max(n, 1)
        if use_nsp:
            pooled = torch.tanh(self.pooler(h[:, 0]))                              # (B, H): [CLS]
            loss = loss + F.cross_entropy(self.nsp_head(pooled).float(), next_sentence_labels.long())
        return loss, mlm_sum.detach(), n

    def dense_mlm_logits(self, input_ids, token_type_ids, attention_mask):
        """The head on every token (B, L, V): the slow reference the sparse head must equal."""
        return self.mlm(self.encode(input_ids, token_type_ids, attention_mask), self.embeddings.word.weight)


def host_indices(batch: dict) -> dict:
    """masked_index (M,): the real prediction slots of the flattened (B*P) masked_lm_positions.
    Shards pad masked_lm_positions with 0 past the real predictions; position 0 is [CLS], never a
    real prediction, so positions > 0 mark the real ones. Its length M is data, so computing it on
    a GPU waits for the device (nonzero): the prefetch thread runs this on the CPU batch instead."""
    real = batch["masked_lm_positions"].flatten() > 0                             # (B*P,)
    return {"masked_index": real.nonzero().squeeze(1)}                            # (M,)


def gather_masked(h, masked_lm_positions, masked_lm_ids, masked_index=None):
    """Hidden states (B, L, H) -> those of the real masked positions (M, H) and their targets (M,);
    masked_index from host_indices (computed here when not given)."""
    B, L, H = h.shape
    if masked_index is None:
        masked_index = host_indices({"masked_lm_positions": masked_lm_positions})["masked_index"]
    rows = torch.arange(B, device=h.device)[:, None] * L + masked_lm_positions.long()   # (B, P) flat token index
    tokens = rows.flatten().index_select(0, masked_index)                          # (M,)
    return h.reshape(B * L, H).index_select(0, tokens), masked_lm_ids.long().flatten().index_select(0, masked_index)
