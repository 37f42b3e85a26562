"""Small real masked-LM shards for the pretraining tests: the real Wikipedia excerpt, the real
bert-base-uncased tokenizer, the academic-budget-bert HDF5 layout. Independent of samples.py on
purpose, so the engine's tests do not move with the sample builder's choices. The `pretrain_shards`
fixture (tests/conftest.py) and benchmarks/{pretrain_throughput,resume_fidelity}.py build with it."""
import bz2
import html
import re
from pathlib import Path

import numpy as np

CLEAN = [(re.compile(r"\{\{[^{}]*\}\}"), " "), (re.compile(r"<ref[^>]*/>|<ref.*?</ref>", re.S), " "),
         (re.compile(r"<[^>]+>"), " "), (re.compile(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]"), r"\1"),
         (re.compile(r"\[https?://\S+ ?([^\]]*)\]"), r"\1"), (re.compile(r"'{2,}|={2,}|\|"), " ")]


def wiki_texts(dump: Path, limit_chars: int) -> list:
    """Article texts with the obvious markup stripped (crude, but real English prose)."""
    xml = html.unescape(bz2.decompress(dump.read_bytes()).decode("utf-8"))
    texts, total = [], 0
    for m in re.finditer(r"<text[^>]*>(.*?)</text>", xml, re.S):
        t = m.group(1)
        for pattern, sub in CLEAN:
            t = pattern.sub(sub, t)
        t = " ".join(t.split())
        if len(t) > 200 and not t.lower().startswith("#redirect"):
            texts.append(t)
            total += len(t)
        if total >= limit_chars:
            break
    return texts


def write_shard(path: Path, rows: dict) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for name, a in rows.items():
            f.create_dataset(name, data=a)


def make_rows(token_stream: np.ndarray, n: int, seq_len: int, max_pred: int, special: dict, vocab: int,
              rng, nsp: bool) -> dict:
    """n rows of [CLS] text [SEP] (every 4th row shorter and padded), 15% masked 80/10/10."""
    L, P = seq_len, max_pred
    out = {"input_ids": np.zeros((n, L), "i4"), "input_mask": np.zeros((n, L), "i1"),
           "segment_ids": np.zeros((n, L), "i1"), "masked_lm_positions": np.zeros((n, P), "i4"),
           "masked_lm_ids": np.zeros((n, P), "i4")}
    start = 0
    for i in range(n):
        length = L - 2 if i % 4 else int(rng.integers(8, L - 2))
        if start + length > len(token_stream):
            start = 0
        body = token_stream[start:start + length]
        start += length
        ids = np.concatenate([[special["cls"]], body, [special["sep"]]])
        out["input_ids"][i, :len(ids)] = ids
        out["input_mask"][i, :len(ids)] = 1
        if nsp:
            out["segment_ids"][i, len(ids) // 2:len(ids)] = 1
        k = min(P, max(1, int(round(0.15 * length))))
        pos = np.sort(rng.choice(np.arange(1, len(ids) - 1), size=k, replace=False))
        out["masked_lm_positions"][i, :k] = pos
        out["masked_lm_ids"][i, :k] = ids[pos]
        r = rng.random(k)
        masked = out["input_ids"][i]
        masked[pos[r < 0.8]] = special["mask"]
        rand = pos[(r >= 0.8) & (r < 0.9)]
        masked[rand] = rng.integers(1000, vocab, size=len(rand))
    if nsp:
        out["next_sentence_labels"] = rng.integers(0, 2, size=n).astype("i1")
    return out


def build_shards(dump: Path, tokenizer_dir: Path, out: Path, *, train_shards=2, rows_per_shard=256, valid_rows=64,
                 seq_len=64, max_pred=10, nsp=False, seed=0) -> dict:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    special = {name: tok.token_to_id(f"[{name.upper()}]") for name in ("cls", "sep", "mask", "pad")}
    need = (train_shards * rows_per_shard + valid_rows) * seq_len
    texts = wiki_texts(dump, limit_chars=need * 6)
    stream = np.concatenate([np.array(e.ids, "i4") for e in tok.encode_batch(texts, add_special_tokens=False)])
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    # Train and valid rows come from different stretches of the text.
    cut = int(len(stream) * 0.85)
    train, valid = [], []
    for k in range(train_shards):
        path = out / f"train_{k}.h5"
        part = stream[k * cut // train_shards:(k + 1) * cut // train_shards]
        write_shard(path, make_rows(part, rows_per_shard, seq_len, max_pred, special, tok.get_vocab_size(), rng, nsp))
        train.append(path)
    path = out / "valid_0.h5"
    write_shard(path, make_rows(stream[cut:], valid_rows, seq_len, max_pred, special, tok.get_vocab_size(), rng, nsp))
    valid.append(path)
    return {"train": train, "valid": valid, "seq_len": seq_len}

