# Raw sources -> cleaned text parts: one sentence per line, a blank line between documents.
# One rule per corpus, since each writes its own number of parts in a single streaming pass;
# then one job finds the exact duplicate documents across all corpora.


rule download_corpus:
    output:
        "resources/corpora/{corpus}/{filename}",
    params:
        url=lambda w: config["corpora"][w.corpus]["path"],
    wildcard_constraints:
        corpus="|".join(config["corpora"]),
        filename=r"[^/]+",
    localrule: True  # on a cluster, the submit host is the one that reaches the internet
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/corpus/download_{corpus}_{filename}.log",
    benchmark:
        "results/benchmarks/corpus/download_{corpus}_{filename}.tsv"
    shell:
        "python -m workflow_scripts.download --url {params.url:q} --out {output} > {log} 2>&1"


for _name, _source in config["corpora"].items():

    rule:
        name:
            f"extract_text_{_name}"
        input:
            corpus_input(_name, _source),
        output:
            parts=[f"results/text/{_name}/part_{i}.txt" for i in range(_source["parts"])],
            hashes=f"results/text/{_name}/doc_hashes.npz",
            stats=f"results/text/{_name}/stats.json",
        params:
            source=json_arg(local_source(_name, _source)),
        threads: 4
        conda:
            "../envs/workflow.yaml"
        log:
            f"logs/corpus/{_name}.log",
        benchmark:
            f"results/benchmarks/corpus/{_name}.tsv"
        shell:
            "python -m workflow_scripts.corpus --source {params.source} --workers {threads} --out {output.parts}"
            " --hashes {output.hashes} --stats {output.stats} > {log} 2>&1"


rule find_duplicate_documents:
    input:
        # Config order: the first copy of a document, in this order, is the one kept.
        expand("results/text/{corpus}/doc_hashes.npz", corpus=list(config["corpora"])),
    output:
        "results/text/duplicates.json",
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/corpus/duplicates.log",
    benchmark:
        "results/benchmarks/corpus/duplicates.tsv"
    shell:
        "python -m workflow_scripts.dedup --hashes {input} --out {output} > {log} 2>&1"
