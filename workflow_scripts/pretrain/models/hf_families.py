"""RoBERTa, ALBERT and DeBERTa-v2 for masked-LM pretraining, built offline from transformers configs.

The same contract as our BERT (bert.py): forward(input_ids, token_type_ids, attention_mask,
masked_lm_positions, masked_lm_ids, next_sentence_labels=None) -> (loss, mlm_sum, n), with the MLM
head run only on the masked positions (gathered first, the sparse head of Izsak et al. 2021; stock
*ForMaskedLM runs it on every token). The weights live in a stock *ForMaskedLM (`self.hf`), so the
export is its save_pretrained and AutoModelForMaskedLM / AutoModelForSequenceClassification load
it without custom code.

What differs per family, and our choices (M = model.max_position_embeddings, pad = [PAD]'s id):
- roberta (RobertaForMaskedLM): position ids count from pad + 1 over the non-padding tokens, so its
  table has M + pad + 1 rows (specs.position_offset). type_vocab_size 2, not RoBERTa's 1: our WordPiece tokenizer gives
  sentence pairs segment ids 0/1 and the GLUE stage passes them.
- albert (AlbertForMaskedLM): factorized embeddings (embedding_size, ALBERT's 128) and cross-layer
  sharing (num_layers layers drawn from num_hidden_groups groups of inner_group_num layers; 1 x 1
  is ALBERT's all-shared default). No sentence-order head: our NSP labels mean "random next
  segment", not ALBERT's "swapped order".
- deberta-v2 (DebertaV2ForMaskedLM), DeBERTa-v3's layout by default: relative attention over log
  buckets (position_buckets 256), content-to-position and position-to-content terms (pos_att_type),
  no absolute positions added to the input (position_biased_input false), shared attention keys,
  layer-normed relative embeddings; type_vocab_size 2 as above.
No device reads in the forward (issue 13): the masked slots come from bert.host_indices (the
prefetch thread), and under SDPA the padding mask goes in as a ready 4D mask, since transformers
checks a 2D one with mask.all() (a device read per forward) to drop it when nothing is padded
(then SDPA always gets a mask, as in our BERT: unpadded batches lose the flash kernel, not a sync).
Vocabulary size, [PAD], [CLS] and [SEP] come from the tokenizer. NSP labels in the shards are
ignored by these families (RoBERTa and DeBERTa dropped NSP; see ALBERT above).
"""
import torch.nn.functional as F
from torch import nn

from workflow_scripts.pretrain.models.bert import gather_masked
from workflow_scripts.pretrain.models import specs

FAMILIES = ("roberta", "albert", "deberta-v2")


def _classes(family: str):
    """(config class, masked-LM class) of a family; imported here, transformers is heavy."""
    if family == "roberta":
        from transformers import RobertaConfig, RobertaForMaskedLM
        return RobertaConfig, RobertaForMaskedLM
    if family == "albert":
        from transformers import AlbertConfig, AlbertForMaskedLM
        return AlbertConfig, AlbertForMaskedLM
    if family == "deberta-v2":
        from transformers import DebertaV2Config, DebertaV2ForMaskedLM
        return DebertaV2Config, DebertaV2ForMaskedLM
    raise ValueError(f"model.type={family!r} is not one of {', '.join(FAMILIES)}")


def hf_config(spec: dict, special: dict):
    """The transformers config for recipe `model:` spec; `special` from hf_export.tokenizer_special_ids."""
    family = spec["type"]
    config_class, model_class = _classes(family)
    extra = specs.family_options(spec)
    max_pos = spec["max_position_embeddings"]
    if family == "roberta":
        max_pos += specs.position_offset(special["pad"])          # see the module docstring
    if family == "deberta-v2":
        extra.update(norm_rel_ebd="layer_norm", share_att_key=True)
    return config_class(
        vocab_size=special["vocab_size"], hidden_size=spec["hidden_size"], num_hidden_layers=spec["num_layers"],
        num_attention_heads=spec["num_heads"], intermediate_size=spec["intermediate_size"], hidden_act="gelu",
        hidden_dropout_prob=spec["dropout"], attention_probs_dropout_prob=spec["attention_dropout"],
        max_position_embeddings=max_pos, type_vocab_size=2, initializer_range=0.02,
        pad_token_id=special["pad"], bos_token_id=special.get("cls"), eos_token_id=special.get("sep"),
        architectures=[model_class.__name__], tie_word_embeddings=True, **extra)


class MaskedLM(nn.Module):
    """A stock transformers masked LM whose head runs on the masked positions only."""

    def __init__(self, family: str, config):
        super().__init__()
        self.family, self.config = family, config
        self.hf = _classes(family)[1](config)

    def encode(self, input_ids, token_type_ids, attention_mask):
        """(B, L) ids -> last hidden states (B, L, H) of the family's encoder."""
        base = getattr(self.hf, self.hf.base_model_prefix)
        mask = attention_mask.long()
        if self.hf.config._attn_implementation == "sdpa":        # True = attend; see the module docstring
            mask = attention_mask.bool()[:, None, None, :]   # (B, 1, 1, L)
        return base(input_ids=input_ids.long(), token_type_ids=token_type_ids.long(),
                    attention_mask=mask).last_hidden_state

    def head(self, h):
        """The family's own MLM head (transform + tied decoder + bias) on (M, H) -> (M, V)."""
        hf = self.hf
        if self.family == "roberta":
            return hf.lm_head(h)
        if self.family == "albert":
            return hf.predictions(h)
        if hf.legacy:      # DebertaV2Config(legacy=True), the default: BERT-style cls.predictions
            return hf.cls(h)
        return hf.lm_predictions(h, hf.deberta.embeddings.word_embeddings)

    def forward(self, input_ids, token_type_ids, attention_mask, masked_lm_positions, masked_lm_ids,
                next_sentence_labels=None, masked_index=None):
        """masked_index: bert.host_indices()'s (computed here when not given)."""
        h = self.encode(input_ids, token_type_ids, attention_mask)                 # (B, L, H)
        picked, targets = gather_masked(h, masked_lm_positions, masked_lm_ids, masked_index)   # (M, H), (M,)
        logits = self.head(picked)                                                 # (M, V)
        mlm_sum = F.cross_entropy(logits.float(), targets, reduction="sum")
        n = targets.numel()                                                        # a shape: no device read
        return mlm_sum / max(n, 1), mlm_sum.detach(), n

    def dense_mlm_logits(self, input_ids, token_type_ids, attention_mask):
        """The stock model's logits on every token (B, L, V): the reference for the sparse head."""
        return self.hf(input_ids=input_ids.long(), token_type_ids=token_type_ids.long(),
                       attention_mask=attention_mask.long()).logits


def export(state: dict, family: str, config, tokenizer_dir: str, out_dir: str, extra=None) -> None:
    """Our wrapper's full state dict -> the stock model's save_pretrained folder, plus the tokenizer
    (extra: as hf_export.write_folder's)."""
    from transformers.utils import logging as hf_logging

    from workflow_scripts.pretrain.models import hf_export

    hf_logging.disable_progress_bar()      # a one-file progress bar is noise in the rule's log
    model = _classes(family)[1](config)
    weights = {k.removeprefix("hf."): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    # Tied decoder weights may be left out of a state dict; anything else missing is a bug.
    tied = {k for k in missing if k.endswith(("decoder.weight", "decoder.bias"))}
    if set(missing) - tied or unexpected:
        raise KeyError(f"hf_families.export: state does not fit {type(model).__name__}: missing "
                       f"{sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")
    model.tie_weights()
    hf_export.write_folder(out_dir, tokenizer_dir, lambda tmp: model.save_pretrained(tmp), extra)
