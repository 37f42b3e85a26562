# One text part -> one train and one valid HDF5 shard of masked-LM samples, and their stats.


rule make_samples:
    input:
        text=lambda w: TEXT_PARTS[int(w.k)],
        tokenizer="results/tokenizer",
        duplicates=part_duplicates,
    output:
        train="results/samples/train/shard_{k}.h5",
        valid="results/samples/valid/shard_{k}.h5",
        stats="results/samples/stats/shard_{k}.json",
    params:
        spec=json_arg(config["samples"]),
        weight=part_weight,
    threads: 1
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/samples/shard_{k}.log",
    benchmark:
        "results/benchmarks/samples/shard_{k}.tsv"
    shell:
        # The Rust tokenizer would take every core; parts run side by side instead.
        "RAYON_NUM_THREADS={threads} python -m workflow_scripts.data.samples --spec {params.spec} --tokenizer {input.tokenizer:q}"
        " --text {input.text:q} --shard-index {wildcards.k:q} --weight {params.weight:q}"
        " --duplicates {input.duplicates:q} --train-out {output.train:q} --valid-out {output.valid:q}"
        " --stats-out {output.stats:q} > {log:q} 2>&1"
