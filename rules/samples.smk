# One text part -> one train and one valid HDF5 shard of masked-LM samples, and their stats.


rule make_samples:
    input:
        text="results/text/{corpus}/part_{part}.txt",
        tokenizer="results/tokenizer",
        duplicates="results/text/{corpus}/duplicates.json",
    output:
        train="results/samples/train/{corpus}/part_{part}.h5",
        valid="results/samples/valid/{corpus}/part_{part}.h5",
        stats="results/samples/stats/{corpus}/part_{part}.json",
    params:
        spec=json_arg(config["samples"]),
        weight=part_weight,
    wildcard_constraints:
        corpus="|".join(config["corpora"]),
    threads: 1
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/samples/{corpus}/part_{part}.log",
    benchmark:
        "results/benchmarks/samples/{corpus}/part_{part}.tsv"
    shell:
        # The Rust tokenizer would take every core; parts run side by side instead.
        "RAYON_NUM_THREADS={threads} python -m workflow_scripts.data.samples --spec {params.spec} --tokenizer {input.tokenizer:q}"
        " --text {input.text:q} --corpus {wildcards.corpus:q} --part {wildcards.part:q} --weight {params.weight:q}"
        " --duplicates {input.duplicates:q} --train-out {output.train:q} --valid-out {output.valid:q}"
        " --stats-out {output.stats:q} > {log:q} 2>&1"
