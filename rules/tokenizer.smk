# A pretrained tokenizer copied into results/, or a WordPiece trained on the text parts.


rule prepare_tokenizer:
    input:
        # Training reads the text; a pretrained tokenizer needs none of it.
        texts=TEXT_PARTS if "train" in config["tokenizer"] else [],
    output:
        directory("results/tokenizer"),
    params:
        spec=json_arg(config["tokenizer"]),
    log:
        "logs/tokenizer/tokenizer.log",
    benchmark:
        "results/benchmarks/tokenizer/tokenizer.tsv"
    shell:
        "python -m workflow_scripts.tokenizer --spec {params.spec} --texts {input.texts} --out {output} > {log} 2>&1"
