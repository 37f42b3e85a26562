# Shards + tokenizer -> a pre-trained model in Hugging Face format, on a fixed time budget.
# Resumable state lives in results/runs/{run}/state/, deliberately not a declared output:
# Snakemake deletes declared outputs of a failed job, and a killed job must resume.


rule pretrain:
    input:
        train=all_train_shards(),
        valid=all_valid_shards(),
        tokenizer="results/tokenizer",
    output:
        model=directory("results/runs/{run}/model"),
        log="results/runs/{run}/pretrain_log.jsonl",
    params:
        # Tracked: an edit that changes the model or where the run stops reruns this rule.
        results=recipe_tracked,
        recipe=untracked(whole_recipe),
        launcher=pretrain_launcher,
        state="results/runs/{run}/state",
        card=untracked(pretrain_card_arg),
        tracking=untracked(tracking_arg),
    threads: all_cores
    resources:
        gpu=lambda w: config["runs"][w.run]["implementation"]["gpus"],
        runtime=pretrain_minutes,
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/pretrain/{run}.log",
    benchmark:
        "results/benchmarks/pretrain/{run}.tsv"
    shell:
        # gpu_slots gives the job GPUs of its own on a workstation (no-op in SLURM or without GPUs).
        "python -m workflow_scripts.gpu_slots {resources.gpu:q} -- {params.launcher} -m workflow_scripts.pretrain.train --recipe {params.recipe}"
        " --train {input.train:q} --valid {input.valid:q} --tokenizer {input.tokenizer:q}"
        " --state-dir {params.state:q} --model-out {output.model:q} --log-out {output.log:q} --card {params.card} {params.tracking}"
        " > {log:q} 2>&1"
