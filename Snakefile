# ExtremeBERT as a file-based DAG: raw text -> samples -> pretrained BERT -> GLUE submission.zip.
# This file is the table of contents; the logic is in rules/common.smk and workflow_scripts/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenizer.smk"
include: "rules/samples.smk"
include: "rules/pretrain.smk"
include: "rules/finetune.smk"
include: "rules/submission.smk"
include: "rules/report.smk"
include: "rules/publish.smk"


rule all:
    input:
        final_targets(),
    default_target: True


rule samples:
    input:
        all_train_shards(),
        all_valid_shards(),
        "results/report/data.md",


rule models:
    input:
        expand("results/runs/{run}/model", run=RUNS),


rule publish:
    input:
        expand("results/runs/{run}/published.json", run=RUNS),
