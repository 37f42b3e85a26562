"""On one GPU: training tokens/s and MFU of modernbert vs our classic (pre-LN) BERT at BERT-base size.

Claim (issue 11): the measure a device run reports; no target of its own (time_to_loss carries the
claim). Both at BERT-base size with equal parameters: 12 layers x 768, 12 heads; BERT's 3072-wide
GELU MLP against a 2048-wide GeGLU (2 x 768 x 2048 + 2048 x 768 = 2 x 768 x 3072 weights); seq 128,
bf16 autocast, torch AdamW (fused), clipping at 1.0, the sparse MLM head on 20% of the tokens. The
batches are synthetic masked-LM rows with real-looking padding (lengths uniform in [64, 128], ~25%
padding): the device machine has no demo data, and both sides read the same rows.

MFU = achieved FLOPs / the GPU's peak dense bf16 FLOPs (--peak-tflops, else looked up by name).
FLOPs per real token: 6 x the encoder's weights (forward + backward), plus attention 12 x layers x
seq x hidden (QK^T and AV), plus the head 6 x (H^2 + H x V) on the predicted share. Counted on real
tokens only: padding a model computes is waste, not utilisation.

    python -m benchmarks.gpu_modern_vs_classic [--batch 256] [--steps 40] [--peak-tflops 989]
"""
import argparse
import time

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}
SPECIAL = {"vocab_size": 30522, "pad": 0, "cls": 101, "sep": 102}
SEQ, HIDDEN, LAYERS, HEADS = 128, 768, 12, 12
SPECS = {
    "classic": {"type": "bert", "layer_norm": "pre", "intermediate_size": 3072, "dropout": 0.1,
                "attention_dropout": 0.1},
    "modern": {"type": "modernbert", "head_dim": 64, "intermediate_size": 2048, "dropout": 0.0,
               "attention_dropout": 0.0},
}


def batches(n, batch, device, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        lengths = torch.randint(64, SEQ + 1, (batch,), generator=g)
        mask = (torch.arange(SEQ)[None] < lengths[:, None]).int()
        ids = torch.randint(1000, SPECIAL["vocab_size"], (batch, SEQ), generator=g) * mask
        P = int(0.2 * SEQ)
        positions = torch.stack([torch.randperm(int(n_) - 1, generator=g)[:P] + 1 for n_ in lengths])
        labels = torch.randint(1000, SPECIAL["vocab_size"], (batch, P), generator=g)
        b = dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=mask,
                 masked_lm_positions=positions.int(), masked_lm_ids=labels.int())
        out.append(b)
    return out      # on the host: each model adds its host indices there, as training's prefetch thread does


def flops_per_token(model, vocab):
    """Training FLOPs per real token: encoder weights (embeddings and the MLM head apart), attention, head."""
    embed = sum(p.numel() for n, p in model.named_parameters() if "embed" in n)
    head = HIDDEN * HIDDEN + HIDDEN * vocab                  # dense + the tied decoder
    body = sum(p.numel() for p in model.parameters()) - embed - HIDDEN * HIDDEN
    return 6 * body + 12 * LAYERS * SEQ * HIDDEN + 0.2 * 6 * head


def run(name, data, steps, device, peak):
    import torch

    from workflow_scripts.pretrain import engine
    from workflow_scripts.pretrain.models import factory

    spec = {**SPECS[name], "hidden_size": HIDDEN, "num_layers": LAYERS, "num_heads": HEADS,
            "max_position_embeddings": 512}
    torch.manual_seed(0)
    built = factory.build(spec, {}, SPECIAL, nsp=False)
    model = built.model.to(device).train()
    counts = [int(b["attention_mask"].sum()) for b in data]       # real tokens, counted on the host
    data = [engine.to_device({**b, **built.host_indices(b)}, device) for b in data]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=device.type == "cuda")

    def step(b):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**b)[0]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for b in data[:5]:
        step(b)                                              # warm-up: kernels, allocator
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0, tokens = time.perf_counter(), 0
    for i in range(steps):
        k = 5 + i % (len(data) - 5)
        step(data[k])
        tokens += counts[k]
    sync()
    rate = tokens / (time.perf_counter() - t0)
    vocab = model.cfg.vocab_size
    mfu = rate * flops_per_token(model, vocab) / (peak * 1e12) if peak else float("nan")
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{name}: {params:.1f}M parameters, {rate:,.0f} real tokens/s, MFU {mfu:.3f}", flush=True)
    return rate, mfu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak")
    args = parser.parse_args(argv)
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    data = batches(13, args.batch, device)
    padding = 1 - sum(int(b["attention_mask"].sum()) for b in data) / sum(b["attention_mask"].numel() for b in data)
    print(f"{gpu}, torch {torch.__version__}, peak {peak} TFLOPs, batch {args.batch} x seq {SEQ}, "
          f"padding {padding:.3f}", flush=True)
    results = {name: run(name, data, args.steps, device, peak) for name in SPECS}
    for name, (rate, mfu) in results.items():
        print(f"RESULT {name}_tokens_per_s {rate:.0f} target none peer classic")
        print(f"RESULT {name}_mfu {mfu:.3f} target none peer classic")
    print(f"RESULT modern_over_classic_tokens_per_s {results['modern'][0] / results['classic'][0]:.2f} "
          f"target >1 peer our pre-LN BERT")


if __name__ == "__main__":
    main()
