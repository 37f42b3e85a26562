# Best trials' test predictions -> the 11 TSVs the GLUE server expects, validated, zipped.


rule make_submission:
    input:
        expand("results/runs/{{run}}/glue/{task}/best_predictions.tsv", task=GLUE_TASKS),
    output:
        folder=directory("results/runs/{run}/submission"),
        zip="results/runs/{run}/submission.zip",
    log:
        "logs/submission/{run}.log",
    shell:
        "python -m workflow_scripts.submission --predictions {input}"
        " --out-dir {output.folder} --zip {output.zip} > {log} 2>&1"


rule copy_submission:
    # The top-level target users ask for: the first run's submission.
    input:
        f"results/runs/{RUNS[0]}/submission.zip",
    output:
        "submission.zip",
    log:
        "logs/submission/top_level.log",
    shell:
        "cp {input} {output} 2> {log}"
