"""The report: a GLUE dev table across runs (every trial, the chosen one marked) and a loss/LR curves PNG."""
import json
import re

import pytest

from workflow_scripts.glue import grid, select_trial
from workflow_scripts.report import make_report


def write_log(path, minutes, start_loss):
    events = [{"event": "config", "model": {"hidden_size": 128}}]
    for k in range(1, minutes * 2 + 1):
        events.append({"event": "train", "step": 10 * k, "elapsed_s": 30.0 * k, "loss": start_loss / k ** 0.3,
                       "lr": 1e-3 * min(1, k / 3), "samples_per_s": 100.0, "tokens_per_s": 12800.0})
        if k % 2 == 0:
            events.append({"event": "valid", "step": 10 * k, "elapsed_s": 30.0 * k + 1, "valid_loss": start_loss / k ** 0.25})
    events.append({"event": "end", "step": 20 * minutes, "elapsed_s": 60.0 * minutes, "reason": "time budget"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def write_best(root, run, task, scores, init_task=None, device_hours=None):
    """Trials as finetune leaves them, then the real selection writes best.json."""
    metrics = []
    for (lr, seed), score in scores.items():
        folder = root / "runs" / run / "glue" / task / grid.trial_name(lr, 16, 2, seed)
        folder.mkdir(parents=True)
        (folder / "dev_metrics.json").write_text(json.dumps(
            {"task": task, "hparams": grid.parse_trial(folder.name), "score": score, "metrics": {"accuracy": score},
             "init_task": init_task, **({"speed": {"device_hours": device_hours}} if device_hours else {})}))
        (folder / "test_predictions.tsv").write_text("split\tindex\tprediction\ntest\t0\t1\n")
        metrics.append(folder / "dev_metrics.json")
    best = root / "runs" / run / "glue" / task / "best.json"
    select_trial.main(["--task", task, "--metrics", *map(str, metrics), "--best-out", str(best),
                       "--predictions-out", str(best.parent / "best_predictions.tsv")])
    return best


def test_report_writes_table_and_png(tmp_path):
    logs = [write_log(tmp_path / "runs/adamw/pretrain_log.jsonl", 3, 10.0),
            write_log(tmp_path / "runs/lamb/pretrain_log.jsonl", 2, 9.0)]
    bests = [write_best(tmp_path, "adamw", "SST-2", {(1e-4, 1): 80.0, (1e-4, 2): 84.0, (3e-5, 1): 70.0}),
             write_best(tmp_path, "adamw", "RTE", {(1e-4, 1): 55.0}),
             write_best(tmp_path, "lamb", "SST-2", {(1e-4, 1): 90.0}),
             write_best(tmp_path, "lamb", "RTE", {(1e-4, 1): 60.0})]
    table, png = tmp_path / "report/glue_dev.md", tmp_path / "report/loss_curves.png"
    tsv, own = tmp_path / "report/glue_dev.tsv", [tmp_path / f"report/runs/{run}.png" for run in ("adamw", "lamb")]
    make_report.main(["--pretrain-logs", *map(str, logs), "--best", *map(str, bests),
                 "--table-out", str(table), "--curves-out", str(png), "--tsv-out", str(tsv),
                 "--run-curves-out", *map(str, own)])
    # The TSV: one row per run and task (GLUE order), the chosen group's score and the chosen trial.
    assert tsv.read_text().splitlines() == [
        "run\ttask\tscore\tchosen_trial\tlr\tbatch_size\tepochs\tinit_task",
        "adamw\tSST-2\t82.00\tlr0.0001_bs16_ep2_seed2\t0.0001\t16\t2\t",
        "adamw\tRTE\t55.00\tlr0.0001_bs16_ep2_seed1\t0.0001\t16\t2\t",
        "lamb\tSST-2\t90.00\tlr0.0001_bs16_ep2_seed1\t0.0001\t16\t2\t",
        "lamb\tRTE\t60.00\tlr0.0001_bs16_ep2_seed1\t0.0001\t16\t2\t"]
    # Each run's own curves differ from the other's and from the all-runs plot.
    assert len({png.read_bytes(), *(p.read_bytes() for p in own)}) == 3
    with pytest.raises(SystemExit, match=r"--run-curves-out names 1 files for 2 --pretrain-logs"):
        make_report.main(["--pretrain-logs", *map(str, logs), "--run-curves-out", str(own[0])])
    md = table.read_text()
    lines = md.splitlines()
    assert "| run | SST-2 | RTE | GLUE avg |" in lines  # tasks in GLUE order, the average last
    assert "| adamw | 82.00 | 55.00 | 68.50 |" in lines  # SST-2: the lr 1e-4 group's mean over seeds
    assert "| lamb | 90.00 | 60.00 | 75.00 |" in lines
    assert "| adamw | 60 | 3.0 |" in md and "time budget" in md
    sst2 = md.split("## SST-2")[1].split("## RTE")[0]
    assert sst2.count("**chosen**") == 2  # one per run
    chosen_row = next(line for line in sst2.splitlines() if "**chosen**" in line and "adamw" in line)
    assert "lr0.0001_bs16_ep2_seed2" in chosen_row
    assert sst2.count("| adamw |") == 3

    import matplotlib.image

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[0] > 300 and image.shape[1] > 2 * image.shape[0] * 0.8  # two panels side by side
    assert image[..., :3].std() > 0.05  # something was drawn


def test_bad_log_line_is_named(tmp_path):
    log = write_log(tmp_path / "runs/demo/pretrain_log.jsonl", 1, 5.0)
    log.write_text(log.read_text() + '{"event": "train", "step": 99, "elapsed\n')
    n = len(log.read_text().splitlines())
    with pytest.raises(SystemExit, match=rf"pretrain_log.jsonl, line {n}: not valid JSON"):
        make_report.main(["--pretrain-logs", str(log), "--table-out", str(tmp_path / "t.md"),
                     "--curves-out", str(tmp_path / "c.png")])
    assert not (tmp_path / "t.md").exists()


def test_two_runs_over_all_nine_tasks(tmp_path):
    """An optimizer study: both runs in the summary, each task's chosen score (mean over seeds) and the GLUE average."""
    scores = {"adamw": dict(zip(["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"],
                                [40.0, 88.0, 85.0, 84.0, 86.0, 78.0, 86.0, 62.0, 56.0], strict=True)),
              "lamb": dict(zip(["CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI"],
                               [30.0, 86.0, 83.0, 82.0, 85.0, 77.0, 84.0, 58.0, 56.0], strict=True))}
    stilts = {"MRPC", "STS-B", "RTE"}
    bests = []
    for run, by_task in scores.items():
        for task, score in by_task.items():
            # Two seeds of the chosen lr around `score`, and a worse lr with one lucky seed.
            trials = {(1e-4, 1): score - 1, (1e-4, 2): score + 1, (3e-5, 1): score + 5, (3e-5, 2): score - 20}
            bests.append(write_best(tmp_path, run, task, trials, "MNLI" if task in stilts and run == "adamw" else None))
    logs = [write_log(tmp_path / "runs/adamw/pretrain_log.jsonl", 2, 10.0),
            write_log(tmp_path / "runs/lamb/pretrain_log.jsonl", 2, 9.0)]
    table = tmp_path / "glue_dev.md"
    make_report.main(["--pretrain-logs", *map(str, logs), "--best", *map(str, bests), "--table-out", str(table),
                 "--curves-out", str(tmp_path / "curves.png")])
    lines = table.read_text().splitlines()
    assert "| run | CoLA | SST-2 | MRPC | STS-B | QQP | MNLI | QNLI | RTE | WNLI | GLUE avg |" in lines
    for run, by_task in scores.items():
        avg = sum(by_task.values()) / 9
        row = f"| {run} | " + " | ".join(f"{v:.2f}" for v in by_task.values()) + f" | {avg:.2f} |"
        assert row in lines, (row, lines[:14])
    summary = lines[lines.index("## Summary"):lines.index("## Pretraining")]
    assert [line.split(" | ")[0] for line in summary if line.startswith("| ") and "GLUE avg" not in line] == \
        ["| adamw", "| lamb"]
    stilts_line = next(line for line in summary if line.startswith("Intermediate-task starts"))
    assert "adamw: MRPC from MNLI, STS-B from MNLI, RTE from MNLI." in stilts_line and "lamb" not in stilts_line
    # Every trial is listed per task, one chosen per run.
    rte = "\n".join(lines).split("## RTE")[1].split("## WNLI")[0]
    assert rte.count("**chosen**") == 2 and rte.count("| adamw |") == 4 and rte.count("| lamb |") == 4


# -- the data report: corpora, duplicates, shards, stage timings -------------------------------------

BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


@pytest.fixture(scope="module")
def data_run(wiki_dump, bert_tokenizer_dir, tmp_path_factory):
    """The stats files of a tiny real run: 12 Wikipedia articles in 2 parts plus a text corpus holding a
    document twice, the duplicates between them, one shard per part; and Snakemake benchmark files."""
    from workflow_scripts.data import corpus, dedup, samples

    root = tmp_path_factory.mktemp("data")
    text = root / "results/text"
    mine = root / "mine.txt"
    mine.write_text("The same document, word for word, twice in this file.\n\n"
                    "The same document, word for word, twice in this file.\n\nA different document here.\n")
    sources = {"wiki": ({"type": "wikipedia", "path": str(wiki_dump), "parts": 2, "max_documents": 12}, 2),
               "mine": ({"type": "text", "path": str(mine), "parts": 1}, 1)}
    parts = []
    for name, (source, n) in sources.items():
        outs = [text / name / f"part_{i}.txt" for i in range(n)]
        corpus.main(["--source", json.dumps(source), "--out", *map(str, outs), "--hashes",
                     str(text / name / "doc_hashes.npz"), "--stats", str(text / name / "stats.json")])
        parts += outs
    dedup.main(["--hashes", str(text / "wiki/doc_hashes.npz"), "--out", str(text / "wiki/duplicates.json")])
    dedup.main(["--earlier", str(text / "wiki/doc_hashes.npz"), "--hashes", str(text / "mine/doc_hashes.npz"),
                "--out", str(text / "mine/duplicates.json")])
    spec = {"max_seq_length": 64, "masked_lm_prob": 0.15, "max_predictions_per_seq": 10, "dup_factor": 2,
            "short_seq_prob": 0.1, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.2, "seed": 1,
            "min_chars_per_token": 0.0}
    stats = []
    for part in parts:
        name, i = part.parent.name, part.stem.removeprefix("part_")
        stats.append(root / f"results/samples/stats/{name}/part_{i}.json")
        samples.main(["--spec", json.dumps(spec), "--tokenizer", str(bert_tokenizer_dir), "--text", str(part),
                      "--corpus", name, "--part", i, "--duplicates", str(part.parent / "duplicates.json"),
                      "--train-out", str(root / f"results/samples/train/{name}/part_{i}.h5"),
                      "--valid-out", str(root / f"results/samples/valid/{name}/part_{i}.h5"),
                      "--stats-out", str(stats[-1])])
    bench = root / "results/benchmarks"
    for rel, rows in {"corpus/wiki.tsv": ["3.25\t0:00:03\t120.5"], "corpus/mine.tsv": ["0.75\t0:00:00\t80.0"],
                      "samples/wiki/part_0.tsv": ["2.0\t0:00:02\t300.25"],
                      "samples/wiki/part_1.tsv": ["4.0\t0:00:04\tNA"],
                      "finetune/demo/RTE/lr1e-05_bs16_ep2_seed1.tsv": ["10.0\t0:00:10\t900.0", "12.0\t0:00:12\t950.0"],
                      "finetune/demo/RTE/select.tsv": ["1.0\t0:00:01\t50.0"]}.items():
        (bench / rel).parent.mkdir(parents=True, exist_ok=True)
        (bench / rel).write_text(BENCHMARK_HEADER + "".join(r + "\t1\t1\t1\t0\t0\t50\t1\n" for r in rows))
    (bench / "pretrain").mkdir()
    (bench / "pretrain/demo.tsv").write_text("s\th:m:s\n")  # a job still running: header only
    return root, [text / n / "stats.json" for n in sources], [text / n / "duplicates.json" for n in sources], stats


def data_report(tmp_path, corpus_stats, duplicates, sample_stats, benchmarks) -> str:
    """The data report and then the stage timings, each as its rule writes it (report_data, report)."""
    out, timings = tmp_path / "report/data.md", tmp_path / "report/timings.md"
    make_report.main(["--data-out", str(out), "--corpus-stats", *map(str, corpus_stats),
                      "--duplicates", *map(str, duplicates), "--sample-stats", *map(str, sample_stats)])
    make_report.main(["--benchmarks", str(benchmarks), "--timings-out", str(timings)])
    return out.read_text() + timings.read_text()


def section(md: str, title: str) -> list:
    """The section's non-blank lines (## TITLE, or a report's # TITLE)."""
    return [line for line in md.split(f"# {title}\n", 1)[1].split("\n#", 1)[0].splitlines() if line]


def test_data_report_tables_what_each_stage_kept_and_dropped(data_run, tmp_path, capsys):
    root, corpus_stats, duplicates, sample_stats = data_run
    md = data_report(tmp_path, corpus_stats, duplicates, sample_stats, root / "results/benchmarks")
    wiki, mine = (json.loads(p.read_text()) for p in corpus_stats)
    corpora = section(md, "Corpora")
    header = next(line for line in corpora if line.startswith("| corpus"))
    # one column per drop reason any corpus had (the first 75 pages: articles and redirects)
    assert set(wiki["dropped"]) | set(mine["dropped"]) == {"redirect"} and wiki["dropped"]["redirect"] == 63
    assert header.startswith("| corpus | type | read | dropped: redirect | kept |")
    wiki_row = next(line for line in corpora if line.startswith("| wiki |")).split(" | ")
    assert wiki_row[2] == f"{wiki['documents_read']:,}" and wiki["documents_kept"] == 12
    assert f"| 12 | {wiki['sentences']:,} | {wiki['characters']:,} | max_documents=12 |" in "\n".join(corpora)
    assert f"| mine | text | 3 | 0 | 3 | 3 | {mine['characters']} | – |" in corpora

    dups = section(md, "Exact duplicates")
    assert dups[0].startswith("1 of 15 kept documents are exact copies")
    assert "| mine | 3 | 1 | mine 1 |" in dups and "| wiki | 12 | 0 | – |" in dups

    shards = section(md, "Samples")
    stats = [json.loads(p.read_text()) for p in sample_stats]
    per_shard = shards[next(i for i, line in enumerate(shards) if line.startswith("| shard |")):]
    rows = {line.split(" | ")[0]: line.split(" | ") for line in per_shard if line.startswith("| ") and "shard |" not in line}
    # Named by text part, in config order.
    assert list(rows) == ["| wiki/part_0", "| wiki/part_1", "| mine/part_0", "| **total**"]
    assert rows["| mine/part_0"][1:5] == ["3", "1", "0", "0"]  # the copy is dropped as a duplicate
    for st in stats:
        row = rows[f"| {st['corpus']}/part_{st['part']}"]
        assert row[5] == f"{st['documents']['used']} ({st['documents']['train']} / {st['documents']['valid']})"
        assert row[6] == f"{st['train']['samples']:,}" and row[7] == f"{st['train']['tokens_per_sample']:.1f}"
        assert row[8] == f"{st['train']['masked_fraction']:.4f}" and row[9] == f"{st['train']['padding_fraction']:.4f}"
    # Per corpus: the tokenizer's fit on each, and the one warning: mine's three one-line documents are short.
    assert "| wiki | 2 | 1,972 | 63.9 | 4.92 | 0.00% | 1.4% |" in shards  # seeded by (seed, "wiki", part)
    warnings = [line for line in shards if line.startswith("- ")]
    assert len(warnings) == 1 and warnings[0].startswith("- corpus mine: its train samples hold 15.0 real tokens on "
                                                          "average, under half of max_seq_length 64")
    total = rows["| **total**"]
    assert total[1] == str(sum(st["documents"]["read"] for st in stats)) and total[2] == "1"
    n = sum(st["train"]["samples"] for st in stats)
    assert total[6] == f"{n:,}"
    assert total[7] == f"{sum(st['train']['samples'] * st['train']['tokens_per_sample'] for st in stats) / n:.1f}"

    timings = section(md, "Stage timings")
    assert "| corpus | 2 | 4.0 | 0:00:04 | 3.2 | 120 |" in timings
    assert "| samples | 2 | 6.0 | 0:00:06 | 4.0 | 300 |" in timings  # NA: no RSS for that job
    assert "| finetune | 2 | 12.0 | 0:00:12 | 11.0 | 950 |" in timings  # repeat() rows: their mean
    assert "| **total** | 6 | 22.0 | 0:00:22 | 11.0 |  |" in timings
    assert [line.split(" | ")[0] for line in timings if line.startswith("| ") and "stage |" not in line] == \
        ["| corpus", "| samples", "| finetune", "| **total**"]  # pipeline order
    assert re.search(r"report: skipping .*pretrain/demo\.tsv: not a Snakemake benchmark file", capsys.readouterr().out)


def test_data_report_skips_unreadable_benchmark_files_and_names_bad_stats(data_run, tmp_path, capsys):
    root, corpus_stats, duplicates, sample_stats = data_run
    bench = tmp_path / "benchmarks"
    (bench / "tokenizer").mkdir(parents=True)
    (bench / "tokenizer/tokenizer.tsv").write_text(BENCHMARK_HEADER + "1.5\t0:00:01\t99\t1\t1\t1\t0\t0\t50\t1\n")
    (bench / "tokenizer/half.tsv").write_text("s\th:m:s\n0.")  # cut while written
    md = data_report(tmp_path, corpus_stats, duplicates, sample_stats, bench)
    assert "| tokenizer | 1 | 1.5 | 0:00:02 | 1.5 | 99 |" in section(md, "Stage timings")
    assert "report: skipping " in capsys.readouterr().out
    broken = tmp_path / "part_9.json"
    stats = json.loads(sample_stats[0].read_text())
    del stats["train"]["masked_fraction"]
    broken.write_text(json.dumps(stats))
    with pytest.raises(SystemExit, match=r"part_9\.json: missing key 'train\.masked_fraction'$"):
        data_report(tmp_path / "again", corpus_stats, duplicates, [broken], bench)
    assert not (tmp_path / "again/report/data.md").exists()
    # The single all-corpora file of older versions is named, not half-read.
    old = tmp_path / "duplicates.json"
    old.write_text(json.dumps({"documents": 15, "duplicates": 1, "corpora": {}, "parts": {}}))
    with pytest.raises(SystemExit, match=r"duplicates\.json: missing key 'corpus'$"):
        data_report(tmp_path / "old", corpus_stats, [old], sample_stats, bench)


def test_data_report_names_a_poorly_fitted_corpus_and_empty_parts_once(bert_tokenizer_dir, tmp_path):
    """English + Russian under bert-base-uncased, Russian in 3 parts of which one got no document: the
    report names the Russian corpus's fit once (with its numbers and what to do) and its empty part."""
    from tests.test_samples_languages import SPEC, corpus_part, language_documents
    from workflow_scripts.data import samples

    english = [["An English document about the history of a city, long enough to be judged fairly.",
                f"It has a second sentence, number {i}, about its rivers and bridges."] for i in range(30)]
    parts = [corpus_part(tmp_path / "en", "en", english), corpus_part(tmp_path / "a", "ru", language_documents("ru")),
             corpus_part(tmp_path / "b", "ru", language_documents("ru")), corpus_part(tmp_path / "c", "ru", [])]
    stats = []
    for k, part in enumerate(parts):
        out = tmp_path / f"stats_{k}.json"
        samples.build_shards({**SPEC, "max_seq_length": 32}, bert_tokenizer_dir, part,
                             samples.Part(part.parent.name, k), tmp_path / f"t{k}.h5",
                             tmp_path / f"v{k}.h5", stats_out=out)
        stats.append(json.loads(out.read_text()))
    lines = section(make_report.data_markdown({}, None, stats), "Samples")
    ru = next(line for line in lines if line.startswith("| ru |")).split(" | ")
    assert ru[1] == "3 (1 empty)" and float(ru[4]) < 2.0 and float(ru[6].rstrip("% |")) > 50
    warnings = [line for line in lines if line.startswith("- ")]
    assert len(warnings) == 2, warnings  # the empty part and the fit; English has nothing to say
    assert warnings[0] == ("- corpus ru: 1 of 3 parts gave no samples, their shards are empty and training skips "
                           "them (part_0.txt: no document (corpus ru has fewer documents than parts))")
    assert re.match(r"- the tokenizer fits corpus ru poorly: 1\.\d\d characters per token, 0\.0% \[UNK\], \d\d% of "
                    r"tokens one-character pieces .*tokenizer: \{train: .*multilingual", warnings[1])
    # A corpus whose characters per token are far below the others' is named even when its own rates pass.
    for st in stats[1:3]:
        st["tokenizer_fit"]["spelled_rate"] = 0.0
    warnings = [line for line in section(make_report.data_markdown({}, None, stats), "Samples")
                if line.startswith("- the tokenizer")]
    assert len(warnings) == 1 and re.match(r"- the tokenizer fits corpus ru poorly: 1\.\d\d characters per token, "
                                           r"under 0\.5 x corpus en's \d\.\d\d; train a tokenizer", warnings[0])


def test_run_table_shows_device_hours_mfu_tokens_and_cost_and_the_budget_plot(tmp_path):
    log = tmp_path / "runs/demo/pretrain_log.jsonl"
    events = [{"event": "config", "world_size": 2},
              {"event": "train", "step": 10, "elapsed_s": 100.0, "loss": 5.0, "lr": 1e-3, "mfu": 0.2},
              {"event": "train", "step": 20, "elapsed_s": 400.0, "loss": 4.0, "lr": 1e-3, "mfu": 0.4},
              {"event": "end", "step": 20, "elapsed_s": 400.0, "reason": "budget", "devices": 2,
               "device_hours": 0.25, "samples_seen": 640, "tokens_seen": 81920}]
    log.parent.mkdir(parents=True)
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    best = write_best(tmp_path, "demo", "RTE", {(1e-4, 1): 60.0, (1e-4, 2): 62.0}, device_hours=0.05)
    table, plot = tmp_path / "t.md", tmp_path / "glue_vs_device_hours.png"
    args = ["--pretrain-logs", str(log), "--best", str(best), "--table-out", str(table),
            "--curves-out", str(tmp_path / "c.png"), "--glue-vs-cost-out", str(plot)]
    make_report.main(args + ["--cost-per-device-hour", "2.0"])
    header = next(line for line in table.read_text().splitlines() if line.startswith("| run | steps"))
    assert header == ("| run | steps | minutes | device-hours | MFU | tokens seen | fine-tuning device-hours | cost | "
                      "last train loss | last valid loss | end |")
    # MFU weighted by time: (0.2 x 100 s + 0.4 x 300 s) / 400 s = 35%
    # cost: (0.25 pretraining + 2 trials x 0.05) device-hours x 2.0
    assert "| demo | 20 | 6.7 | 0.2500 | 35.0% | 81,920 | 0.1000 | 0.70 | 4.000 | – | budget |" in table.read_text()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    make_report.main(args)
    assert "| cost |" not in table.read_text()                       # no price set: no cost column
