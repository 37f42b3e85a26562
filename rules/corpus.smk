# Raw sources -> cleaned text parts: one sentence per line, a blank line between documents.
# One rule per corpus, since each writes its own number of parts in a single streaming pass;
# then one job per corpus finds its exact duplicates of itself and of the corpora before it.


rule download_corpus:
    output:
        "resources/corpora/{corpus}/{filename}",
    params:
        url=lambda w: config["corpora"][w.corpus]["path"],
    wildcard_constraints:
        corpus="|".join(config["corpora"]),
        filename=download.FILENAME_PATTERN,  # url_filename's sanitised names only
    localrule: True  # on a cluster, the submit host is the one that reaches the internet
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/corpus/download_{corpus}_{filename}.log",
    benchmark:
        "results/benchmarks/corpus/download_{corpus}_{filename}.tsv"
    shell:
        "python -m workflow_scripts.data.sources.download --url {params.url:q} --out {output:q} > {log:q} 2>&1"


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
            "python -m workflow_scripts.data.corpus --source {params.source} --workers {threads} --out {output.parts:q}"
            " --hashes {output.hashes:q} --stats {output.stats:q} > {log:q} 2>&1"


rule find_duplicate_documents:
    # One job per corpus: the first copy (config order, then reading order) is kept, so a corpus's
    # drop list depends on it and the corpora before it only; an edit to one corpus redoes its own
    # and the later corpora's duplicates (and samples), not the earlier ones'.
    input:
        hashes="results/text/{corpus}/doc_hashes.npz",
        earlier=earlier_hashes,
    output:
        "results/text/{corpus}/duplicates.json",
    params:
        # Which earlier corpus holds a kept copy depends on their order, not only on the set of files.
        order=lambda w: " ".join(earlier_corpora(w.corpus)),
    wildcard_constraints:
        corpus="|".join(config["corpora"]),
    conda:
        "../envs/workflow.yaml"
    log:
        "logs/corpus/{corpus}.duplicates.log",
    benchmark:
        "results/benchmarks/corpus/{corpus}.duplicates.tsv"
    shell:
        "python -m workflow_scripts.data.dedup --earlier {input.earlier:q} --hashes {input.hashes:q} --out {output:q}"
        " > {log:q} 2>&1"
