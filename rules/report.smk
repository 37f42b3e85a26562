# Tables and plots across runs: GLUE dev scores (every trial, the chosen one marked), loss curves,
# and the data report: what each corpus and shard kept and dropped, and each stage's job seconds.


rule report:
    input:
        logs=expand("results/runs/{run}/pretrain_log.jsonl", run=RUNS),
        best=expand("results/runs/{run}/glue/{task}/best.json", run=RUNS, task=TASKS),
        corpus_stats=expand("results/text/{corpus}/stats.json", corpus=list(config["corpora"])),
        duplicates=expand("results/text/{corpus}/duplicates.json", corpus=list(config["corpora"])),
        sample_stats=all_sample_stats(),
    output:
        table="results/report/glue_dev.md",
        curves="results/report/loss_curves.png",
        data="results/report/data.md",
        glue_vs_cost="results/report/glue_vs_device_hours.png",
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
        # report reads what the folder holds.
        "python -m workflow_scripts.report.make_report --pretrain-logs {input.logs:q} --best {input.best:q}"
        " --table-out {output.table:q} --curves-out {output.curves:q}"
        " --data-out {output.data:q} --corpus-stats {input.corpus_stats:q} --duplicates {input.duplicates:q}"
        " --sample-stats {input.sample_stats:q} --benchmarks results/benchmarks"
        " --glue-vs-cost-out {output.glue_vs_cost:q} {params.price} > {log:q} 2>&1"
