# Raw sources -> cleaned text parts: one sentence per line, a blank line between documents.
# One rule per corpus, since each writes its own number of parts in a single streaming pass.


def corpus_input(source):
    return [source["path"]] if source["type"] in ("wikipedia", "text") else []


for _name, _source in config["corpora"].items():

    rule:
        name:
            f"extract_text_{_name}"
        input:
            corpus_input(_source),
        output:
            [f"results/text/{_name}/part_{i}.txt" for i in range(_source["parts"])],
        params:
            source=json_arg(_source),
        threads: 4
        log:
            f"logs/corpus/{_name}.log",
        benchmark:
            f"results/benchmarks/corpus/{_name}.tsv"
        shell:
            "python -m workflow_scripts.corpus --source {params.source} --workers {threads} --out {output} > {log} 2>&1"
