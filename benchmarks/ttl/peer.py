"""The peer side of time_to_loss: what a user would otherwise run, transformers' run_mlm.py recipe,
written out as a loop: BertForMaskedLM (post-LN, the MLM head on every token), the grouped
128-token blocks reshuffled every epoch, DataCollatorForLanguageModeling(mlm_probability=0.15)
masking each batch afresh, AdamW (Trainer's defaults: betas 0.9/0.999, eps 1e-8; weight decay 0.01
off biases and LayerNorms), gradient norm clipped to 1.0, linear warmup (6%) and linear decay.

One thread; the clock is this process's CPU time spent training (forward, backward, step, batch
collation); snapshots (save_pretrained) are taken with the clock paused. The linear schedule runs
on the CPU-time fraction of the budget: the same as Trainer's step schedule with max_steps set
exactly right for the budget, which a real user would have to guess.

    python -m benchmarks.ttl.peer --blocks blocks.npy --budget-s 600 --lr 5e-4 --out DIR
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.ttl.data import TOKENIZER


def model_config(size: dict):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=size["hidden_size"], num_hidden_layers=size["num_layers"],
                      num_attention_heads=size["num_heads"], intermediate_size=size["intermediate_size"],
                      max_position_embeddings=512, hidden_act="gelu", tie_word_embeddings=True)


def linear_lr(peak: float, fraction: float, warmup: float) -> float:
    """transformers' get_linear_schedule_with_warmup at a fraction of the run."""
    if fraction < warmup:
        return peak * fraction / warmup
    return peak * max(0.0, (1.0 - fraction) / (1.0 - warmup))


def optimizer(model, lr: float, weight_decay: float):
    import torch

    decay = [p for n, p in model.named_parameters() if p.ndim > 1]     # Trainer: no decay on biases / LayerNorm
    rest = [p for n, p in model.named_parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def train(blocks: np.ndarray, size: dict, lr: float, budget_s: float, batch_size: int, snapshots: int, out: Path,
          seed: int = 42, warmup: float = 0.06) -> list:
    """Train until budget_s CPU-seconds; save a snapshot every budget_s / snapshots; return their list."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM, DataCollatorForLanguageModeling

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    model = BertForMaskedLM(model_config(size)).train()
    opt = optimizer(model, lr, 0.01)
    rng, taken, cpu, step, next_snap = np.random.default_rng(seed), [], 0.0, 0, budget_s / snapshots
    while cpu < budget_s:
        order = rng.permutation(len(blocks))
        for start in range(0, len(order) - batch_size + 1, batch_size):   # (Trainer also keeps the last partial batch)
            t0 = time.process_time()
            for group in opt.param_groups:
                group["lr"] = linear_lr(lr, cpu / budget_s, warmup)
            batch = collate([{"input_ids": blocks[i].tolist()} for i in order[start:start + batch_size]])
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            cpu, step = cpu + time.process_time() - t0, step + 1
            if cpu >= next_snap or cpu >= budget_s:
                taken.append(snapshot(model, tokenizer, out, cpu, step, loss.item()))
                next_snap += budget_s / snapshots
            if cpu >= budget_s:
                break
    return taken


def snapshot(model, tokenizer, out: Path, cpu: float, step: int, loss: float) -> dict:
    folder = out / f"snapshot_{step:07d}"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    print(f"peer: step {step} | {cpu:.0f} CPU-s | train loss {loss:.4f}", flush=True)
    return {"cpu_s": round(cpu, 2), "step": step, "model": str(folder)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", required=True, type=Path, help=".npy of grouped 128-token blocks")
    p.add_argument("--size", required=True, help="JSON: hidden_size, num_layers, num_heads, intermediate_size")
    p.add_argument("--lr", required=True, type=float)
    p.add_argument("--budget-s", required=True, type=float, help="training CPU-seconds")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--snapshots", type=int, default=10)
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    import torch
    from transformers.utils import logging

    torch.set_num_threads(1)
    logging.disable_progress_bar()
    args.out.mkdir(parents=True, exist_ok=True)
    taken = train(np.load(args.blocks), json.loads(args.size), args.lr, args.budget_s, args.batch_size,
                  args.snapshots, args.out)
    (args.out / "snapshots.json").write_text(json.dumps(taken, indent=1))


if __name__ == "__main__":
    main()
