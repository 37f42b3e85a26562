"""What a config will cost, before anything runs: jobs, wall time, device-hours and peak disk per stage.

    python -m workflow_scripts.plan [--config config/config.yaml] [--results results] [--device H100]

Counts come from the config as the rules do (rules/common.smk). Times, in order of trust:
- pretraining: its training budget (total_training_time, or early_exit_time_marker where sooner;
  a step schedule: max_steps x the step's model FLOPs / (peak x MFU)) plus the start-up,
  validation and export seconds an earlier run of the same name took beyond its training
  (results/benchmarks/pretrain/RUN.tsv minus its log's elapsed_s), else DEFAULT_OVERHEAD_S;
- fine-tuning: an earlier run's trials of the same task (results/benchmarks/finetune/*/TASK/*.tsv,
  mean seconds per epoch) x epochs, else the trial's model FLOPs (flops.py, train examples x
  epochs at max_seq_length / 2 tokens, dynamic padding) / (peak x MFU) + DEFAULT_TRIAL_START_S;
- data stages: input bytes / a rate measured by earlier jobs (their benchmark seconds against
  today's input sizes), else DEFAULT_RATES (measured on the demo here, 2 shared cores).
MFU: the mean of earlier pretraining logs' train lines where found, else ASSUMED_MFU. The peak:
implementation.peak_tflops, else --device's row of flops.GPU_PEAK_TFLOPS for GPU runs, else the
CPU's probe for CPU runs. Peak disk: the shards (their exact row layout x samples estimated from
the text) plus two checkpoints per run (the latest, and the one being written).
"""
import argparse
import glob
import json
import math
import os
from pathlib import Path

from workflow_scripts.cli import one_line_errors
from workflow_scripts.errors import BadInput

REPO = Path(__file__).resolve().parents[1]
# Input bytes per second per job, measured on the demo here (2 cores shared with other jobs): corpus 1.7 MB
# of bz2 XML in 26.7 s; samples 1.36 MB of text in 29 s per part (dup_factor 2).
DEFAULT_RATES = {"corpus": 64e3, "samples": 47e3}
# Measured on the demo here (2 shared cores): its pretraining job took 130.7 s for 73.5 s of training;
# a trial's job took 57-82 s, of which 6-9 s training (the rest: process start, imports, model load,
# dev and test predictions).
DEFAULT_OVERHEAD_S = 60.0       # pretraining start-up + validation + export beyond the training budget
DEFAULT_TRIAL_START_S = 55.0    # a trial's job beyond its training
ASSUMED_MFU = {"gpu": 0.35, "cpu": 0.3}
# Measured on the demo (its Wikipedia excerpt, bert-base-uncased WordPiece, gzip level 1 shards):
BYTES_PER_TOKEN = 4.85          # bytes of text per token
COMPRESSED_TEXT_RATIO = 1.6     # bytes of cleaned text per byte of the bz2 dump
SHARD_COMPRESSION = 0.26        # bytes on disk per byte of a shard row's arrays
# GLUE train examples (Wang et al. 2019, Table 1), for trials whose data is not on disk yet.
GLUE_TRAIN = {"CoLA": 8551, "SST-2": 67349, "MRPC": 3668, "STS-B": 5749, "QQP": 363846, "MNLI": 392702,
              "QNLI": 104743, "RTE": 2490, "WNLI": 635}


def load_config(path: Path) -> dict:
    import yaml

    from workflow_scripts import config_checks

    if not path.is_file():
        raise BadInput(f"--config {path}: file not found")
    config = yaml.safe_load(path.read_text())
    config_checks.validate(config, REPO / "config" / "schema.yaml")
    return config


def input_bytes(source: dict) -> int | None:
    """Bytes of a corpus's local input (file or folder), None where it is a URL, a hub dataset or absent."""
    path = source.get("path")
    if source["type"] == "huggingface" or not path or "://" in path or not os.path.exists(path):
        return None
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, "**", "*"), recursive=True) if os.path.isfile(f))


def benchmark_seconds(path: str) -> float | None:
    """Mean wall seconds (column s) of a Snakemake benchmark file, None if absent or unreadable."""
    try:
        header, *rows = [line.split("\t") for line in Path(path).read_text().splitlines() if line]
        values = [float(r[header.index("s")]) for r in rows]
    except (OSError, ValueError, IndexError):
        return None
    return sum(values) / len(values) if values else None


def text_bytes(config: dict, results: Path) -> dict:
    """{corpus: bytes of its text parts}: the parts where an earlier run wrote them, else the input's
    size (compressed inputs x COMPRESSED_TEXT_RATIO); None where neither is known."""
    sizes = {}
    for name, source in config["corpora"].items():
        parts = [results / "text" / name / f"part_{i}.txt" for i in range(source["parts"])]
        if all(p.is_file() for p in parts):
            sizes[name] = sum(p.stat().st_size for p in parts)
            continue
        raw = input_bytes(source)
        compressed = str(source.get("path", "")).endswith((".bz2", ".gz", ".zst"))
        sizes[name] = None if raw is None else raw * (COMPRESSED_TEXT_RATIO if compressed else 1.0)
    return sizes


def measured_rate(pairs: list, default: float) -> tuple:
    """(bytes per second, basis) from (bytes, benchmark file) pairs of earlier jobs, else the default."""
    rates = [size / s for size, path in pairs if size and (s := benchmark_seconds(path))]
    if rates:
        return sum(rates) / len(rates), f"measured ({len(rates)} earlier jobs)"
    return default, "default rate"


def data_stages(config: dict, results: Path) -> list:
    """corpus (extraction + duplicates, one each per corpus, + a download per URL) and samples (one job per
    text part): jobs, seconds, basis."""
    corpora, bench = config["corpora"], results / "benchmarks"
    raw = {name: input_bytes(source) for name, source in corpora.items()}
    rate, basis = measured_rate([(raw[n], bench / "corpus" / f"{n}.tsv") for n in corpora], DEFAULT_RATES["corpus"])
    known = [b for b in raw.values() if b is not None]
    urls = sum("://" in str(s.get("path", "")) for s in corpora.values())
    corpus = {"stage": "corpus", "jobs": 2 * len(corpora) + urls, "devices": 0,
              "seconds": sum(known) / rate if known else None,
              "basis": basis + ("" if len(known) == len(corpora) else f"; {len(corpora) - len(known)} input(s) of unknown size")}
    text = text_bytes(config, results)
    pairs, k = [], 0
    for name, source in corpora.items():
        for i in range(source["parts"]):
            part = results / "text" / name / f"part_{i}.txt"
            pairs.append((part.stat().st_size if part.is_file() else None, bench / "samples" / name / f"part_{i}.tsv"))
            k += 1
    # Tokenizing once is the wall; the dup_factor masking passes run at numpy speed (ENVIRONMENT notes).
    rate, basis = measured_rate(pairs, DEFAULT_RATES["samples"])
    known = [b for b in text.values() if b is not None]
    samples = {"stage": "samples", "jobs": k, "devices": 0, "seconds": sum(known) / rate if known else None,
               "basis": basis}
    return [corpus, {"stage": "tokenizer", "jobs": 1, "devices": 0, "seconds": None if "train" in config["tokenizer"]
                     else 5.0, "basis": "trained: not estimated" if "train" in config["tokenizer"] else "a copy"},
            samples]


def earlier_mfu(results: Path, run: str) -> float | None:
    """The time-weighted MFU of an earlier pretraining log of this run (the report's), or None."""
    path = results / "runs" / run / "pretrain_log.jsonl"
    if not path.is_file():
        return None
    from workflow_scripts.report import make_report

    return make_report.usage(make_report.read_log(path), {})["mfu"]


def peak_of(impl: dict, device: str | None) -> tuple:
    """(one device's peak TFLOP/s or None, what it is) for a run's or trial's implementation keys."""
    from workflow_scripts.pretrain import flops

    precision = impl.get("precision", "fp32")
    if impl.get("peak_tflops"):
        return impl["peak_tflops"], "implementation.peak_tflops"
    if impl.get("gpus", 1) == 0:
        return flops.device_peak("cpu", "fp32")
    if device:
        peak = flops.gpu_peak_tflops(device, precision)
        return peak, f"--device {device} {precision}" if peak else f"--device {device}: not in flops.GPU_PEAK_TFLOPS"
    return None, "GPU unknown: pass --device or set implementation.peak_tflops"


def run_seconds(config: dict, results: Path, run: str, device: str | None) -> tuple:
    """(seconds of one run's pretraining job or None, basis): its budget (a step schedule: max_steps at
    the MFU, where sooner) plus the start-up, validation and export time."""
    from workflow_scripts.pretrain import flops

    recipe = config["runs"][run]
    impl = recipe["implementation"]
    budget = recipe["total_training_time"] * 3600 if recipe.get("total_training_time") else math.inf
    if recipe.get("early_exit_time_marker"):
        budget = min(budget, recipe["early_exit_time_marker"] * 3600)
    basis = f"{run}: budget {budget / 3600:g} h" if math.isfinite(budget) else f"{run}: no time budget"
    if recipe["schedule"].get("by") == "step" and recipe.get("max_steps"):
        peak, what = peak_of(impl, device)
        if peak is None:
            return None, f"{run}: {recipe['max_steps']} steps, {what}"
        mfu = earlier_mfu(results, run) or ASSUMED_MFU["cpu" if impl["gpus"] == 0 else "gpu"]
        smp = config["samples"]
        cost = flops.pretraining_cost(flops.shape_of_spec(recipe["model"], vocab_size(config)),
                                      smp["max_seq_length"], smp["max_predictions_per_seq"], smp["nsp"])
        # every prediction slot counted: an upper bound (real masks fill ~15% of the tokens)
        step = cost.train(recipe["batch_size"], recipe["batch_size"] * smp["max_predictions_per_seq"])
        steps_s = recipe["max_steps"] * step / (peak * 1e12 * max(impl["gpus"], 1) * mfu)
        budget = min(budget, steps_s)
        basis = f"{run}: min(budget, {recipe['max_steps']} steps at MFU {mfu:.2f}, {what})"
    if not math.isfinite(budget):
        return None, basis + " and no steps to count"
    overhead = earlier_overhead(results, run)
    basis += " + " + ("measured" if overhead is not None else "default") + " start-up/validation/export"
    return budget + (overhead if overhead is not None else DEFAULT_OVERHEAD_S), basis


def pretrain_stage(config: dict, results: Path, device: str | None) -> dict:
    """One job per run; device-hours = seconds x its devices (a CPU run: one)."""
    seconds, hours, notes = 0.0, 0.0, []
    for run, recipe in config["runs"].items():
        run_s, basis = run_seconds(config, results, run, device)
        notes.append(basis)
        if run_s is None:
            seconds = hours = None
        elif seconds is not None:
            seconds += run_s
            hours += run_s * max(recipe["implementation"]["gpus"], 1) / 3600
    return {"stage": "pretrain", "jobs": len(config["runs"]), "seconds": seconds, "device_hours": hours,
            "basis": "; ".join(notes)}


def vocab_size(config: dict) -> int:
    """The tokenizer's vocabulary: a local pretrained folder's vocab.txt, a trained one's vocab_size, else BERT's."""
    spec = config["tokenizer"]
    if "train" in spec:
        return spec["train"]["vocab_size"]
    vocab = Path(spec["pretrained"]) / "vocab.txt"
    return sum(1 for _ in vocab.open()) if vocab.is_file() else 30522


def earlier_overhead(results: Path, run: str) -> float | None:
    """Seconds an earlier pretraining job of this run spent beyond its training time, or None."""
    total = benchmark_seconds(results / "benchmarks" / "pretrain" / f"{run}.tsv")
    path = results / "runs" / run / "pretrain_log.jsonl"
    if total is None or not path.is_file():
        return None
    ends = [json.loads(line) for line in path.read_text().splitlines() if '"end"' in line]
    return max(0.0, total - ends[-1]["elapsed_s"]) if ends else None


def finetune_tasks(config: dict) -> list:
    """The tasks with trials: finetune.tasks, and MNLI where STILTs starts from it."""
    asked = config["finetune"]["tasks"]
    stilts = [t for t in config["finetune"]["stilts"] if t in asked]
    return asked + (["MNLI"] if stilts and "MNLI" not in asked else [])


def trial_seconds(config: dict, results: Path, run: str, task: str, trial: str, device: str | None) -> tuple:
    """(seconds of one trial or None, basis): earlier trials of the task per epoch, else its model FLOPs."""
    from workflow_scripts.glue import grid
    from workflow_scripts.pretrain import flops

    epochs = grid.parse_trial(trial)["epochs"]
    per_epoch = [s / grid.parse_trial(Path(p).stem)["epochs"]
                 for p in glob.glob(str(results / "benchmarks" / "finetune" / "*" / task / "lr*.tsv"))
                 if (s := benchmark_seconds(p)) is not None]
    if per_epoch:
        return epochs * sum(per_epoch) / len(per_epoch), "measured"
    impl = {**config["finetune"]["implementation"], "gpus": config["runs"][run]["implementation"]["gpus"]}
    peak, what = peak_of(impl, device)
    if peak is None:
        return None, what
    shape = flops.shape_of_spec(config["runs"][run]["model"], vocab_size(config))
    examples = count_train_examples(config, task)
    cost = flops.classifier_cost(shape, config["finetune"]["max_seq_length"] // 2, 3)   # dynamic padding: ~half
    mfu = ASSUMED_MFU["cpu" if impl["gpus"] == 0 else "gpu"]
    return DEFAULT_TRIAL_START_S + cost.train(examples * epochs, 0) / (peak * 1e12 * mfu), f"model FLOPs ({what})"


def count_train_examples(config: dict, task: str) -> int:
    """A task's train rows on disk (glue source dir), else GLUE's published count."""
    from workflow_scripts.glue import tasks

    if config["glue"]["source"] == "dir":
        train = Path(config["glue"]["path"]) / tasks.TASKS[task].train_split().path
        if train.is_file():
            return max(0, sum(1 for _ in train.open(encoding="utf-8")) - 1)        # less the header
    return GLUE_TRAIN[task]


def finetune_stage(config: dict, results: Path, device: str | None) -> dict:
    """Every run's trials (one device each) and selections; the selections' seconds are noise."""
    from workflow_scripts.glue import grid

    seconds, jobs, bases = 0.0, 0, set()
    for run in config["runs"]:
        for task in finetune_tasks(config):
            for trial in grid.trials(config["finetune"]["grid"], config["finetune"]["seeds"], task):
                s, basis = trial_seconds(config, results, run, task, trial, device)
                bases.add(basis)
                seconds = None if s is None or seconds is None else seconds + s
                jobs += 1
            jobs += 1                                                   # select_trial
    return {"stage": "finetune", "jobs": jobs, "seconds": seconds,
            "device_hours": None if seconds is None else seconds / 3600, "basis": "; ".join(sorted(bases))}


def parameters(spec: dict, vocab: int) -> int:
    """Weights of a BERT-like model (embeddings, distinct layers, MLM head); ALBERT shares its layers."""
    H, I = spec["hidden_size"], spec["intermediate_size"]
    layers = spec["num_layers"]
    if spec["type"] == "albert":
        layers = (spec.get("num_hidden_groups") or 1) * (spec.get("inner_group_num") or 1)
    if spec["type"] == "modernbert":   # GeGLU (3 matrices), no biases, no position table, vocab padded to 64
        vocab = -(-vocab // 64) * 64
        # norms: embeddings, attention (not layer 0: the embedding norm serves), MLP, final, head
        return vocab * H + layers * (4 * H * H + 3 * H * I + 2 * H) + H * H + 2 * H + vocab
    per_layer = 4 * H * H + 2 * H * I + 9 * H + I          # q, k, v, out, up, down + biases and LayerNorms
    return (vocab + spec["max_position_embeddings"] + 2) * H + layers * per_layer + H * H + vocab


def shard_bytes(config: dict, results: Path) -> tuple:
    """(bytes of all shards or None, basis): the shards on disk, else rows estimated from the text."""
    from workflow_scripts.data import shard_format

    on_disk = list((results / "samples").glob("*/*/part_*.h5"))
    if on_disk:
        return sum(p.stat().st_size for p in on_disk), "shards on disk"
    text = [b for b in text_bytes(config, results).values() if b is not None]
    if not text:
        return None, "input sizes unknown"
    smp = config["samples"]
    widths = {"L": smp["max_seq_length"], "P": smp["max_predictions_per_seq"], None: 1}
    layout = (*shard_format.model_layout(smp["nsp"]), shard_format.PASS, shard_format.DOCUMENT)
    import numpy as np

    row = sum(np.dtype(d.dtype).itemsize * widths[d.width] for d in layout)
    rows = sum(text) / BYTES_PER_TOKEN / (0.9 * smp["max_seq_length"]) * smp["dup_factor"]   # samples ~90% full
    return rows * row * SHARD_COMPRESSION, f"estimated from the text ({BYTES_PER_TOKEN} bytes per token)"


def disk(config: dict, results: Path) -> dict:
    """Peak disk: the shards, and per run its model plus two checkpoints (the latest and one being written):
    fp32 weights and Adam's two moments (+ half-precision weights under fp16/bf16)."""
    shards, basis = shard_bytes(config, results)
    runs = 0
    for recipe in config["runs"].values():
        n = parameters(recipe["model"], vocab_size(config))
        per_param = 12 + (2 if recipe["implementation"]["precision"] != "fp32" else 0)
        runs += 2 * n * per_param + 4 * n
    return {"shards": shards, "runs": runs, "basis": basis}


def plan(config: dict, results: Path, device: str | None) -> dict:
    stages = data_stages(config, results) + [pretrain_stage(config, results, device),
                                             finetune_stage(config, results, device)]
    runs = len(config["runs"])
    from workflow_scripts.glue import tasks

    submissions = runs + 1 if set(tasks.TASKS) <= set(config["finetune"]["tasks"]) else 0   # all GLUE tasks
    stages += [{"stage": "submission", "jobs": submissions, "seconds": 5.0 * submissions, "basis": "zip files"},
               {"stage": "report", "jobs": 2, "seconds": 20.0, "basis": "tables and plots (the data report, the final one)"}]
    return {"stages": stages, "disk": disk(config, results), "price": config.get("cost_per_device_hour")}


def hms(seconds) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def gib(n) -> str:
    return "?" if n is None else f"{n / 2 ** 30:.2f} GiB"


def render(p: dict) -> str:
    """The plan as text: a line per stage, the totals, peak disk, the cost where a price is set."""
    lines = [f"{'stage':<11}{'jobs':>6}  {'job time':>10}  {'device-hours':>12}  basis"]
    for st in p["stages"]:
        hours = st.get("device_hours")
        lines.append(f"{st['stage']:<11}{st['jobs']:>6}  {hms(st['seconds']):>10}  "
                     f"{'–' if hours is None else f'{hours:.4g}':>12}  {st['basis']}")
    known = [st["seconds"] for st in p["stages"] if st["seconds"] is not None]
    device_hours = sum(st.get("device_hours") or 0.0 for st in p["stages"])
    unknown = [st["stage"] for st in p["stages"] if st["seconds"] is None]
    lines.append(f"{'total':<11}{sum(st['jobs'] for st in p['stages']):>6}  {hms(sum(known)):>10}  "
                 f"{device_hours:>12.4g}  jobs one after another" + (f"; not estimated: {', '.join(unknown)}" if unknown else ""))
    d = p["disk"]
    total = None if d["shards"] is None else d["shards"] + d["runs"]
    lines.append(f"peak disk: {gib(total)} (shards {gib(d['shards'])}: {d['basis']}; models + 2 checkpoints per run "
                 f"{gib(d['runs'])})")
    if p["price"] is not None:
        lines.append(f"cost: {device_hours:.4g} device-hours x {p['price']:g} = {device_hours * p['price']:.2f} "
                     "(pretraining and fine-tuning devices; the CPU-only data stages are not priced)")
    return "\n".join(lines)


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--results", type=Path, default=Path("results"), help="earlier runs' results folder")
    parser.add_argument("--device", help="the GPU the runs will get, as flops.GPU_PEAK_TFLOPS names it (H100, A100, ...)")
    args = parser.parse_args(argv)
    print(render(plan(load_config(args.config), args.results, args.device)), flush=True)


if __name__ == "__main__":
    main()
