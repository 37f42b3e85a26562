"""One prepared GPU check (issue 13): BERT-base speed and MFU, ours vs transformers, a resumed DeepSpeed run, a GLUE trial.

    python -m benchmarks.gpu_check --shards results/samples --tokenizer resources/bert-base-uncased [--out DIR]

Under 8 minutes on one H200, no network; it builds nothing that can be carried: the shards come
from the CPU beforehand (`snakemake samples`), the tokenizer is the demo's. Five parts:
0. sync: a few training micro-steps (forward + backward, as between optimizer steps) of our BERT
   and modernbert (packed documents, padding) in bf16, their batches through prefetch.Prefetch
   (host indices, pinned) and engine.to_device as in training, under
   torch.cuda.set_sync_debug_mode("error"): does any op wait for the device (issue 13)? The same
   steps without the host indices are the control (they must be caught);
1. throughput: BERT-base, seq 128, 20 predictions per sequence, bf16 autocast, fused AdamW, the
   same plain-torch harness for ours (models/bert.py: sparse head and last layer, its host indices
   computed once on the CPU, as the prefetch thread does in training) and the peer
   (transformers BertForMaskedLM, attn_implementation sdpa, the loss on the masked positions only:
   labels -100 elsewhere); tokens/s and MFU (flops.py; the peer's FLOPs count its dense head);
2. the same in fp16 with dynamic loss scaling (torch.amp.GradScaler, growth every 20 steps so
   the scale moves): the scale's range, and whether every weight is still finite;
3. a 2-minute pretraining run through workflow_scripts.pretrain.train (DeepSpeed, 1 GPU, bf16),
   sent SIGTERM after a minute of training, then rerun: it must resume and end on its budget;
4. one GLUE fine-tuning trial (demo/glue_smoke RTE) from that run's model.
On a machine without CUDA every part runs tiny (hidden 64, 2 layers, seconds, fp32; fp16 and
the sync part are skipped, with a line saying so: they need a GPU), which is what tests/test_gpu_check.py runs. Lines `RESULT <metric>
<value> target <target> peer <peer>` end it.
"""
import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASE = dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072)
TINY = dict(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128)


def synthetic_batch(torch, batch: int, seq: int, predictions: int, vocab: int, device):
    """Random ids, every token real, `predictions` distinct masked positions per row (never [CLS])."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (batch, seq), generator=g)
    positions = torch.stack([torch.randperm(seq - 1, generator=g)[:predictions] + 1 for _ in range(batch)])
    targets = torch.randint(1000, vocab, (batch, predictions), generator=g)
    ours = dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids),
                masked_lm_positions=positions, masked_lm_ids=targets)
    labels = torch.full_like(ids, -100).scatter_(1, positions, targets)          # the peer: masked positions only
    peer = dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids), labels=labels)
    return ({k: v.to(device) for k, v in ours.items()}, {k: v.to(device) for k, v in peer.items()})


def padded_batches(torch, n: int, sizes: dict, vocab: int, packed: bool) -> list:
    """n shard-like CPU batches: rows of random real lengths (the rest padding), `predictions` masked
    slots of which a random tail is padding (0), two documents per row when packed."""
    g = torch.Generator().manual_seed(1)
    rows, seq, pred = sizes["batch"], sizes["seq"], sizes["predictions"]
    out = []
    for _ in range(n):
        lengths = torch.randint(seq // 2, seq + 1, (rows, 1), generator=g)
        mask = (torch.arange(seq)[None] < lengths).to(torch.int8)
        ids = torch.randint(1000, vocab, (rows, seq), generator=g) * mask
        picks = torch.stack([torch.randperm(seq // 2 - 1, generator=g)[:pred] + 1 for _ in range(rows)])
        picks = picks * (torch.arange(pred)[None] < torch.randint(pred // 2, pred + 1, (rows, 1), generator=g))
        b = dict(input_ids=ids.int(), token_type_ids=torch.zeros_like(mask), attention_mask=mask,
                 masked_lm_positions=picks.int(), masked_lm_ids=torch.randint(1000, vocab, (rows, pred), generator=g).int())
        if packed:
            b["document_ids"] = (torch.arange(seq)[None] >= lengths // 2).to(torch.int16)
        out.append(b)
    return out


@contextlib.contextmanager
def sync_errors(torch, on: bool):
    """Inside, an op that waits for the device raises (torch.cuda.set_sync_debug_mode; CUDA only)."""
    if on:
        torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        if on:
            torch.cuda.set_sync_debug_mode("default")


def micro_steps(kind: str, dims: dict, sizes: dict, device: str, host_indices: bool) -> str | None:
    """Forward + backward of a few micro-batches of our `kind` (bert, modernbert) as the training loop
    runs them, the last ones under sync_errors: None when none waited for the device, else why."""
    import types

    import torch

    from workflow_scripts.pretrain import engine, prefetch
    from workflow_scripts.pretrain.models import factory

    cuda = device.startswith("cuda")
    spec = {"type": kind, **dims, "dropout": 0.0, "attention_dropout": 0.0, "max_position_embeddings": 512,
            "layer_norm": "pre", **({"head_dim": dims["hidden_size"] // dims["num_heads"]} if kind == "modernbert" else {})}
    special = {"vocab_size": 30522, "pad": 0, "cls": 101, "sep": 102}
    torch.manual_seed(0)
    built = factory.build(spec, {}, special, nsp=False)
    model = built.model.to(device).train()
    batches = padded_batches(torch, 4, sizes, special["vocab_size"], packed=kind == "modernbert")
    stream = types.SimpleNamespace(documents_seen=None)
    items = prefetch.Prefetch(iter(batches), stream, pin=cuda, host_indices=built.host_indices if host_indices else None)
    dtype = torch.bfloat16 if cuda else torch.float32
    try:
        for i, item in enumerate(items):
            with sync_errors(torch, cuda and i > 0):   # the first step warms up (cuBLAS handles, allocator)
                with torch.autocast("cuda" if cuda else "cpu", dtype=dtype, enabled=cuda):
                    loss, _, _ = model(**engine.to_device(item.batch, device))
                loss.backward()
    except RuntimeError as e:
        if "synchroniz" not in str(e):   # only what sync_errors raises counts; a bug is a bug
            raise
        return str(e).splitlines()[0]
    return None


def check_sync(dims: dict, sizes: dict, device: str) -> None:
    if not device.startswith("cuda"):
        print("sync: skipped (no CUDA here: torch.cuda.set_sync_debug_mode needs a GPU; "
              "tests/test_pretrain_host_indices.py checks the ops on the CPU)", flush=True)
        return
    for kind in ("bert", "modernbert"):
        ours, control = (micro_steps(kind, dims, sizes, device, host) for host in (True, False))
        print(f"sync {kind}: with host indices {ours or 'no sync'} | without (control) {control or 'no sync'}",
              flush=True)
        # 1 only if the control did wait: a check that catches nothing without host indices proves nothing.
        print(f"RESULT sync_free_micro_steps_{kind} {int(ours is None and control is not None)} target 1 "
              f"peer {int(control is None)} (the same steps without host indices)", flush=True)


def build(kind: str, dims: dict, vocab: int, torch):
    """(model whose forward(**batch) gives the loss first, flops.Cost of a sequence, predictions counted)."""
    from workflow_scripts.pretrain import flops

    if kind == "ours":
        from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining

        model = BertForPretraining(BertConfig(vocab_size=vocab, **dims, layer_norm="post"))
        shape = flops.Shape("bert", dims["hidden_size"], dims["num_layers"], dims["intermediate_size"], vocab)
        return model, (lambda out: out[0]), shape
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=vocab, hidden_size=dims["hidden_size"], num_hidden_layers=dims["num_layers"],
                        num_attention_heads=dims["num_heads"], intermediate_size=dims["intermediate_size"],
                        attn_implementation="sdpa")
    model = BertForMaskedLM(config)
    assert model.config._attn_implementation == "sdpa"
    # Its head runs on every token and its last layer in full: count those FLOPs as its own.
    shape = flops.Shape("roberta", dims["hidden_size"], dims["num_layers"], dims["intermediate_size"], vocab)
    return model, (lambda out: out.loss), shape


def throughput(kind: str, precision: str, dims: dict, sizes: dict, device: str) -> dict:
    """Train steps of one model on one synthetic batch: tokens/s, model TFLOP/s, MFU; under fp16 the
    loss scale's range and whether the weights stayed finite."""
    import torch

    from workflow_scripts.pretrain import flops

    torch.manual_seed(0)
    vocab, batch, seq, pred = 30522, sizes["batch"], sizes["seq"], sizes["predictions"]
    model, loss_of, shape = build(kind, dims, vocab, torch)
    model.to(device).train()
    ours, peer = synthetic_batch(torch, batch, seq, pred, vocab, device)
    inputs = ours if kind == "ours" else peer
    if kind == "ours":   # its masked slots as training gets them: from the host (the prefetch thread), no sync
        from workflow_scripts.pretrain.engine import to_device
        from workflow_scripts.pretrain.models.bert import host_indices

        inputs = {**ours, **to_device(host_indices({"masked_lm_positions": ours["masked_lm_positions"].cpu()}), device)}
    cuda = device.startswith("cuda")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", growth_interval=20, enabled=precision == "fp16")
    scales = []

    def step():
        with torch.autocast("cuda" if cuda else "cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = loss_of(model(**inputs))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if precision == "fp16":
            scales.append(scaler.get_scale())

    for _ in range(sizes["warmup"]):
        step()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for _ in range(sizes["steps"]):
        step()
    sync()
    seconds = time.perf_counter() - t0
    rows = pred if kind == "ours" else seq                                   # the head's rows per sequence
    cost = flops.pretraining_cost(shape, seq, pred, nsp=False)
    model_flops = cost.train(batch, batch * rows) * sizes["steps"]
    peak, source = flops.device_peak(device, precision if cuda else "fp32")
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    return {"model": kind, "precision": precision, "tokens_per_s": batch * seq * sizes["steps"] / seconds,
            "tflops_per_s": model_flops / seconds / 1e12, "mfu": flops.mfu(model_flops / seconds, peak, 1),
            "peak": source, "weights_finite": finite,
            **({"loss_scale_min": min(scales), "loss_scale_max": max(scales)} if scales else {})}


def pretrain_recipe(dims: dict, cuda: bool, seconds: float) -> dict:
    return {"model": {"type": "bert", **dims}, "optimizer": {"lr": 1e-3 if cuda else 3e-3},
            "schedule": {"name": "linear", "warmup_proportion": 0.06}, "total_training_time": seconds / 3600,
            "batch_size": 256 if cuda else 8, "log_interval_steps": 10 if cuda else 2,
            "checkpoint_interval_minutes": seconds / 60 / 4, "validation_interval_minutes": seconds / 60 / 2,
            "implementation": {"micro_batch_size": 128 if cuda else 4, "precision": "bf16" if cuda else "fp32",
                               "gpus": 1 if cuda else 0}}


def read_log(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def pretrain_resumed(shards: Path, tokenizer: Path, out: Path, dims: dict, cuda: bool) -> dict:
    """A budget run through workflow_scripts.pretrain.train, SIGTERMed halfway through its training, rerun."""
    seconds = 120.0 if cuda else 6.0
    rec = pretrain_recipe(dims, cuda, seconds)
    cmd = [sys.executable, "-m", "workflow_scripts.pretrain.train", "--recipe", json.dumps(rec),
           "--train", *map(str, sorted((shards / "train").glob("*.h5"))),
           "--valid", *map(str, sorted((shards / "valid").glob("*.h5"))), "--tokenizer", str(tokenizer),
           "--state-dir", str(out / "state"), "--model-out", str(out / "model"), "--log-out", str(out / "log.jsonl")]
    running = out / "state"
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + seconds * 10 + 300
    while first.poll() is None and time.time() < deadline:                # SIGTERM once half the budget is trained
        logs = list(running.glob("*/log.jsonl"))
        trained = [e["elapsed_s"] for e in read_log(logs[0]) if e["event"] == "train"] if logs else []
        if trained and trained[-1] >= seconds / 2:
            first.send_signal(signal.SIGTERM)
            break
        time.sleep(0.5)
    first_out, _ = first.communicate(timeout=600)
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=seconds * 10 + 600)
    log = read_log(out / "log.jsonl")
    train = [e for e in log if e["event"] == "train"]
    end = log[-1] if log else {}
    ok = (first.returncode == 128 + signal.SIGTERM and second.returncode == 0 and end.get("reason") == "budget"
          and any(e["event"] == "resume" for e in log))
    if not ok:
        print(first_out[-3000:], second.stdout[-3000:], second.stderr[-3000:], sep="\n", flush=True)
    return {"sigterm_exit": first.returncode, "rerun_exit": second.returncode, "resumed_and_ended": ok,
            "tokens_per_s": train[-1]["tokens_per_s"] if train else None, "mfu": train[-1].get("mfu") if train else None,
            "device_hours": end.get("device_hours"), "model": out / "model"}


def finetune_trial(model: Path, out: Path) -> dict:
    """One RTE trial of the demo's GLUE rows from the pretrained model, as the finetune rule runs it."""
    import yaml

    from workflow_scripts import config_checks, config_effects

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config_checks.validate(config, REPO / "config" / "schema.yaml")
    settings = config_effects.finetune_settings(config["finetune"])
    metrics = out / "dev_metrics.json"
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts.glue.finetune", "--task", "RTE",
                           "--glue", json.dumps({"source": "dir", "path": str(REPO / "demo" / "glue_smoke")}),
                           "--model", str(model), "--hparams", json.dumps({"lr": 5e-5, "batch_size": 16, "epochs": 1,
                                                                         "seed": 1}),
                           "--settings", json.dumps(settings), "--metrics-out", str(metrics),
                           "--predictions-out", str(out / "test_predictions.tsv")],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", flush=True)
        return {"exit": proc.returncode}
    record = json.loads(metrics.read_text())
    return {"exit": 0, "score": record["score"], **record["speed"]}


def fmt(value, spec=".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def check_throughput(dims: dict, sizes: dict, device: str, precisions: list) -> None:
    for precision in precisions:
        ours, peer = (throughput(kind, precision, dims, sizes, device) for kind in ("ours", "peer"))
        for r in (ours, peer):
            extra = (f" | loss scale {r['loss_scale_min']:g}..{r['loss_scale_max']:g}" if "loss_scale_min" in r else "")
            print(f"{precision} {r['model']}: {r['tokens_per_s']:.0f} tokens/s | {r['tflops_per_s']:.3g} TFLOP/s | "
                  f"MFU {fmt(r['mfu'] and 100 * r['mfu'], '.1f')}% | weights finite {r['weights_finite']}{extra} "
                  f"| peak: {r['peak']}", flush=True)
        print(f"RESULT {precision}_tokens_per_s_ours_over_peer {ours['tokens_per_s'] / peer['tokens_per_s']:.2f} "
              "target >= 1.3 peer transformers BertForMaskedLM (sdpa, masked-positions-only loss)")
        print(f"RESULT {precision}_mfu_ours {fmt(ours['mfu'], '.3f')} target >= 0.5 peer {fmt(peer['mfu'], '.3f')}")
        if precision == "fp16":
            moved = ours["loss_scale_min"] != ours["loss_scale_max"]
            print(f"RESULT fp16_loss_scale_moved_and_weights_finite {int(moved and ours['weights_finite'])} "
                  f"target 1 peer {int(peer['weights_finite'])}", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shards", type=Path, default=REPO / "results" / "samples", help="a folder with train/ and valid/ shards")
    p.add_argument("--tokenizer", type=Path, default=REPO / "resources" / "bert-base-uncased")
    p.add_argument("--out", type=Path, help="where the runs go (default: a temporary folder)")
    p.add_argument("--parts", default="sync,throughput,pretrain,finetune")
    args = p.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    device = "cuda:0" if cuda else "cpu"
    dims = BASE if cuda else TINY
    sizes = (dict(batch=128, seq=128, predictions=20, warmup=10, steps=50) if cuda
             else dict(batch=4, seq=128, predictions=20, warmup=1, steps=2))
    print(f"gpu_check on {torch.cuda.get_device_name(0) if cuda else 'cpu (tiny sizes: no CUDA here)'}", flush=True)
    out = args.out or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    parts = args.parts.split(",")
    if cuda:   # as the pretraining engine and the trials do
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    if "sync" in parts:
        check_sync(dims, dict(sizes, batch=32), device)
    if "throughput" in parts:
        check_throughput(dims, sizes, device, ["bf16", "fp16"] if cuda else ["fp32"])
    model = None
    if "pretrain" in parts:
        r = pretrain_resumed(args.shards, args.tokenizer, out / "pretrain", dims, cuda)
        print(f"pretrain: SIGTERM exit {r['sigterm_exit']}, rerun exit {r['rerun_exit']}, last train line "
              f"{fmt(r['tokens_per_s'], '.0f')} tokens/s, MFU {fmt(r['mfu'], '.3f')}, {fmt(r['device_hours'], '.4f')} "
              "device-hours", flush=True)
        print(f"RESULT pretrain_resumed_after_sigterm {int(r['resumed_and_ended'])} target 1 peer none")
        model = r["model"] if r["resumed_and_ended"] else None
    if "finetune" in parts and model is not None:
        r = finetune_trial(model, out / "finetune")
        print(f"finetune RTE: exit {r['exit']}, score {fmt(r.get('score'), '.2f')}, {fmt(r.get('tokens_per_s'), '.0f')} "
              f"tokens/s, MFU {fmt(r.get('mfu'), '.3f')}", flush=True)
        print(f"RESULT finetune_trial_ran {int(r['exit'] == 0)} target 1 peer none", flush=True)


if __name__ == "__main__":
    main()
