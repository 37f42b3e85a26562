"""Unpadding: training tokens per CPU-second, our modernbert (padding removed) vs the same model padded.

Claim (issue 11): ours / peer >= 0.9 / (1 - padding fraction): dropping the padding tokens before the
encoder turns the padding's share of the compute into real tokens, less 10% for the bookkeeping.

The peer is the same model computed padded: transformers' ModernBertForMaskedLM (SDPA, a padding
mask, every layer global) built from the config our export writes and loaded with our initial
weights, so both sides compute the same function (tests/test_pretrain_modern.py checks the logits).
It runs its head on the masked positions only (sparse_prediction), as ours does, so the two differ
only in where padding is computed. The same real batches (the Wikipedia excerpt, bert-base-uncased,
seq 128, NSP-style sentence pairs, whose short pairs leave real padding), the same optimizer
(torch AdamW, fp32, weight decay 0.01) and a full step: zero_grad, forward, backward, clip 1.0, step.

Method, as benchmarks/pretrain_throughput.py (whose helpers it uses): one process, rounds
alternating ours and the peer after a warm-up step each, best of --rounds, one torch thread, each
side charged the CPU time of its steps; tokens are non-padding tokens.

    python -m benchmarks.unpadding_throughput [--rounds 3] [--threads 1] [--wall]
"""
import argparse
import os
import shutil

from benchmarks.pretrain_throughput import make_batches, measure, mlm_labels, real_batches

PEER = "transformers.ModernBertForMaskedLM (padded, sparse head)"
SPECIAL = {"vocab_size": 30522, "pad": 0, "cls": 101, "sep": 102}
SIZES = {
    # name: (layers, hidden, heads, GLU width, batch, steps per round)
    "4L-256H": (4, 256, 4, 384, 16, 4),
    "base-12L-768H": (12, 768, 12, 1152, 8, 2),
}


def ours(layers, hidden, heads, glu):
    from workflow_scripts.pretrain.models import factory

    spec = {"type": "modernbert", "hidden_size": hidden, "num_layers": layers, "num_heads": heads, "head_dim": 64,
            "intermediate_size": glu, "dropout": 0.0, "attention_dropout": 0.0, "max_position_embeddings": 512}
    return factory.build(spec, {}, SPECIAL, nsp=False).model


def peer_of(model):
    """transformers' ModernBERT with our model's config and weights."""
    from transformers import ModernBertForMaskedLM

    from workflow_scripts.pretrain.models import modern_export

    config = modern_export.hf_config(model.cfg, SPECIAL)
    config.sparse_prediction = True
    hf = ModernBertForMaskedLM(config)
    hf.load_state_dict(modern_export.hf_state_dict(model.state_dict()), strict=False)
    hf.tie_weights()
    return hf


def peer_inputs(b):
    return {"input_ids": b["input_ids"].long(), "attention_mask": b["attention_mask"].long(), "labels": mlm_labels(b)}


def step_fn(model, is_peer):
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step(b):
        optimizer.zero_grad(set_to_none=True)
        loss = model(**peer_inputs(b)).loss if is_peer else model(**b)[0]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return step


def compare(name, batches, rounds, wall):
    import torch

    layers, hidden, heads, glu, _, _ = SIZES[name]
    torch.manual_seed(0)
    model = ours(layers, hidden, heads, glu).train()
    sides = {"ours": step_fn(model, False), "peer": step_fn(peer_of(model).train(), True)}
    for step in sides.values():
        step(batches[0])                                      # warm-up: allocations, first-call costs
    best = {side: 0.0 for side in sides}
    for r in range(rounds):
        for side in ("ours", "peer") if r % 2 == 0 else ("peer", "ours"):
            tokens, w, cpu = measure(sides[side], batches[1:])
            best[side] = max(best[side], tokens / (w if wall else cpu))
            print(f"{name} round {r + 1} {side}: {tokens} tokens, wall {w:.2f}s, CPU {cpu:.2f}s, "
                  f"{tokens / (w if wall else cpu):,.0f} tokens/s", flush=True)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wall", action="store_true", help="rate on wall-clock time instead of CPU time")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(args.threads)
    stream, tmp = real_batches(max(SIZES[s][4] * (SIZES[s][5] + 1) for s in args.sizes) + 64)
    results = []
    for name in args.sizes:
        batch, steps = SIZES[name][4:]
        batches = make_batches(stream, batch, steps + 1)
        padding = 1 - sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel()
                                                                                  for b in batches)
        best = compare(name, batches, args.rounds, args.wall)
        ratio, target = best["ours"] / best["peer"], 0.9 / (1 - padding)
        print(f"{name}: batch {batch} x seq 128, padding fraction {padding:.3f}: ours {best['ours']:,.0f} "
              f"tokens/s, peer {best['peer']:,.0f} tokens/s, ratio {ratio:.2f} (target {target:.2f})", flush=True)
        results.append((name, ratio, target, padding))
    for name, ratio, target, padding in results:
        print(f"RESULT unpadded_train_tokens_per_s_ratio_{name} {ratio:.2f} target >={target:.2f} "
              f"(0.9 / (1 - padding {padding:.3f})) peer {PEER}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
