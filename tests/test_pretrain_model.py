"""Our BERT: shapes, the sparse MLM head equals the dense one on masked positions, pre/post-LN, NSP."""
import pytest
import torch

from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining
from workflow_scripts.pretrain.optimizers import param_groups

V, B, L, P = 500, 3, 16, 4


def tiny(layer_norm="pre", nsp=False, **kw):
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=V, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                     layer_norm=layer_norm, max_position_embeddings=32, nsp=nsp, **kw)
    return BertForPretraining(cfg).eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.int8)
    mask[1, 10:] = 0                       # row 1 is padded
    ids[1, 10:] = 0
    positions = torch.tensor([[1, 5, 7, 0], [2, 3, 9, 0], [4, 0, 0, 0]], dtype=torch.int32)   # 0 = padding
    labels = torch.randint(5, V, (B, P), generator=g).int() * (positions > 0)
    return dict(input_ids=ids.int(), token_type_ids=torch.zeros(B, L, dtype=torch.int8), attention_mask=mask,
                masked_lm_positions=positions, masked_lm_ids=labels)


@pytest.mark.parametrize("layer_norm", ["pre", "post"])
def test_shapes_and_sparse_head_equals_dense_head(layer_norm):
    model, b = tiny(layer_norm), batch()
    h = model.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    assert h.shape == (B, L, 32)
    dense = model.dense_mlm_logits(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    assert dense.shape == (B, L, V)
    loss, mlm_sum, n = model(**b)
    real = b["masked_lm_positions"] > 0
    assert n == int(real.sum()) == 7
    # The reference: the dense head's logits at the masked positions, cross-entropy averaged over them.
    rows, cols = torch.nonzero(real, as_tuple=True)
    picked = dense[rows, b["masked_lm_positions"][rows, cols].long()]
    expected = torch.nn.functional.cross_entropy(picked, b["masked_lm_ids"][rows, cols].long())
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mlm_sum, expected * n, rtol=1e-5, atol=1e-5)


def test_pre_and_post_ln_differ_and_only_pre_has_a_final_layernorm():
    pre, post = tiny("pre"), tiny("post")
    assert pre.final_ln is not None and post.final_ln is None
    b = batch()
    # Same initial weights (same seed, same shapes), different wiring -> different outputs.
    assert not torch.allclose(pre.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"]),
                              post.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"]))
    # Post-LN ends on a LayerNorm with unit gain: every token's features have mean ~0, std ~1.
    h = post.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    torch.testing.assert_close(h.mean(-1), torch.zeros(B, L), atol=1e-5, rtol=0)


def test_padding_does_not_leak_into_real_tokens():
    model, b = tiny(), batch()
    h1 = model.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    ids = b["input_ids"].clone()
    ids[1, 10:] = 7                        # change only padded tokens
    h2 = model.encode(ids, b["token_type_ids"], b["attention_mask"])
    torch.testing.assert_close(h1[1, :10], h2[1, :10])


def test_nsp_head_adds_its_loss():
    model, b = tiny(nsp=True), batch()
    mlm_only, _, _ = model(**b)          # without labels the NSP term is left out
    labels = torch.tensor([0, 1, 1], dtype=torch.int8)
    loss, _, _ = model(**b, next_sentence_labels=labels)
    pooled = torch.tanh(model.pooler(model.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"])[:, 0]))
    nsp = torch.nn.functional.cross_entropy(model.nsp_head(pooled), labels.long())
    torch.testing.assert_close(loss, mlm_only + nsp, rtol=1e-5, atol=1e-6)


def test_decoder_is_tied_to_word_embeddings_and_gets_their_gradient():
    model, b = tiny(), batch()
    model.train()
    loss, _, _ = model(**b)
    loss.backward()
    names = [n for n, _ in model.named_parameters()]
    assert not any("decoder" in n for n in names)      # no separate output matrix
    grad = model.embeddings.word.weight.grad
    # Token 4 never occurs as input (inputs are drawn from 5..V): its embedding row can only get
    # gradient through the tied decoder's softmax.
    assert not (b["input_ids"] == 4).any()
    assert grad[4].abs().sum() > 0


def test_weight_decay_skips_biases_and_layernorms():
    model = tiny()
    decay, plain = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and plain["weight_decay"] == 0.0
    by_id = {id(p): n for n, p in model.named_parameters()}
    plain_names = {by_id[id(p)] for p in plain["params"]}
    assert "layers.0.ln_attention.weight" in plain_names and "mlm.bias" in plain_names
    assert "layers.0.attention.query.weight" not in plain_names
    assert len(decay["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_bad_head_count_is_one_clear_error():
    with pytest.raises(ValueError, match=r"hidden_size=30 is not a multiple of model\.num_heads=4"):
        BertForPretraining(BertConfig(vocab_size=V, hidden_size=30, num_heads=4))


@pytest.mark.parametrize("layer_norm, nsp", [("pre", False), ("post", False), ("pre", True), ("post", True)])
def test_sparse_last_layer_gives_the_full_models_loss_and_gradients(layer_norm, nsp):
    """forward() runs the last layer on the masked rows (and [CLS]) only; the reference runs every
    row through encode() and picks afterwards. Same loss, same gradient for every parameter."""
    b = batch()
    labels = torch.tensor([0, 1, 1], dtype=torch.int8) if nsp else None
    sparse, full = tiny(layer_norm, nsp=nsp), tiny(layer_norm, nsp=nsp)
    loss, _, _ = sparse(**b, next_sentence_labels=labels)
    loss.backward()
    h = full.encode(b["input_ids"], b["token_type_ids"], b["attention_mask"])
    real = b["masked_lm_positions"] > 0
    rows, cols = torch.nonzero(real, as_tuple=True)
    picked = h[rows, b["masked_lm_positions"][rows, cols].long()]
    ref = torch.nn.functional.cross_entropy(full.mlm(picked, full.embeddings.word.weight),
                                            b["masked_lm_ids"][rows, cols].long())
    if nsp:
        ref = ref + torch.nn.functional.cross_entropy(full.nsp_head(torch.tanh(full.pooler(h[:, 0]))), labels.long())
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(sparse.named_parameters(), full.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
