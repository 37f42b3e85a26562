"""Issue 13: the index tensors whose sizes are data (masked slots, modernbert's real tokens and documents)
are computed on the host by each model's host_indices (the prefetch thread runs it), so a forward and
backward given them runs no op that waits for the device; without them the forward computes the same."""
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from workflow_scripts.pretrain import engine, prefetch
from workflow_scripts.pretrain.models import factory

V, B, L, P = 30522, 3, 16, 4
SPECIAL = {"vocab_size": V, "pad": 0, "cls": 101, "sep": 102}
# Ops whose output size (or a Python value) depends on tensor data: on a GPU each waits for the device.
SYNCING = {"nonzero", "unique_consecutive", "_unique2", "unique_dim", "_local_scalar_dense", "is_nonzero",
           "masked_select", "equal"}
CASES = ["bert", "bert-nsp", "modernbert", "modernbert-packed", "roberta", "albert", "deberta-v2"]


def build(case: str):
    family = case.removesuffix("-nsp").removesuffix("-packed")
    spec = {"type": family, "hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
            "dropout": 0.1, "attention_dropout": 0.1, "max_position_embeddings": 32, "layer_norm": "pre"}
    if family == "modernbert":
        spec.update(head_dim=16, dropout=0.0, attention_dropout=0.0)
    torch.manual_seed(0)
    return factory.build(spec, {}, SPECIAL, nsp=case.endswith("-nsp"))


def batch(case: str) -> dict:
    """Shard-like CPU batch: row 1 padded, row 0 a sentence pair, prediction slots padded with 0."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, V, (B, L), generator=g)
    mask = torch.ones(B, L, dtype=torch.int8)
    mask[1, 10:], ids[1, 10:] = 0, 0
    types = torch.zeros(B, L, dtype=torch.int8)
    types[0, 10:] = 1
    positions = torch.tensor([[1, 5, 7, 0], [2, 3, 9, 0], [4, 12, 0, 0]], dtype=torch.int32)
    out = dict(input_ids=ids.int(), token_type_ids=types, attention_mask=mask, masked_lm_positions=positions,
               masked_lm_ids=torch.randint(1000, V, (B, P), generator=g).int() * (positions > 0))
    if case.endswith("-nsp"):
        out["next_sentence_labels"] = torch.tensor([0, 1, 0])
    if case.endswith("-packed"):   # rows 0 and 2 hold two documents each
        out["document_ids"] = torch.tensor([[0] * 6 + [1] * 10, [0] * 16, [0] * 11 + [1] * 5], dtype=torch.int16)
    return out


def loss_and_grads(model, inputs: dict):
    torch.manual_seed(5)                     # the same dropout masks on both sides
    model.zero_grad(set_to_none=True)
    loss, mlm_sum, n = model(**inputs)
    loss.backward()
    return loss.detach(), mlm_sum, n, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


class SyncingOps(TorchDispatchMode):
    """Counts the aten ops run inside it (autograd's backward too) that wait for the device."""

    def __init__(self):
        super().__init__()
        self.seen = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or []))
        if name in SYNCING or bool_index:
            self.seen[name + (" (bool index)" if bool_index else "")] += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("case", CASES)
def test_host_indices_change_nothing_but_the_ops_that_wait_for_the_device(case):
    built, b = build(case), batch(case)
    model = built.model.train()
    extra = built.host_indices(b)                    # on the host, as the prefetch thread does
    assert extra and not set(extra) & set(b)
    with SyncingOps() as given:
        with_host = loss_and_grads(model, {**b, **extra})
    with SyncingOps() as computed:                   # the check can fail: the fallback's own ops are caught
        without = loss_and_grads(model, b)
    assert not given.seen, dict(given.seen)
    assert computed.seen["nonzero"] >= 1, dict(computed.seen)
    if case.startswith("modernbert"):
        assert computed.seen["unique_consecutive"] == 1 and computed.seen["_local_scalar_dense"] >= 1
    # The same numbers: loss, sum, count (the real prediction slots) and every gradient.
    assert with_host[2] == without[2] == 8
    torch.testing.assert_close(with_host[0], without[0], rtol=0, atol=0)
    torch.testing.assert_close(with_host[1], without[1], rtol=0, atol=0)
    assert with_host[3].keys() == without[3].keys() and len(with_host[3]) > 5
    for name, grad in with_host[3].items():
        torch.testing.assert_close(grad, without[3][name], rtol=0, atol=0, msg=name)


def test_modernbert_host_indices_find_documents_tokens_and_predictions():
    b = batch("modernbert-packed")
    extra = build("modernbert-packed").host_indices(b)
    real = b["attention_mask"].flatten().bool()
    assert extra["token_index"].tolist() == real.nonzero().squeeze(1).tolist() and len(extra["token_index"]) == 42
    assert extra["cu_seqlens"].tolist() == [0, 6, 16, 26, 37, 42] and extra["max_seqlen"] == 11
    assert extra["cu_seqlens"].dtype == torch.int32 and isinstance(extra["max_seqlen"], int)
    assert extra["masked_index"].tolist() == [0, 1, 2, 4, 5, 6, 8, 9]      # slots past the real ones (0) left out
    # Row 1 has 10 real tokens, so row 2's positions 4 and 12 are rows 16 + 10 + 4 and 16 + 10 + 12 of h.
    assert extra["masked_tokens"].tolist() == [1, 5, 7, 18, 19, 25, 30, 38]


def test_prefetch_adds_the_entries_in_order_and_to_device_keeps_ints():
    built = build("modernbert-packed")
    batches = []
    for seed in range(4):
        b = batch("modernbert-packed")
        b["masked_lm_positions"] = b["masked_lm_positions"].roll(seed, 1)    # a different batch each time
        batches.append(b)

    class Stream:
        documents_seen = None

    items = list(prefetch.Prefetch(iter(batches), Stream(), pin=False, host_indices=built.host_indices))
    assert len(items) == 4
    for item, b in zip(items, batches, strict=True):
        expected = {**b, **built.host_indices(b)}
        assert item.batch.keys() == expected.keys() and item.predictions == 8 and item.tokens == 42
        for key, value in expected.items():
            assert torch.equal(item.batch[key], value) if isinstance(value, torch.Tensor) else item.batch[key] == value
    moved = engine.to_device(items[0].batch, "cpu")
    assert moved["max_seqlen"] == 11 and isinstance(moved["max_seqlen"], int)
    assert prefetch.pinned({"max_seqlen": 11}) == {"max_seqlen": 11}    # only tensors are pinned


def test_the_loop_hands_the_runs_host_indices_to_prefetch():
    from itertools import islice
    from types import SimpleNamespace

    from workflow_scripts.pretrain import loop
    from workflow_scripts.pretrain.state import TrainState

    built = build("bert")
    stream = SimpleNamespace(documents_seen=None, epoch=lambda epoch, start: iter([batch("bert")] * 2))
    run = SimpleNamespace(stream=stream, micro=B, host_indices=built.host_indices,
                          eng=SimpleNamespace(dist=SimpleNamespace(device="cpu")))
    first = next(islice(loop.micro_batches(run, TrainState()), 1))
    assert first.batch["masked_index"].tolist() == [0, 1, 2, 4, 5, 6, 8, 9]
