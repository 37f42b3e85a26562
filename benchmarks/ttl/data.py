"""time_to_loss's data: one cleaned text (our corpus stage's parts), held-out documents for the eval
rows, our samples stage's shards for our side, run_mlm.py's grouped 128-token blocks for the peer.

The corpus stage writes `parts` text parts of the real Wikipedia excerpt; part 0 is held out from
both trainings (its documents become the eval rows), parts 1.. are the training text of both sides.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DUMP = REPO / "resources" / "enwiki-excerpt.xml.bz2"
TOKENIZER = REPO / "resources" / "bert-base-uncased"
SEQ_LEN = 128
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAYON_NUM_THREADS": "1",
              "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def filled_config(parts: int, samples: dict, runs: dict) -> dict:
    """The shipped default config (config/config.yaml) on the excerpt with `parts` parts, samples
    overrides and these runs (none: its own), validated with the schema's defaults filled in (as the workflow parses it)."""
    import yaml

    from workflow_scripts import config_checks

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["wiki"].update(path=str(DUMP), parts=parts)
    config["samples"].update(samples)
    config["runs"] = runs or config["runs"]
    config_checks.validate(config, REPO / "config" / "schema.yaml")
    return config


def run_module(module: str, *args, log: Path) -> None:
    """One of our stage CLIs, as its rule runs it (one thread), its output in `log`."""
    import os

    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=REPO, stdout=f,
                              stderr=subprocess.STDOUT, env={**os.environ, **ONE_THREAD})
    if proc.returncode:
        raise SystemExit(f"{module} failed (exit {proc.returncode}): see {log}")


def text_parts(config: dict, out: Path) -> list:
    """Our corpus stage (extract + dedup) on the excerpt: the cleaned text parts, and the duplicates file."""
    out.mkdir(parents=True, exist_ok=True)
    source = {k: v for k, v in config["corpora"]["wiki"].items() if k != "weight"}
    parts = [out / f"part_{i}.txt" for i in range(source["parts"])]
    if not all(p.exists() for p in parts):
        run_module("workflow_scripts.data.corpus", "--source", json.dumps(source), "--out", *parts,
                   "--hashes", out / "doc_hashes.npz", "--stats", out / "stats.json", log=out / "corpus.log")
    if not (out / "duplicates.json").exists():
        run_module("workflow_scripts.data.dedup", "--hashes", out / "doc_hashes.npz", "--out",
                   out / "duplicates.json", log=out / "dedup.log")
    return parts


def our_shards(samples: dict, train_parts: list, duplicates: Path, out: Path) -> dict:
    """Our samples stage on each training part (shard k from part k), as make_samples runs it."""
    out.mkdir(parents=True, exist_ok=True)
    shards = {"train": [], "valid": []}
    for part in train_parts:
        k = int(part.stem.split("_")[1])
        train, valid = out / f"train_{k}.h5", out / f"valid_{k}.h5"
        if not (train.exists() and valid.exists()):
            run_module("workflow_scripts.data.samples", "--spec", json.dumps(samples), "--tokenizer", TOKENIZER,
                       "--text", part, "--corpus", "wiki", "--part", k, "--duplicates", duplicates, "--train-out", train,
                       "--valid-out", valid, log=out / f"samples_{k}.log")
        shards["train"].append(train)
        shards["valid"].append(valid)
    return shards


def documents(part: Path) -> list:
    """The part's documents, each its sentences joined by spaces."""
    from workflow_scripts.data.samples import read_documents

    return [" ".join(doc) for doc in read_documents(part)]


def eval_rows(part: Path, max_rows: int, mlm_probability: float = 0.15, seed: int = 0) -> dict:
    """The held-out masked rows, masked once: [CLS] + 126 consecutive tokens of one document + [SEP]
    (windows inside documents, a document's tail shorter than a window left out), 15% of the 126
    text positions predicted, of those 80% [MASK], 10% a random token, 10% kept; labels -100
    elsewhere (transformers' convention). Full rows: no padding, so no side's padding handling matters."""
    from workflow_scripts.data.samples import load_tokenizer

    tok, _ = load_tokenizer(TOKENIZER)
    cls, sep, mask = (tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    body = SEQ_LEN - 2
    windows = []
    for enc in tok.encode_batch(documents(part), add_special_tokens=False):
        ids = np.asarray(enc.ids, "i8")
        windows += [ids[s:s + body] for s in range(0, len(ids) - body + 1, body)]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(windows), size=min(max_rows, len(windows)), replace=False))
    input_ids = np.stack([np.concatenate([[cls], windows[i], [sep]]) for i in chosen])
    labels = np.full_like(input_ids, -100)
    k = round(mlm_probability * body)
    for row in range(len(input_ids)):
        pos = 1 + rng.choice(body, size=k, replace=False)
        labels[row, pos] = input_ids[row, pos]
        r = rng.random(k)
        input_ids[row, pos[r < 0.8]] = mask
        rand = pos[(r >= 0.8) & (r < 0.9)]
        input_ids[row, rand] = rng.integers(999, tok.get_vocab_size(), size=len(rand))  # past [unused*]
    return {"input_ids": input_ids, "labels": labels}


def peer_blocks(train_parts: list) -> np.ndarray:
    """run_mlm.py's training data: every line tokenized with [CLS]/[SEP] by the fast tokenizer,
    concatenated, cut into 128-token blocks (group_texts; the remainder dropped). Blank lines (our
    document separators) are skipped, as its line_by_line mode does."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TOKENIZER))
    lines = [line for part in train_parts for line in part.read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = np.concatenate([np.asarray(x, "i4") for x in tokenizer(lines)["input_ids"]])
    n = len(ids) // SEQ_LEN
    return ids[:n * SEQ_LEN].reshape(n, SEQ_LEN)
