"""Packed samples (samples.packing documents) through the real workflow: the demo text becomes packed
shards whose per-token document ids name the text's documents, and the modern type pretrains 2 steps on
them. Config: tests/configs/packed-modern.yaml."""
import json

import numpy as np
import pytest

from tests.helpers.workflow import copy_repo, planned_jobs, snakemake
from tests.test_samples import originals
from tests.test_samples_packing import runs
from workflow_scripts.data import samples, shard_format

pytestmark = pytest.mark.workflow

CONFIG = ("--configfile", "tests/configs/packed-modern.yaml", "--replace-workflow-config")


@pytest.fixture(scope="module")
def packed_run(tmp_path_factory, repo_root, resources):
    workdir = copy_repo(repo_root, tmp_path_factory.mktemp("packed"), resources)
    jobs = planned_jobs(snakemake(workdir, "-n", "--cores", "2", *CONFIG, "models"))
    assert jobs["make_samples"] == 1 and jobs["pretrain"] == 1 and "finetune_trial" not in jobs, jobs
    snakemake(workdir, "--cores", "2", "--profile", "profiles/local", *CONFIG, "models", timeout=600)
    return workdir


def test_shard_document_ids_name_the_documents_of_the_text(packed_run, bert_tokenizer_dir):
    tokenizer, _ = samples.load_tokenizer(bert_tokenizer_dir)
    documents = list(samples.read_documents(packed_run / "results/text/wiki/part_0.txt"))
    corpus, status = samples.tokenize_documents(tokenizer, documents)
    numbers = np.flatnonzero(status == samples.KEPT)          # the min_chars_per_token filter may drop some
    text = {int(n): corpus.tokens[corpus.sent[corpus.doc[i]]:corpus.sent[corpus.doc[i + 1]]].tobytes()
            for i, n in enumerate(numbers)}
    seen = set()
    for split in ("train", "valid"):
        rows = shard_format.load_shard(packed_run / f"results/samples/{split}/wiki/part_0.h5")
        for doc, tokens in runs(originals(rows), rows[shard_format.TOKEN_DOCUMENTS.name]):
            assert tokens.tobytes() in text[doc], f"a run named {doc} is not a piece of document {doc}"
            seen.add(doc)
    assert seen == set(text)


def test_the_modern_type_pretrains_on_packed_samples(packed_run):
    stats = json.loads((packed_run / "results/samples/stats/wiki/part_0.json").read_text())
    assert stats["train"]["padding_fraction"] < 0.01 and abs(stats["train"]["masked_fraction"] - 0.3) < 0.01
    log = [json.loads(line) for line in (packed_run / "results/runs/modern/pretrain_log.jsonl").open()]
    steps = [e for e in log if "loss" in e and "step" in e]
    assert [e["step"] for e in steps][-1] == 2 and all(np.isfinite(e["loss"]) for e in steps), log
    config = json.loads((packed_run / "results/runs/modern/model/config.json").read_text())
    assert config["model_type"] == "modernbert"
