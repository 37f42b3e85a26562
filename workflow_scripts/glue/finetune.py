"""One GLUE fine-tuning trial: a pre-trained model + one task + one (lr, batch, epochs, seed) -> dev metrics, test predictions.

A plain PyTorch loop (no HF Trainer): AdamW with decoupled weight decay, linear warmup then
linear decay to 0, dynamic padding, optional length-grouped batches, gradient clipping,
autocast on CUDA. Evaluates on dev once, at the end, then predicts the test split(s) in the
GLUE server's vocabulary (for MNLI also the AX diagnostic set).

The model may also be a fine-tuned classifier (STILTs: RTE, MRPC, STS-B from the selected
MNLI model): its encoder is kept and its classification head replaced by a new one for this
task. `--model-out` keeps the fine-tuned model (Hugging Face folder with tokenizer), marked
with the task it was fine-tuned on (config.json `finetuning_task`).

    python -m workflow_scripts.glue.finetune --task CoLA --glue '{"source": "dir", "path": "demo/glue_smoke"}' \\
        --model results/runs/demo/model --hparams '{"lr": 1e-4, "batch_size": 16, "epochs": 2, "seed": 1}' \\
        --settings '{"max_seq_length": 128, ...}' --metrics-out dev_metrics.json --predictions-out test_predictions.tsv \\
        [--model-out model/] [--cache-dir datasets_cache/]
"""
import argparse
import json
import math
import random
import time
from pathlib import Path

from workflow_scripts import atomic, tracking
from workflow_scripts.glue import metrics, readers, tasks
from workflow_scripts.cli import json_object, one_line_errors
from workflow_scripts.errors import BadInput

PRINT_EVERY = 10  # progress lines per trial (plus the first step)


def need(d: dict, key: str, where: str):
    if key not in d:
        raise BadInput(f"{where}: missing key {key!r}")
    return d[key]


# ---- batches --------------------------------------------------------------------------------

def train_batches(lengths, batch_size: int, generator, group_by_length: bool) -> list:
    """One epoch of batches (lists of example ids), shuffled with `generator` (a torch.Generator).

    Length grouping (as HF's LengthGroupedSampler): shuffle, cut into mega-batches of 50
    batches, sort each by length so a batch pads little, then shuffle the batch order.
    """
    import torch

    order = torch.randperm(len(lengths), generator=generator).tolist()
    if group_by_length:
        mega = batch_size * 50
        order = [i for start in range(0, len(order), mega)
                 for i in sorted(order[start:start + mega], key=lambda i: -lengths[i])]
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
    return batches


def collate(features: list, ids: list, pad_id: int, device):
    """Pad a batch to its longest example (dynamic padding): input_ids, token_type_ids, attention_mask."""
    import torch

    width = max(len(features[i]["input_ids"]) for i in ids)
    batch = {}
    for key, pad in (("input_ids", pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
        if key in features[ids[0]]:
            batch[key] = torch.tensor([features[i][key] + [pad] * (width - len(features[i][key])) for i in ids],
                                      device=device)
    return batch


def tokenize(tokenizer, examples: list, max_len: int) -> list:
    texts_a = [e.text_a for e in examples]
    texts_b = [e.text_b for e in examples] if examples[0].text_b is not None else None
    enc = tokenizer(texts_a, texts_b, truncation=True, max_length=max_len)
    return [{k: enc[k][i] for k in enc.keys()} for i in range(len(examples))]


# ---- model, optimizer, schedule --------------------------------------------------------------

def source_task(model_dir: Path) -> str | None:
    """The task a model folder was fine-tuned on ("MNLI" for STILTs), or None for a pre-trained model.

    Our trials write config.json `finetuning_task`; any other sequence classifier counts as
    fine-tuned on an unknown task ("?").
    """
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{model_dir / 'config.json'}: cannot read it ({type(e).__name__}: {e})") from None
    if config.get("finetuning_task"):
        return config["finetuning_task"]
    if any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or []):
        return "?"
    return None


def reset_head(model) -> None:
    """A new classification head (STILTs): BERT's init, normal(0, initializer_range) weights, zero biases.

    Loading with ignore_mismatched_sizes re-draws only the layers whose shape changed; RoBERTa-style
    heads also hold a hidden x hidden dense layer that would otherwise carry over from the source task.
    """
    import torch

    head = getattr(model, "classifier", None)
    if head is None:
        raise BadInput(f"{type(model).__name__} has no `classifier` head to replace")
    for module in head.modules():
        if isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=model.config.initializer_range)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)


def load_model(model_dir: Path, task):
    """(tokenizer, classifier for `task`, task the folder was fine-tuned on or None)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not model_dir.is_dir():
        raise BadInput(f"{model_dir}: model folder not found (expected a Hugging Face save_pretrained folder)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except Exception as e:
        raise BadInput(f"{model_dir}: cannot load its tokenizer ({type(e).__name__}: {e})") from None
    # Regression's one output gets a name too: a fine-tuned source's id2label (MNLI: 3) must not survive.
    labels = task.labels or ("score",)
    kwargs = {"num_labels": task.num_labels, "id2label": dict(enumerate(labels)),
              "label2id": {label: i for i, label in enumerate(labels)},
              "problem_type": "regression" if task.is_regression else "single_label_classification"}
    from_task = source_task(model_dir)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, ignore_mismatched_sizes=from_task is not None, **kwargs)
    except Exception as e:
        raise BadInput(f"{model_dir}: cannot load it as a sequence classifier ({type(e).__name__}: {e})") from None
    if from_task is not None:
        reset_head(model)
    # What a kept model says it was fine-tuned on (read back by source_task).
    model.config.finetuning_task = task.name
    return tokenizer, model, from_task


def save_model(model, tokenizer, out: Path, extra=None) -> None:
    """save_pretrained into a temp folder beside `out`, then rename: no half-written model folder;
    extra(tmp), if given, adds its files (the model card) before the rename."""
    with atomic.replacing_dir(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)


def make_optimizer(model, lr: float, settings: dict):
    import torch

    # BERT's recipe: no weight decay on biases and LayerNorm weights.
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    groups = [{"params": decay, "weight_decay": settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(settings["adam_betas"]), eps=settings["adam_eps"])


def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    """LR factor: 0 -> 1 over warmup_steps, then 1 -> 0 at total_steps."""
    import torch

    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def autocast_dtype(precision: str, device):
    """The autocast dtype, or None for fp32. The CPU always runs fp32 (bf16 autocast is ~18x slower here)."""
    import torch

    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        print("precision bf16: this GPU lacks bf16, using fp16 with loss scaling", flush=True)
        precision = "fp16"
    return torch.bfloat16 if precision == "bf16" else torch.float16


def predict(model, features: list, task, batch_size: int, pad_id: int, device, dtype) -> list:
    """Class ids (or floats for regression), in example order; batches sorted by length to pad little."""
    import torch

    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    out = [None] * len(features)
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for start in range(0, len(order), batch_size):
            ids = order[start:start + batch_size]
            logits = model(**collate(features, ids, pad_id, device)).logits.float()
            values = logits[:, 0].tolist() if task.is_regression else logits.argmax(-1).tolist()
            for i, v in zip(ids, values, strict=True):
                out[i] = v
    return out


def format_prediction(task, value) -> str:
    if task.is_regression:
        # The GLUE server wants STS-B similarity in [0, 5].
        return f"{min(5.0, max(0.0, value)):.3f}"
    return task.labels[value]


# ---- the trial -------------------------------------------------------------------------------

HPARAMS = ("lr", "batch_size", "epochs", "seed")
SETTINGS = ("max_seq_length", "warmup_proportion", "weight_decay", "adam_betas", "adam_eps", "max_grad_norm",
            "group_by_length", "implementation")


def read_data(task, glue: dict) -> tuple:
    """(train examples, {dev split: examples}, {test split: examples}) of the task, logged."""
    train = readers.read_split(task, task.train_split(), glue)
    devs = {s.name: readers.read_split(task, s, glue) for s in task.dev}
    tests = {s.name: readers.read_split(task, s, glue) for s in task.test}
    print(f"data: train {len(train)}, " + ", ".join(f"{k} {len(v)}" for k, v in {**devs, **tests}.items()), flush=True)
    return train, devs, tests


def check_positions(model, max_len: int, model_dir: Path) -> None:
    """finetune.max_seq_length must fit the model's position embeddings."""
    positions = model.config.max_position_embeddings
    if model.config.model_type.startswith("roberta"):  # RoBERTa-family position ids start after pad_token_id
        positions -= (model.config.pad_token_id or 0) + 1
    if max_len > positions:
        raise BadInput(f"finetune.max_seq_length={max_len} exceeds the {positions} positions of the model "
                       f"in {model_dir} (config.json max_position_embeddings)")


def fit(model, features: list, labels, hp: dict, settings: dict, pad_id: int, device, dtype, start: float) -> tuple:
    """Train for hp["epochs"] epochs of hp["batch_size"] batches; returns (steps, mean loss of the last
    steps, the training's speed: speed_record)."""
    import numpy as np
    import torch

    from workflow_scripts.pretrain import flops

    lr, batch_size, epochs = hp["lr"], hp["batch_size"], hp["epochs"]
    lengths = [len(f["input_ids"]) for f in features]
    steps_per_epoch = math.ceil(len(features) / batch_size)
    total_steps = max(1, math.ceil(epochs * steps_per_epoch))
    warmup_steps = int(settings["warmup_proportion"] * total_steps)
    optimizer = make_optimizer(model, lr, settings)
    scheduler = linear_schedule(optimizer, warmup_steps, total_steps)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    generator = torch.Generator().manual_seed(hp["seed"])
    print(f"train: {total_steps} steps ({steps_per_epoch}/epoch x {epochs:g} epochs), warmup {warmup_steps}, "
          f"device {device.type}, precision {'fp32' if dtype is None else str(dtype).removeprefix('torch.')}",
          flush=True)

    model.train()
    step, losses = 0, []
    shape, model_flops, tokens, t_train = flops.shape_of_hf_config(model.config), 0.0, 0, time.perf_counter()
    every = max(1, total_steps // PRINT_EVERY)
    while step < total_steps:
        for ids in train_batches(lengths, batch_size, generator, settings["group_by_length"]):
            if step >= total_steps:
                break
            batch = collate(features, ids, pad_id, device)
            width = batch["input_ids"].shape[1]       # dynamic padding: each batch its own length
            model_flops += flops.classifier_cost(shape, width, model.config.num_labels).train(len(ids), 0)
            tokens += sum(len(features[i]["input_ids"]) for i in ids)          # non-padding
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = model(**batch, labels=labels[ids].to(device)).loss
            scaler.scale(loss).backward()
            if settings["max_grad_norm"] > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings["max_grad_norm"])
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(loss.item())
            if step == 1 or step % every == 0 or step == total_steps:
                print(f"step {step}/{total_steps} loss {np.mean(losses[-every:]):.4f} "
                      f"lr {scheduler.get_last_lr()[0]:.3g} elapsed {time.time() - start:.1f}s", flush=True)
            if not math.isfinite(losses[-1]):
                raise BadInput(f"training diverged at step {step} (loss {losses[-1]}): try a smaller lr than {lr:g}")
    speed = speed_record(time.perf_counter() - t_train, tokens, model_flops, device, dtype)
    print(f"train: {speed['train_seconds']:.1f}s, {speed['tokens_per_s']:.0f} tokens/s, "
          f"{speed['tflops_per_s']:.3g} TFLOP/s" + (f", MFU {100 * speed['mfu']:.1f}%" if speed["mfu"] else ""),
          flush=True)
    return total_steps, float(np.mean(losses[-every:])), speed


def speed_record(seconds: float, tokens: int, model_flops: float, device, dtype) -> dict:
    """A trial's training speed (flops.py's model FLOPs over the device's peak) and its device-hours."""
    import torch

    from workflow_scripts.pretrain import flops

    precision = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
    name = "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"
    peak, source = flops.device_peak(name, precision)
    seconds = max(seconds, 1e-9)
    return {"train_seconds": round(seconds, 3), "tokens_per_s": tokens / seconds,
            "tflops_per_s": model_flops / seconds / 1e12, "mfu": flops.mfu(model_flops / seconds, peak, 1),
            "peak_tflops": peak, "peak_source": source, "device_hours": seconds / 3600}


def run_trial(task_name: str, glue: dict, model_dir: Path, hparams: dict, settings: dict,
              model_out: Path | None = None) -> tuple:
    """Train, evaluate on dev, predict test, keep the model in `model_out` if given.

    Returns (metrics record, prediction rows).
    """
    import numpy as np
    import torch

    start = time.time()
    task = tasks.get_task(task_name)
    hp = dict(zip(HPARAMS, (float(need(hparams, "lr", "--hparams")), int(need(hparams, "batch_size", "--hparams")),
                            float(need(hparams, "epochs", "--hparams")), int(need(hparams, "seed", "--hparams"))), strict=True))
    for key in SETTINGS:
        need(settings, key, "--settings")
    impl = settings["implementation"]
    print(f"config: task={task_name} hparams={json.dumps(hparams, sort_keys=True)} "
          f"settings={json.dumps(settings, sort_keys=True)} glue={json.dumps(glue, sort_keys=True)}", flush=True)
    train, devs, tests = read_data(task, glue)

    # Seed before loading: the new classifier head is initialised in from_pretrained.
    random.seed(hp["seed"])
    np.random.seed(hp["seed"])
    torch.manual_seed(hp["seed"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.fp32_precision = "tf32"     # as pretraining (engine.setup_distributed)
    dtype = autocast_dtype(need(impl, "precision", "--settings implementation"), device)
    eval_bs = need(impl, "eval_batch_size", "--settings implementation")
    tokenizer, model, from_task = load_model(model_dir, task)
    if from_task is not None:
        print(f"init: {model_dir}, fine-tuned on {from_task} (STILTs); new {task.num_labels}-output "
              f"{task_name} classifier head", flush=True)
    else:
        print(f"init: {model_dir} (pre-trained)", flush=True)
    model.to(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    max_len = settings["max_seq_length"]
    check_positions(model, max_len, model_dir)
    labels = torch.tensor([e.label for e in train], dtype=torch.float32 if task.is_regression else torch.long)
    steps, final_loss, speed = fit(model, tokenize(tokenizer, train, max_len), labels, hp, settings, pad_id, device, dtype,
                            start)

    def predictions(examples):
        return predict(model, tokenize(tokenizer, examples, max_len), task, eval_bs, pad_id, device, dtype)

    dev_metrics, score = metrics.task_metrics(task, {name: ([e.label for e in examples], predictions(examples))
                                                     for name, examples in devs.items()})
    print(f"dev: score {score:.2f} " + " ".join(f"{k} {v:.2f}" for k, v in dev_metrics.items()), flush=True)
    rows = [(name, e.index, format_prediction(task, p))
            for name, examples in tests.items() for e, p in zip(examples, predictions(examples), strict=True)]
    record = {"task": task_name, "hparams": hparams, "score": score, "metrics": dev_metrics,
              "dev_examples": sum(len(v) for v in devs.values()), "train_examples": len(train),
              "steps": steps, "final_train_loss": final_loss, "init_model": str(model_dir), "init_task": from_task,
              "seconds": round(time.time() - start, 2), "speed": speed}
    if model_out is not None:   # with its card: the base's facts and this trial's dev scores
        from workflow_scripts.report import model_card

        save_model(model, tokenizer, model_out, lambda tmp: model_card.write_finetuned(tmp, model_dir, record))
        print(f"kept the fine-tuned model in {model_out}", flush=True)
    return record, rows


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=list(tasks.TASKS))
    parser.add_argument("--glue", required=True, help="config `glue:` as JSON")
    parser.add_argument("--model", required=True, type=Path, help="Hugging Face model folder with tokenizer files")
    parser.add_argument("--hparams", required=True, help='JSON: {"lr", "batch_size", "epochs", "seed"}')
    parser.add_argument("--settings", required=True, help="JSON: config `finetune:` minus tasks, grid, seeds")
    parser.add_argument("--metrics-out", required=True, type=Path)
    parser.add_argument("--predictions-out", required=True, type=Path)
    parser.add_argument("--model-out", type=Path, help="also keep the fine-tuned model here (for STILTs from MNLI)")
    parser.add_argument("--cache-dir", help="datasets' cache folder for glue source huggingface (glue.cache_dir)")
    parser.add_argument("--tracking", help="JSON of config tracking + the run's name: the trial as an MLflow/W&B run")
    args = parser.parse_args(argv)
    tracking.ready(args.tracking)
    glue = json_object(args.glue, "--glue")
    if args.cache_dir:
        glue["cache_dir"] = args.cache_dir
    hparams = json_object(args.hparams, "--hparams")
    settings = json_object(args.settings, "--settings")
    record, rows = run_trial(args.task, glue, args.model, hparams, settings, args.model_out)
    tsv = "split\tindex\tprediction\n" + "".join(f"{s}\t{i}\t{p}\n" for s, i, p in rows)
    # Predictions first: a metrics file on disk then always has its predictions beside it.
    atomic.write_text(args.predictions_out, tsv)
    atomic.write_json(args.metrics_out, record, indent=2)
    tracking.log_trial(args.tracking, record, settings, args.metrics_out.parent)
    print(f"wrote {args.metrics_out} and {args.predictions_out} ({len(rows)} test predictions) "
          f"in {record['seconds']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
