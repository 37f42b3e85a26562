# One GLUE fine-tuning trial per job (task x lr x batch x epochs x seed); then pick the best.


def finetune_settings():
    """What every trial shares: the fine-tuning section minus the search space itself."""
    return {k: v for k, v in config["finetune"].items() if k not in ("tasks", "grid", "seeds")}


rule finetune_trial:
    input:
        model="results/runs/{run}/model",
    output:
        metrics="results/runs/{run}/glue/{task}/{trial}/dev_metrics.json",
        predictions="results/runs/{run}/glue/{task}/{trial}/test_predictions.tsv",
    params:
        glue=json_arg(config["glue"]),
        hparams=lambda w: json_arg(grid.parse_trial(w.trial)),
        settings=json_arg(finetune_settings()),
    threads: 1
    resources:
        gpu=1,  # one GPU per trial where there are GPUs; a CPU-only machine runs it on the CPU
    log:
        "logs/finetune/{run}/{task}/{trial}.log",
    benchmark:
        "results/benchmarks/finetune/{run}/{task}/{trial}.tsv"
    shell:
        "python -m workflow_scripts.finetune --task {wildcards.task} --glue {params.glue}"
        " --model {input.model} --hparams {params.hparams} --settings {params.settings}"
        " --metrics-out {output.metrics} --predictions-out {output.predictions} > {log} 2>&1"


rule select_trial:
    input:
        metrics=lambda w: trial_files(w.run, w.task, "dev_metrics.json"),
        predictions=lambda w: trial_files(w.run, w.task, "test_predictions.tsv"),
    output:
        best="results/runs/{run}/glue/{task}/best.json",
        predictions="results/runs/{run}/glue/{task}/best_predictions.tsv",
    log:
        "logs/finetune/{run}/{task}/select.log",
    shell:
        "python -m workflow_scripts.select_trial --task {wildcards.task} --metrics {input.metrics}"
        " --best-out {output.best} --predictions-out {output.predictions} > {log} 2>&1"
