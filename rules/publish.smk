# Optional: `snakemake publish` uploads each run's model to the Hugging Face Hub (config publish:).


rule publish_model:
    input:
        model="results/runs/{run}/model",
        best=expand("results/runs/{{run}}/glue/{task}/best.json", task=TASKS),
    output:
        receipt="results/runs/{run}/published.json",
    params:
        repo_id=lambda w: f"{config['publish']['namespace'] or ''}/{w.run}",
        private=str(config["publish"]["private"]).lower(),
    localrule: True  # the submit host is the one that reaches the internet
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/publish/{run}.log",
    benchmark:
        "results/benchmarks/publish/{run}.tsv"
    shell:
        "python -m workflow_scripts.report.publish --model {input.model:q} --repo-id {params.repo_id:q}"
        " --best {input.best:q} --private {params.private:q} --receipt-out {output.receipt:q} > {log:q} 2>&1"
