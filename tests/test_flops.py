"""Model FLOPs per step (flops.py) against a hand count and against torch's FlopCounterMode; the peak table."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from workflow_scripts.pretrain import flops
from workflow_scripts.pretrain.models import factory

V, B, L, P = 1000, 3, 16, 4
SPECIAL = {"vocab_size": V, "pad": 0, "cls": 101, "sep": 102}


def spec(family, **over):
    return {"type": family, "hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64,
            "dropout": 0.0, "attention_dropout": 0.0, "max_position_embeddings": 32, "layer_norm": "pre", **over}


def batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(200, V, (B, L), generator=g)
    positions = torch.tensor([[1, 5, 7, 0], [2, 3, 9, 0], [4, 0, 0, 0]], dtype=torch.int32)   # 7 real predictions
    return dict(input_ids=ids, token_type_ids=torch.zeros(B, L, dtype=torch.long),
                attention_mask=torch.ones(B, L, dtype=torch.long), masked_lm_positions=positions,
                masked_lm_ids=torch.randint(200, V, (B, P), generator=g) * (positions > 0))


def test_hand_count_of_a_tiny_roberta():
    # H 32, I 64, L 16, 2 layers, V 1000: per token and layer q,k,v,out 2*4*32*32 = 8192,
    # scores + mix 2*2*16*32 = 2048, feed-forward 2*2*32*64 = 8192 -> 18432; x 16 tokens x 2 layers.
    cost = flops.pretraining_cost(flops.shape_of_spec(spec("roberta"), V), L, P, nsp=False)
    assert cost.per_sequence == 18432 * 16 * 2
    assert cost.per_prediction == 2 * 32 * 32 + 2 * 32 * 1000
    assert cost.train(2, 5) == 3 * (2 * 18432 * 32 + 5 * 66048)


def test_hand_count_of_our_sparse_last_layer():
    # Last layer: k, v for 16 tokens (2*2*32*32 each) + the rest for the 4 head rows (18432 - 4096 each).
    cost = flops.pretraining_cost(flops.shape_of_spec(spec("bert"), V), L, P, nsp=False)
    assert cost.per_sequence == 18432 * 16 + 4096 * 16 + (18432 - 4096) * 4


def measured(model, b, backward: bool) -> int:
    """FLOPs torch counts. Its formulas know the CUDA attention kernels but not the CPU's fused one:
    the math backend computes attention as matmuls, which it counts."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        loss = model(**b)[0]
        if backward:
            loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("family,over", [("bert", {}), ("bert", {"layer_norm": "post"}), ("roberta", {}),
                                         ("albert", {}), ("albert", {"num_hidden_groups": 2}),
                                         ("modernbert", {"head_dim": 8})])
def test_forward_and_backward_match_torch_flop_counter(family, over):
    torch.manual_seed(0)
    model = factory.build(spec(family, **over), {}, SPECIAL, nsp=False).model.train()
    b = batch()
    predicted = int((b["masked_lm_positions"] > 0).sum())
    cost = flops.pretraining_cost(flops.shape_of_spec(spec(family, **over), V), L, P, nsp=False)
    forward = cost.per_sequence * B + cost.per_prediction * predicted
    assert measured(model, b, backward=False) == forward
    # backward = 2 x forward (the attention's score recomputation, if a kernel counts one, aside)
    assert measured(model, b, backward=True) == pytest.approx(cost.train(B, predicted), rel=0.02)


def test_deberta_counts_its_relative_attention():
    # Left out by design: the relative embeddings' projection, once per micro-batch and layer.
    over = {"position_buckets": 8}
    torch.manual_seed(0)
    model = factory.build(spec("deberta-v2", **over), {}, SPECIAL, nsp=False).model.train()
    b = batch()
    cost = flops.pretraining_cost(flops.shape_of_spec(spec("deberta-v2", **over), V), L, P, nsp=False)
    once_per_batch = 2 * 2 * 2 * (2 * 8) * 32 * 32          # layers x (q, k) x 2S x H x H, 2 FLOPs each
    assert measured(model, b, backward=False) == cost.per_sequence * B + cost.per_prediction * 7 + once_per_batch


def test_classifier_cost_matches_a_sequence_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32, num_labels=3)
    model = BertForSequenceClassification(config).train()
    ids = torch.randint(5, V, (B, L))
    counter = FlopCounterMode(display=False)
    with counter:
        model(input_ids=ids, labels=torch.tensor([0, 1, 2]))
    cost = flops.classifier_cost(flops.shape_of_hf_config(config), L, 3)
    assert counter.get_total_flops() == cost.per_sequence * B


def test_peak_table_matches_names_most_specific_first():
    assert flops.gpu_peak_tflops("NVIDIA H100 PCIe", "bf16") == 756
    assert flops.gpu_peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989
    assert flops.gpu_peak_tflops("NVIDIA H200", "fp16") == 989
    assert flops.gpu_peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 156     # TF32
    assert flops.gpu_peak_tflops("NVIDIA A10", "bf16") == 125
    assert flops.gpu_peak_tflops("NVIDIA A10G", "bf16") is None
    assert flops.gpu_peak_tflops("NVIDIA L40S", "bf16") == 362
    assert flops.gpu_peak_tflops("NVIDIA GeForce RTX 4090", "bf16") == 165.2
    assert flops.gpu_peak_tflops("Tesla V100-SXM2-16GB", "bf16") is None     # no bf16
    assert flops.gpu_peak_tflops("Some Future GPU", "bf16") is None


def test_device_peak_override_probe_and_mfu():
    assert flops.device_peak("cpu", "fp32", 2.5) == (2.5, "config (implementation.peak_tflops)")
    peak, source = flops.device_peak("cpu", "fp32")
    assert peak > 0 and "probe" in source
    assert flops.mfu(50e12, 100.0, 2) == 0.25
    assert flops.mfu(50e12, None, 1) is None


def test_nsp_head_and_its_cls_row_are_counted_for_our_bert_only():
    torch.manual_seed(0)
    model = factory.build(spec("bert"), {}, SPECIAL, nsp=True).model.train()
    b = dict(batch(), next_sentence_labels=torch.tensor([0, 1, 0]))
    cost = flops.pretraining_cost(flops.shape_of_spec(spec("bert"), V), L, P, nsp=True)
    assert measured(model, b, backward=False) == cost.per_sequence * B + cost.per_prediction * 7
    roberta = flops.shape_of_spec(spec("roberta"), V)
    assert flops.pretraining_cost(roberta, L, P, nsp=True) == flops.pretraining_cost(roberta, L, P, nsp=False)


def test_cpu_probe_leaves_the_global_generator_alone():
    # The run's dropout masks come from torch's global generator: the probe must not move it.
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    flops.measured_tflops.cache_clear()
    flops.measured_tflops()
    assert torch.equal(torch.rand(4), expected)
