# A pretrained tokenizer copied into results/, or a WordPiece trained on the text parts.


rule prepare_tokenizer:
    input:
        texts=tokenizer_input(),
    output:
        directory("results/tokenizer"),
    params:
        spec=json_arg(tokenizer_params()),
        texts=TEXT_PARTS if "train" in config["tokenizer"] else [],
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/tokenizer/tokenizer.log",
    benchmark:
        "results/benchmarks/tokenizer/tokenizer.tsv"
    shell:
        "python -m workflow_scripts.data.tokenizer --spec {params.spec} --texts {params.texts:q} --out {output:q} > {log:q} 2>&1"
