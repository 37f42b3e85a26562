# Tables and plots across runs: GLUE dev scores (every trial, the chosen one marked), loss curves.


rule report:
    input:
        logs=expand("results/runs/{run}/pretrain_log.jsonl", run=RUNS),
        best=expand("results/runs/{run}/glue/{task}/best.json", run=RUNS, task=TASKS),
    output:
        table="results/report/glue_dev.md",
        curves="results/report/loss_curves.png",
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/report/report.log",
    benchmark:
        "results/benchmarks/report/report.tsv"
    shell:
        "python -m workflow_scripts.report --pretrain-logs {input.logs} --best {input.best}"
        " --table-out {output.table} --curves-out {output.curves} > {log} 2>&1"
