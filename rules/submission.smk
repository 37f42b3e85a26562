# Best trials' test predictions -> the 11 TSVs the GLUE server expects, validated, zipped.


rule make_submission:
    input:
        expand("results/runs/{{run}}/glue/{task}/best_predictions.tsv", task=GLUE_TASKS),
    output:
        folder=directory("results/runs/{run}/submission"),
        zip="results/runs/{run}/submission.zip",
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/submission/{run}.log",
    benchmark:
        "results/benchmarks/submission/{run}.tsv"
    shell:
        "python -m workflow_scripts.glue.submission --predictions {input:q}"
        " --out-dir {output.folder:q} --zip {output.zip:q} > {log:q} 2>&1"


rule copy_submission:
    # The top-level target users ask for: the first run's submission.
    input:
        f"results/runs/{RUNS[0]}/submission.zip",
    output:
        "submission.zip",
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/submission/top_level.log",
    benchmark:
        "results/benchmarks/submission/top_level.tsv"
    shell:
        # Copy under a temp name, then rename: a killed copy never looks like a whole zip.
        "cp {input:q} {output:q}.tmp 2> {log:q} && mv {output:q}.tmp {output:q}"
