"""The cross-run report: a GLUE dev table (every trial, the chosen one marked), what each run used, loss/LR curves, data and timings.

    python -m workflow_scripts.report.make_report --pretrain-logs results/runs/*/pretrain_log.jsonl \\
        --best results/runs/*/glue/*/best.json --table-out results/report/glue_dev.md \\
        --tsv-out results/report/glue_dev.tsv --curves-out results/report/loss_curves.png \\
        [--glue-vs-cost-out results/report/glue_vs_device_hours.png] [--cost-per-device-hour 2.5] \\
        --benchmarks results/benchmarks --timings-out results/report/timings.md
    python -m workflow_scripts.report.make_report --data-out results/report/data.md \\
        --corpus-stats results/text/*/stats.json --duplicates results/text/*/duplicates.json \\
        --sample-stats results/samples/stats/*/part_*.json

Each output is written only when its flag is given, so the data report (rule report_data) runs as soon
as the samples exist, before pretraining and GLUE (rule report).

Run names come from the paths (results/runs/<run>/...), corpus names likewise (results/text/<corpus>/).
The PNG has two panels against elapsed wall-clock minutes (the budget ExtremeBERT trains on):
training loss with validation loss points, and the learning rate. The data report tabulates what
each corpus read, dropped (by reason) and kept, the exact duplicates, each shard's filters and
sample statistics; the timings report the seconds each stage's jobs took (Snakemake's benchmark files).
"""
import argparse
import math
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.data import tokenizer_fit
from workflow_scripts.glue import tasks
from workflow_scripts.cli import json_lines, one_line_errors, read_record
from workflow_scripts.errors import BadInput


def run_of_log(path: Path) -> str:
    return path.parent.name  # results/runs/<run>/pretrain_log.jsonl


def run_of_best(path: Path) -> str:
    return path.parents[2].name if len(path.parents) > 2 else path.parent.name  # results/runs/<run>/glue/<task>/best.json


def read_log(path: Path) -> dict:
    """{event name: [records]} from a pretraining JSON-lines log."""
    if not path.is_file():
        raise BadInput(f"{path}: file not found")
    events = {}
    fix = "the pretraining log is damaged: delete it and the run's model folder, and run again (pretraining resumes)"
    for n, record in json_lines(path.read_text(encoding="utf-8").splitlines(), str(path), fix):
        if not isinstance(record, dict) or "event" not in record:
            raise BadInput(f"{path}, line {n}: no \"event\" key: {fix}")
        events.setdefault(record["event"], []).append(record)
    for kind, keys in (("train", ("elapsed_s", "loss", "lr")), ("valid", ("elapsed_s", "valid_loss"))):
        for i, record in enumerate(events.get(kind, [])):
            missing = [k for k in keys if k not in record]
            if missing:
                raise BadInput(f"{path}: {kind} event #{i + 1} lacks {', '.join(missing)}")
    return events


def read_best(path: Path) -> dict:
    """A task's best.json (select_trial's record)."""
    return read_record(path, ("task", "chosen", "score", "trials"))


def fmt(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def table(header: list, rows: list, align: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def usage(events: dict, best_by_task: dict) -> dict:
    """What a run used: training seconds, pretraining device-hours, MFU (the train lines' mean
    weighted by the time each covers), tokens seen, and its fine-tuning trials' device-hours."""
    train, end = events.get("train", []), (events.get("end") or [{}])[-1]
    config = (events.get("config") or [{}])[0]
    seconds = end.get("elapsed_s", train[-1]["elapsed_s"] if train else None)
    hours = end.get("device_hours")
    if hours is None and seconds is not None:      # a log from before device_hours: training time x ranks
        hours = seconds * config.get("world_size", 1) / 3600
    weighted, covered, before = 0.0, 0.0, 0.0
    for line in train:
        dt = line["elapsed_s"] - before
        before = line["elapsed_s"]
        if line.get("mfu") is not None and dt > 0:
            weighted, covered = weighted + line["mfu"] * dt, covered + dt
    trials = [t.get("device_hours") for best in best_by_task.values() for t in best.get("trials", [])]
    return {"seconds": seconds, "device_hours": hours, "mfu": weighted / covered if covered else None,
            "tokens_seen": end.get("tokens_seen"),
            "finetune_device_hours": sum(trials) if trials and None not in trials else None}


def glue_average(best_by_task: dict) -> float | None:
    scores = [b["score"] for b in best_by_task.values()]
    return sum(scores) / len(scores) if scores else None


def markdown(logs: dict, bests: dict, price: float | None = None) -> str:
    """logs: {run: events}; bests: {run: {task: best}}; price: cost_per_device_hour (None: no cost column)."""
    runs = list(dict.fromkeys([*logs, *bests]))
    shown = [t for t in tasks.TASKS if any(t in bests.get(r, {}) for r in runs)]
    out = ["# GLUE dev results", "",
           "Scores are on the dev sets (0-100, as the GLUE leaderboard prints them; a task with two metrics",
           "shows their mean). A task's score is that of its chosen hyperparameters: the group of trials",
           "(lr, batch size, epochs) with the best mean over seeds. The average is over the tasks shown.", ""]
    out += ["## Summary", ""]
    rows = []
    for run in runs:
        scores = [bests.get(run, {}).get(t, {}).get("score") for t in shown]
        present = [s for s in scores if s is not None]
        avg = fmt(sum(present) / len(present)) if present else "–"
        if present and len(present) < len(shown):
            avg += f" ({len(present)} tasks)"
        rows.append([run, *(fmt(s) for s in scores), avg])
    out += table(["run", *shown, "GLUE avg"], rows, ["l"] + ["r"] * (len(shown) + 1)) + [""]
    # STILTs: a task whose chosen trial started from another task's selected model (MNLI).
    stilts = {run: [f"{t} from {bests[run][t]['init_task']}" for t in shown
                    if bests.get(run, {}).get(t, {}).get("init_task")] for run in runs}
    if any(stilts.values()):
        out += ["Intermediate-task starts (STILTs: fine-tuned from the run's selected model of another task, "
                "not from the pre-trained one): " + "; ".join(f"{run}: {', '.join(ts)}" for run, ts in stilts.items() if ts)
                + ".", ""]

    out += ["## Pretraining", "",
            "minutes: training time (startup, validation and checkpoints excluded); device-hours: that x devices; "
            "MFU: model FLOPs (workflow_scripts/pretrain/flops.py) over the devices' peak, the train lines' "
            "time-weighted mean; tokens seen: samples x sequence length; fine-tuning: its trials' device-hours"
            + ("; cost: (pretraining + fine-tuning device-hours) x cost_per_device_hour." if price is not None else "."),
            ""]
    rows = []
    for run, events in logs.items():
        train, valid, end = events.get("train", []), events.get("valid", []), events.get("end", [])
        last = end[-1] if end else (train[-1] if train else {})
        used = usage(events, bests.get(run, {}))
        spent = (used["device_hours"], used["finetune_device_hours"])   # a cost needs both parts known
        rows.append([run, last.get("step", "–"), fmt(last.get("elapsed_s", math.nan) / 60, 1),
                     fmt(used["device_hours"], 4), fmt(100 * used["mfu"], 1) + "%" if used["mfu"] is not None else "–",
                     count(used["tokens_seen"]), fmt(used["finetune_device_hours"], 4),
                     *([fmt(price * sum(spent)) if None not in spent else "–"] if price is not None else []),
                     fmt(train[-1]["loss"], 3) if train else "–", fmt(valid[-1]["valid_loss"], 3) if valid else "–",
                     end[-1].get("reason", "–") if end else "(no end event)"])
    out += table(["run", "steps", "minutes", "device-hours", "MFU", "tokens seen", "fine-tuning device-hours",
                  *(["cost"] if price is not None else []), "last train loss", "last valid loss", "end"], rows,
                 ["l", "r", "r", "r", "r", "r", "r", *(["r"] if price is not None else []), "r", "r", "l"]) + [""]

    for task in shown:
        out += [f"## {task}", ""]
        rows = []
        for run in runs:
            best = bests.get(run, {}).get(task)
            if not best:
                continue
            for trial in best["trials"]:
                hp = trial.get("hparams", {})
                metrics = ", ".join(f"{k} {fmt(v)}" for k, v in trial.get("metrics", {}).items())
                mark = "**chosen**" if trial.get("chosen") else ""
                rows.append([run, trial.get("trial", "?"), f"{hp.get('lr', '?'):g}" if "lr" in hp else "?",
                             hp.get("batch_size", "?"), hp.get("epochs", "?"), hp.get("seed", "?"),
                             fmt(trial.get("score")), metrics, mark])
        out += table(["run", "trial", "lr", "batch", "epochs", "seed", "score", "metrics", ""], rows,
                     ["l", "l", "r", "r", "r", "r", "r", "l", "l"]) + [""]
    return "\n".join(out)


def glue_tsv(bests: dict) -> str:
    """bests: {run: {task: best}} as one row per run and task (the chosen trial), tab-separated for
    spreadsheets and Snakemake's report (which shows a .tsv as a sortable table). Scores as in markdown()."""
    header = ["run", "task", "score", "chosen_trial", "lr", "batch_size", "epochs", "init_task"]
    rows = ["\t".join(header)]
    for run, per_task in bests.items():
        for task in [t for t in tasks.TASKS if t in per_task]:
            best = per_task[task]
            hp = best.get("chosen_hparams", {})
            rows.append("\t".join(str(v) for v in (
                run, task, fmt(best["score"]), best["chosen"], f"{hp['lr']:g}" if "lr" in hp else "",
                hp.get("batch_size", ""), hp.get("epochs", ""), best.get("init_task") or "")))
    return "\n".join(rows)


# ---- the data report: what each stage kept and dropped, and what each stage cost ------------

CORPUS_KEYS = ("documents_read", "documents_kept", "dropped", "sentences", "characters")
SHARD_KEYS = ("corpus", "part", "text", "documents.read", "documents.duplicates_dropped",
              "documents.low_chars_per_token_dropped", "documents.empty_dropped", "documents.used",
              "documents.train", "documents.valid", "train.samples", "train.tokens_per_sample",
              "train.masked_fraction", "train.padding_fraction", "valid.samples")
# Stage folders under results/benchmarks/ in pipeline order; any other folder follows, sorted.
STAGES = ("corpus", "tokenizer", "samples", "pretrain", "finetune", "submission", "report")


def read_benchmarks(folder: Path) -> dict:
    """{stage: {"jobs", "seconds", "longest", "max_rss"}} from the Snakemake benchmark files under
    folder (stage: the first folder below it). Columns s (wall seconds) and max_rss (MB); a job
    benchmarked with repeat() has a row per repeat and counts with their mean. Snakemake writes
    these after a job's outputs, so they are read as found: an unreadable one is skipped with a note."""
    stages = {}
    for path in sorted(Path(folder).rglob("*.tsv")) if Path(folder).is_dir() else []:
        try:
            header, *rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line]
            if any(len(row) != len(header) for row in rows):
                raise ValueError(f"a row without {len(header)} columns")
            seconds = [float(row[header.index("s")]) for row in rows]
            rss = [float(v) for v in (row[header.index("max_rss")] for row in rows if "max_rss" in header)
                   if v.replace(".", "", 1).isdigit()]
            if not seconds:
                raise ValueError("no rows")
        except (ValueError, IndexError, UnicodeDecodeError) as e:
            print(f"report: skipping {path}: not a Snakemake benchmark file ({e})", flush=True)
            continue
        rel = path.relative_to(folder)
        stage = stages.setdefault(rel.parts[0] if len(rel.parts) > 1 else rel.stem,
                                  {"jobs": 0, "seconds": 0.0, "longest": 0.0, "max_rss": None})
        job = sum(seconds) / len(seconds)
        stage["jobs"] += 1
        stage["seconds"] += job
        stage["longest"] = max(stage["longest"], job)
        if rss:
            stage["max_rss"] = max(stage["max_rss"] or 0.0, max(rss))
    order = {name: i for i, name in enumerate(STAGES)}
    return dict(sorted(stages.items(), key=lambda kv: (order.get(kv[0], len(STAGES)), kv[0])))


def hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def count(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "–"


def merge_duplicates(paths: list) -> dict:
    """The corpora's duplicates files (workflow_scripts.data.dedup, one per corpus) as one summary:
    {"documents": N, "duplicates": D, "corpora": {corpus: {"documents", "duplicates", "duplicate_of"}}}."""
    corpora = {}
    for path in paths:
        record = read_record(path, ("corpus", "documents", "duplicates", "duplicate_of"))
        corpora[record["corpus"]] = record
    return {"documents": sum(c["documents"] for c in corpora.values()),
            "duplicates": sum(c["duplicates"] for c in corpora.values()), "corpora": corpora}


def corpus_samples(shards: list) -> dict:
    """{corpus: its shards summed}: parts, the empty ones (with why), train samples and their real tokens,
    the tokenizer fit's characters, tokens, [UNK]s and one-character pieces, and max_seq_length."""
    per = {}
    for st in shards:   # config order
        name = st["corpus"]
        c = per.setdefault(name, {"parts": 0, "empty": [], "samples": 0, "real": 0.0, "tokens": 0, "chars": 0.0,
                                  "unk": 0.0, "spelled": 0.0, "length": st.get("max_seq_length")})
        t, fit = st["train"], st.get("tokenizer_fit") or {}
        c["parts"] += 1
        if t["samples"] == 0 and st["valid"]["samples"] == 0:
            reason = st.get("empty_reason")
            c["empty"].append(Path(st["text"]).name + (f": {reason}" if reason else ""))
        c["samples"] += t["samples"]
        c["real"] += t["samples"] * t["tokens_per_sample"]
        if fit.get("chars_per_token") is not None:
            c["tokens"] += st["tokens"]
            for key, rate in (("chars", "chars_per_token"), ("unk", "unk_rate"), ("spelled", "spelled_rate")):
                c[key] += st["tokens"] * fit[rate]
    return per


def corpus_fit(c: dict) -> dict:
    """A corpus's tokenizer fit, in the form of tokenizer_fit.Fit.record (chars_per_token None without tokens)."""
    n = c["tokens"]
    return {"chars_per_token": c["chars"] / n if n else None, "unk_rate": c["unk"] / max(n, 1),
            "spelled_rate": c["spelled"] / max(n, 1)}


def data_warnings(per: dict) -> list:
    """One line per corpus and problem: empty parts, a poor tokenizer fit (its own rates, or characters per
    token far below the other corpora's), samples under half of max_seq_length on average."""
    lines = []
    fits = {name: corpus_fit(c) for name, c in per.items()}
    below = tokenizer_fit.far_below_others({name: f["chars_per_token"] for name, f in fits.items()})
    for name, c in per.items():
        if c["empty"]:
            lines.append(f"corpus {name}: {len(c['empty'])} of {c['parts']} parts gave no samples, their shards are "
                         f"empty and training skips them ({'; '.join(c['empty'][:3])}"
                         f"{'; ...' if len(c['empty']) > 3 else ''})")
        poor = tokenizer_fit.poor_fit_warning(name, fits[name])
        if poor:
            lines.append(poor)
        elif name in below:
            mine, best, theirs = below[name]
            lines.append(f"the tokenizer fits corpus {name} poorly: {mine:.2f} characters per token, under "
                         f"{tokenizer_fit.FAR_BELOW_OTHERS:g} x corpus {best}'s {theirs:.2f}; {tokenizer_fit.WHAT_TO_DO}")
        if c["samples"] and c["length"]:
            short = tokenizer_fit.short_samples_warning(name, c["real"] / c["samples"], c["length"])
            lines += [short] if short else []
    return lines


def corpus_samples_markdown(shards: list) -> list:
    """The Samples section's per-corpus table (what the tokenizer made of each corpus) and its warnings."""
    per = corpus_samples(shards)
    rows = []
    for name, c in per.items():
        fit = corpus_fit(c)
        rows.append([name, f"{c['parts']:,}" + (f" ({len(c['empty'])} empty)" if c["empty"] else ""),
                     count(c["samples"]), fmt(c["real"] / c["samples"], 1) if c["samples"] else "–",
                     fmt(fit["chars_per_token"]), f"{fit['unk_rate']:.2%}" if c["tokens"] else "–",
                     f"{fit['spelled_rate']:.1%}" if c["tokens"] else "–"])
    out = ["Per corpus: its parts (those left without samples), train samples and their real tokens per sample, "
           "and how well the tokenizer fits its text: characters per token, [UNK] tokens, and one-character "
           "pieces (##x, words spelled letter by letter). English Wikipedia with bert-base-uncased: ~4.8, "
           "~0%, ~2%.", ""]
    out += table(["corpus", "parts", "train samples", "tokens per sample", "chars/token", "[UNK]",
                  "one-character pieces"], rows, ["l", "r", "r", "r", "r", "r", "r"]) + [""]
    warnings = data_warnings(per)
    if warnings:
        out += ["**Warnings**", ""] + [f"- {w}" for w in warnings] + [""]
    return out


def data_markdown(corpora: dict, duplicates: dict | None, shards: list) -> str:
    """corpora: {corpus: stats.json}; duplicates: merge_duplicates() or None; shards: the shards'
    stats JSONs."""
    out = ["# Data", ""]
    if corpora:
        reasons = sorted({r for c in corpora.values() for r in c["dropped"]})
        out += ["## Corpora", "",
                "Documents read from each source, dropped before the text parts (by reason) and kept; "
                "sentences and characters of the kept ones (results/text/CORPUS/stats.json).", ""]
        rows = [[name, c.get("type", "?"), count(c["documents_read"]),
                 *(count(c["dropped"].get(r, 0)) for r in reasons), count(c["documents_kept"]),
                 count(c["sentences"]), count(c["characters"]), c.get("stopped_at") or "–"]
                for name, c in corpora.items()]
        out += table(["corpus", "type", "read", *(f"dropped: {r.replace('_', ' ')}" for r in reasons), "kept",
                      "sentences", "characters", "stopped at"], rows,
                     ["l", "l", "r", *["r"] * len(reasons), "r", "r", "r", "l"]) + [""]
    if duplicates is not None:
        out += ["## Exact duplicates", "",
                f"{count(duplicates['duplicates'])} of {count(duplicates['documents'])} kept documents are exact "
                "copies of an earlier one (config order, then reading order) and are skipped when samples are "
                "built (results/text/CORPUS/duplicates.json).", ""]
        rows = [[name, count(c["documents"]), count(c["duplicates"]),
                 ", ".join(f"{k} {v:,}" for k, v in c.get("duplicate_of", {}).items()) or "–"]
                for name, c in duplicates.get("corpora", {}).items()]
        out += table(["corpus", "documents", "duplicates", "kept copy in"], rows, ["l", "r", "r", "l"]) + [""]
    if shards:
        out += ["## Samples", "", *corpus_samples_markdown(shards),
                "Per shard, in config order (results/samples/stats/CORPUS/part_I.json, named by its text part): "
                "the part's documents, those each filter "
                "dropped, those used (train / valid); the train samples' real tokens per sample ([CLS]/[SEP] "
                "included), the fraction of non-special tokens masked and the fraction of slots that are "
                "padding. The total's fractions are means weighted by samples.", ""]
        rows, total = [], {"read": 0, "dup": 0, "cpt": 0, "empty": 0, "train_docs": 0, "valid_docs": 0,
                           "samples": 0, "valid": 0, "tokens": 0.0, "masked": 0.0, "padding": 0.0}
        for st in shards:
            d, t = st["documents"], st["train"]
            rows.append([f"{st['corpus']}/part_{st['part']}", count(d["read"]), count(d["duplicates_dropped"]), count(d["low_chars_per_token_dropped"]),
                         count(d["empty_dropped"]), f"{d['used']:,} ({d['train']:,} / {d['valid']:,})",
                         count(t["samples"]), fmt(t["tokens_per_sample"], 1), fmt(t["masked_fraction"], 4),
                         fmt(t["padding_fraction"], 4), count(st["valid"]["samples"])])
            for key, value in (("read", d["read"]), ("dup", d["duplicates_dropped"]),
                               ("cpt", d["low_chars_per_token_dropped"]), ("empty", d["empty_dropped"]),
                               ("train_docs", d["train"]), ("valid_docs", d["valid"]),
                               ("samples", t["samples"]), ("valid", st["valid"]["samples"])):
                total[key] += value
            for key in ("tokens", "masked", "padding"):
                total[key] += t["samples"] * t[{"tokens": "tokens_per_sample", "masked": "masked_fraction",
                                                "padding": "padding_fraction"}[key]]
        n = max(total["samples"], 1)
        if len(shards) > 1:
            rows.append(["**total**", count(total["read"]), count(total["dup"]), count(total["cpt"]),
                         count(total["empty"]),
                         f"{total['train_docs'] + total['valid_docs']:,} ({total['train_docs']:,} / "
                         f"{total['valid_docs']:,})", count(total["samples"]), fmt(total["tokens"] / n, 1),
                         fmt(total["masked"] / n, 4), fmt(total["padding"] / n, 4), count(total["valid"])])
        out += table(["shard", "documents", "duplicates dropped", "chars/token dropped",
                      "empty dropped", "used (train / valid)", "train samples", "tokens per sample",
                      "masked fraction", "padding fraction", "valid samples"], rows,
                     ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"]) + [""]
    return "\n".join(out)


def timings_markdown(timings: dict) -> str:
    """timings: read_benchmarks(). Written by the final report, after every stage's jobs."""
    out = ["# Stage timings", ""]
    if timings:
        out += ["Wall-clock seconds of each stage's jobs, summed (jobs that ran side by side each count), from "
                "Snakemake's benchmark files (results/benchmarks/STAGE/...) as found when the report ran: a job "
                "that finished after the report, or ran only in an earlier round, may be missing or still "
                "counted. Peak RSS is the largest job's.", ""]
        rows = [[stage, t["jobs"], fmt(t["seconds"], 1), hms(t["seconds"]), fmt(t["longest"], 1),
                 fmt(t["max_rss"], 0)] for stage, t in timings.items()]
        seconds = sum(t["seconds"] for t in timings.values())
        rows.append(["**total**", sum(t["jobs"] for t in timings.values()), fmt(seconds, 1), hms(seconds),
                     fmt(max(t["longest"] for t in timings.values()), 1), ""])
        out += table(["stage", "jobs", "seconds", "h:m:s", "longest job (s)", "peak RSS (MB)"], rows,
                     ["l", "r", "r", "r", "r", "r"]) + [""]
    else:
        out += ["No benchmark files found.", ""]
    return "\n".join(out)


def curves_png(logs: dict) -> bytes:
    """Two panels against elapsed minutes: train loss (lines) + valid loss (points); learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (run, events) in enumerate(logs.items()):
        color = f"C{k % 10}"
        train, valid = events.get("train", []), events.get("valid", [])
        if train:
            minutes = [r["elapsed_s"] / 60 for r in train]
            ax_loss.plot(minutes, [r["loss"] for r in train], color=color, lw=1.2, label=f"{run} train")
            ax_lr.plot(minutes, [r["lr"] for r in train], color=color, lw=1.2, label=run)
        if valid:
            ax_loss.plot([r["elapsed_s"] / 60 for r in valid], [r["valid_loss"] for r in valid], "o",
                         color=color, ms=5, label=f"{run} valid")
        if not train and not valid:
            print(f"{run}: its pretraining log has no train or valid events; nothing to plot", flush=True)
    ax_loss.set(xlabel="elapsed minutes", ylabel="masked-LM loss", title="Pretraining loss")
    ax_lr.set(xlabel="elapsed minutes", ylabel="learning rate", title="Learning rate")
    for ax in (ax_loss, ax_lr):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    from workflow_scripts.report.cost_plot import figure_png

    return figure_png(fig)


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-logs", nargs="+", type=Path, default=[], help="results/runs/<run>/pretrain_log.jsonl")
    parser.add_argument("--best", nargs="*", type=Path, default=[], help="results/runs/<run>/glue/<task>/best.json")
    parser.add_argument("--table-out", type=Path, help="write the GLUE dev table (markdown) here")
    parser.add_argument("--tsv-out", type=Path, help="write the chosen trials' GLUE dev scores (TSV) here")
    parser.add_argument("--curves-out", type=Path, help="write the loss/LR curves (PNG) here")
    parser.add_argument("--run-curves-out", nargs="*", type=Path, default=[],
                        help="one PNG per --pretrain-logs, in their order: that run's curves alone")
    parser.add_argument("--corpus-stats", nargs="*", type=Path, default=[], help="results/text/<corpus>/stats.json")
    parser.add_argument("--duplicates", nargs="*", type=Path, default=None,
                        help="each corpus's results/text/<corpus>/duplicates.json")
    parser.add_argument("--sample-stats", nargs="*", type=Path, default=[], help="results/samples/stats/<corpus>/part_<i>.json")
    parser.add_argument("--benchmarks", type=Path, help="the folder of Snakemake benchmark files (results/benchmarks)")
    parser.add_argument("--data-out", type=Path, help="write the data report (corpora, duplicates, shards) here")
    parser.add_argument("--timings-out", type=Path, help="write the stage timings (from --benchmarks) here")
    parser.add_argument("--glue-vs-cost-out", type=Path, help="write the GLUE vs device-hours plot (PNG) here")
    parser.add_argument("--cost-per-device-hour", type=float, help="config cost_per_device_hour: adds a cost column")
    args = parser.parse_args(argv)
    if args.run_curves_out and len(args.run_curves_out) != len(args.pretrain_logs):
        raise BadInput(f"--run-curves-out names {len(args.run_curves_out)} files for {len(args.pretrain_logs)} "
                       "--pretrain-logs: give one per log, in the same order")

    logs = {run_of_log(p): read_log(p) for p in args.pretrain_logs}
    bests = {}
    for path in args.best:
        best = read_best(path)
        bests.setdefault(run_of_best(path), {})[best["task"]] = best
    if args.data_out:
        write_data_report(args)
    if args.timings_out:
        timings = read_benchmarks(args.benchmarks) if args.benchmarks else {}
        atomic.write_text(args.timings_out, timings_markdown(timings) + "\n")
        print(f"wrote {args.timings_out} ({sum(t['jobs'] for t in timings.values())} benchmarked jobs)", flush=True)
    if args.table_out:
        atomic.write_text(args.table_out, markdown(logs, bests, args.cost_per_device_hour) + "\n")
    if args.tsv_out:
        atomic.write_text(args.tsv_out, glue_tsv(bests) + "\n")
    if args.curves_out:
        atomic.write_bytes(args.curves_out, curves_png(logs))
    for log, out in zip(args.pretrain_logs, args.run_curves_out, strict=False):  # none, or one per log (checked)
        atomic.write_bytes(out, curves_png({run_of_log(log): logs[run_of_log(log)]}))
    if args.glue_vs_cost_out:
        from workflow_scripts.report import cost_plot

        points = {run: (usage(events, bests.get(run, {}))["device_hours"], glue_average(bests.get(run, {})))
                  for run, events in logs.items()}
        atomic.write_bytes(args.glue_vs_cost_out, cost_plot.png(points))
    print(f"{len(bests)} runs with GLUE results, {len(logs)} pretraining logs", flush=True)


def write_data_report(args):
    corpora = {p.parent.name: read_record(p, CORPUS_KEYS) for p in args.corpus_stats}  # results/text/<corpus>/
    duplicates = merge_duplicates(args.duplicates) if args.duplicates else None
    shards = [read_record(p, SHARD_KEYS) for p in args.sample_stats]
    atomic.write_text(args.data_out, data_markdown(corpora, duplicates, shards) + "\n")
    print(f"wrote {args.data_out} ({len(corpora)} corpora, {len(shards)} shards)", flush=True)

if __name__ == "__main__":
    main()
