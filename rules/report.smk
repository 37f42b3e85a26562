# Tables and plots across runs: GLUE dev scores (every trial, the chosen one marked), loss curves and
# each stage's job seconds; and, as soon as the samples exist, the data report: what each corpus and
# shard kept and dropped. `snakemake --report report.html` gathers the files flagged report() below.


rule report_data:
    input:
        corpus_stats=expand("results/text/{corpus}/stats.json", corpus=list(config["corpora"])),
        duplicates=expand("results/text/{corpus}/duplicates.json", corpus=list(config["corpora"])),
        sample_stats=all_sample_stats(),
    output:
        data=report(
            "results/report/data.md",
            caption="../report/data.rst",
            category="Data",
            subcategory="all runs",
        ),
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/report/data.log",
    benchmark:
        "results/benchmarks/report/data.tsv"
    shell:
        "python -m workflow_scripts.report.make_report --data-out {output.data:q}"
        " --corpus-stats {input.corpus_stats:q} --duplicates {input.duplicates:q}"
        " --sample-stats {input.sample_stats:q} > {log:q} 2>&1"


rule report:
    input:
        logs=expand("results/runs/{run}/pretrain_log.jsonl", run=RUNS),
        best=expand("results/runs/{run}/glue/{task}/best.json", run=RUNS, task=TASKS),
    output:
        table=report(
            "results/report/glue_dev.md",
            caption="../report/glue_dev.rst",
            category="GLUE",
            subcategory="all runs",
        ),
        tsv=report(
            "results/report/glue_dev.tsv",
            caption="../report/glue_dev_tsv.rst",
            category="GLUE",
            subcategory="all runs",
        ),
        curves=report(
            "results/report/loss_curves.png",
            caption="../report/loss_curves.rst",
            category="Pretraining",
            subcategory="all runs",
        ),
        run_curves=run_curves_reported(),
        timings=report(
            "results/report/timings.md",
            caption="../report/timings.rst",
            category="Timings",
            subcategory="all runs",
        ),
        glue_vs_cost=report(
            "results/report/glue_vs_device_hours.png",
            caption="../report/glue_vs_cost.rst",
            category="GLUE",
            subcategory="all runs",
        ),
    params:
        price=lambda w: shell_flag("--cost-per-device-hour", config["cost_per_device_hour"]),
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/report/report.log",
    benchmark:
        "results/benchmarks/report/report.tsv"
    shell:
        # Benchmark files are written after their job's outputs, so they can't be inputs: the
        # timings read what the folder holds.
        "python -m workflow_scripts.report.make_report --pretrain-logs {input.logs:q} --best {input.best:q}"
        " --table-out {output.table:q} --tsv-out {output.tsv:q} --curves-out {output.curves:q}"
        " --run-curves-out {output.run_curves:q} --timings-out {output.timings:q}"
        " --benchmarks results/benchmarks --glue-vs-cost-out {output.glue_vs_cost:q} {params.price} > {log:q} 2>&1"
