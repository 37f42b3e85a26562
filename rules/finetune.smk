# One GLUE fine-tuning trial per job (task x lr x batch x epochs x seed); then pick the best.
# Under STILTs (finetune.stilts) MNLI's rules keep the models and the chosen tasks start from MNLI's.


rule finetune_trial:
    input:
        model=start_model,
        data=glue_files,
    output:
        metrics="results/runs/{run}/glue/{task}/{trial}/dev_metrics.json",
        predictions="results/runs/{run}/glue/{task}/{trial}/test_predictions.tsv",
    params:
        glue=json_arg(config_effects.glue_tracked(config["glue"])),
        cache=untracked(hub_cache_arg),
        hparams=lambda w: json_arg(grid.parse_trial(w.trial)),
        tracked_settings=json_arg(config_effects.finetune_tracked(config["finetune"])),  # reruns trials when edited
        settings=untracked(finetune_settings),
        keep_model=keep_model_arg,
        tracking=untracked(tracking_arg),
    threads: 1
    resources:
        gpu=1,  # one GPU per trial where there are GPUs; a CPU-only machine runs it on the CPU
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/finetune/{run}/{task}/{trial}.log",
    benchmark:
        "results/benchmarks/finetune/{run}/{task}/{trial}.tsv"
    shell:
        "python -m workflow_scripts.gpu_slots {resources.gpu:q} -- python -m workflow_scripts.glue.finetune --task {wildcards.task:q} --glue {params.glue}"
        " --model {input.model:q} --hparams {params.hparams} --settings {params.settings}"
        " --metrics-out {output.metrics:q} --predictions-out {output.predictions:q} {params.cache} {params.keep_model} {params.tracking}"
        " > {log:q} 2>&1"


rule select_trial:
    input:
        metrics=lambda w: trial_files(w.run, w.task, "dev_metrics.json"),
        predictions=lambda w: trial_files(w.run, w.task, "test_predictions.tsv"),
    output:
        best="results/runs/{run}/glue/{task}/best.json",
        predictions="results/runs/{run}/glue/{task}/best_predictions.tsv",
    params:
        keep_model=keep_model_arg,
        select_by=config["finetune"]["select_by"],
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/finetune/{run}/{task}/select.log",
    benchmark:
        "results/benchmarks/finetune/{run}/{task}/select.tsv"
    shell:
        "python -m workflow_scripts.glue.select_trial --task {wildcards.task:q} --metrics {input.metrics:q}"
        " --best-out {output.best:q} --predictions-out {output.predictions:q} {params.keep_model}"
        " --select-by {params.select_by:q} > {log:q} 2>&1"


if STILTS:

    # MNLI trials keep their model and the selection exports the chosen one: a copy, because an
    # input function can't read best.json (no checkpoints: `-n` plans the whole DAG up front).
    use rule finetune_trial as finetune_mnli_trial with:
        output:
            metrics="results/runs/{run}/glue/{task}/{trial}/dev_metrics.json",
            predictions="results/runs/{run}/glue/{task}/{trial}/test_predictions.tsv",
            model=directory("results/runs/{run}/glue/{task}/{trial}/model"),
        wildcard_constraints:
            task="MNLI",

    use rule select_trial as select_mnli_trial with:
        input:
            metrics=lambda w: trial_files(w.run, w.task, "dev_metrics.json"),
            predictions=lambda w: trial_files(w.run, w.task, "test_predictions.tsv"),
            models=lambda w: trial_files(w.run, w.task, "model"),
        output:
            best="results/runs/{run}/glue/{task}/best.json",
            predictions="results/runs/{run}/glue/{task}/best_predictions.tsv",
            model=directory("results/runs/{run}/glue/{task}/best_model"),
        wildcard_constraints:
            task="MNLI",

    ruleorder: finetune_mnli_trial > finetune_trial
    ruleorder: select_mnli_trial > select_trial
