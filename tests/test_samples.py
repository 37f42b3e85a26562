"""Masked-LM sample building on the real Wikipedia excerpt and the real bert-base-uncased tokenizer."""
import json
import os

import h5py
import numpy as np
import pytest

from workflow_scripts.data import samples, shard_format
from workflow_scripts.errors import BadInput

SPEC = {"max_seq_length": 128, "masked_lm_prob": 0.15, "max_predictions_per_seq": 20, "dup_factor": 1,
        "short_seq_prob": 0.1, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.05, "seed": 42,
        "min_chars_per_token": 0.0}
CLS, SEP, MASK, PAD = 101, 102, 103, 0


@pytest.fixture(scope="module")
def text_part(wiki_dump, tmp_path_factory):
    """The excerpt cleaned by our corpus stage: one sentence per line, blank line between documents."""
    from workflow_scripts.data import corpus

    out = tmp_path_factory.mktemp("text") / "part_0.txt"
    corpus.main(["--source", json.dumps({"type": "wikipedia", "path": str(wiki_dump), "parts": 1}), "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def small_part(text_part, tmp_path_factory):
    """The first 25 documents of the part: for tests that need real text but no statistics."""
    out = tmp_path_factory.mktemp("small") / "part_0.txt"
    out.write_text("\n\n".join(text_part.read_text().split("\n\n")[:25]) + "\n")
    return out


@pytest.fixture(scope="module")
def flat_tokens(text_part, bert_tokenizer_dir):
    """Every token of the part, in order, as bytes of int32 (to find a sample's spans in)."""
    tokenizer, _ = samples.load_tokenizer(bert_tokenizer_dir)
    docs = list(samples.read_documents(text_part))
    return samples.tokenize_documents(tokenizer, docs)[0].tokens.tobytes()


WIKI_0 = samples.Part("wiki", 0)


def build(tmp_path, text, tokenizer_dir, name="s", part=WIKI_0, **spec):
    spec = {**SPEC, **spec}
    train, valid = tmp_path / f"{name}_train.h5", tmp_path / f"{name}_valid.h5"
    counts = samples.build_shards(spec, tokenizer_dir, text, part, train, valid,
                                  tokenizer=spec.pop("tokenizer", None), chunk_chars=spec.pop("chunk_chars", None))
    return train, valid, counts


@pytest.fixture(scope="module", params=[False, True], ids=["mlm", "nsp"])
def shard(request, text_part, bert_tokenizer_dir, tmp_path_factory):
    """(spec, train arrays, valid arrays, counts) for one build with or without NSP."""
    tmp = tmp_path_factory.mktemp("shard")
    train, valid, counts = build(tmp, text_part, bert_tokenizer_dir, nsp=request.param)
    spec = {**SPEC, "nsp": request.param}
    return spec, shard_format.load_shard(train, nsp=request.param), shard_format.load_shard(valid), counts


def originals(rows):
    """input_ids with the masked positions restored from masked_lm_ids."""
    ids = rows["input_ids"].copy()
    n = (rows["masked_lm_positions"] > 0).sum(axis=1)
    for i in range(len(ids)):
        ids[i, rows["masked_lm_positions"][i, :n[i]]] = rows["masked_lm_ids"][i, :n[i]]
    return ids


def expected_predictions(rows, nsp):
    real = rows["input_mask"].sum(axis=1).astype(np.int64)
    candidates = real - (3 if nsp else 2)
    return np.minimum(SPEC["max_predictions_per_seq"], np.maximum(1, np.rint(candidates * SPEC["masked_lm_prob"])))


def test_layout_matches_academic_budget_bert(shard):
    spec, train, valid, counts = shard
    names = {"input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids"}
    # academic-budget-bert's datasets, plus our per-row pass and document (issue 10; its loader ignores them)
    row_ids = {"pass_index", "document_index"}
    assert set(train) == names | row_ids | ({"next_sentence_labels"} if spec["nsp"] else set())
    n = len(train["input_ids"])
    assert n == counts.train_samples > 1000
    for name, dtype, shape in [("input_ids", np.int32, (n, 128)), ("input_mask", np.int8, (n, 128)),
                               ("segment_ids", np.int8, (n, 128)), ("masked_lm_positions", np.int32, (n, 20)),
                               ("masked_lm_ids", np.int32, (n, 20))]:
        assert train[name].dtype == dtype and train[name].shape == shape, name
    if spec["nsp"]:
        assert train["next_sentence_labels"].dtype == np.int8 and train["next_sentence_labels"].shape == (n,)
    assert train["pass_index"].dtype == np.int16 and train["document_index"].dtype == np.int32
    assert train["pass_index"].shape == train["document_index"].shape == (n,)
    assert len(valid["input_ids"]) == counts.valid_samples > 0


def test_attrs_record_the_recipe(small_part, bert_tokenizer_dir, tmp_path):
    import hashlib

    train, valid, counts = build(tmp_path, small_part, bert_tokenizer_dir, nsp=True, dup_factor=2,
                                 part=samples.Part("books", 7))
    attrs = shard_format.shard_summary(train)["attrs"]
    assert attrs["tokenizer_sha1"] == hashlib.sha1((bert_tokenizer_dir / "tokenizer.json").read_bytes()).hexdigest()
    assert (attrs["max_seq_length"], attrs["masked_lm_prob"], attrs["dup_factor"], attrs["seed"]) == (128, 0.15, 2, 42)
    assert (attrs["corpus"], attrs["part"], attrs["nsp"], attrs["split"]) == ("books", 7, True, "train")
    assert attrs["num_samples"] == counts.train_samples and attrs["num_documents"] == counts.train_documents
    valid_attrs = shard_format.shard_summary(valid)["attrs"]
    assert (valid_attrs["split"], valid_attrs["dup_factor"]) == ("valid", 1)  # valid documents are masked once


def test_cls_a_sep_b_sep_structure(shard):
    spec, train, _, _ = shard
    ids, mask, seg = originals(train), train["input_mask"], train["segment_ids"]
    length = mask.sum(axis=1)
    # input_mask is ones then zeros; padding is [PAD] with segment 0.
    assert (mask == (np.arange(128) < length[:, None])).all()
    assert (ids[mask == 0] == PAD).all() and (seg[mask == 0] == 0).all()
    assert (ids[:, 0] == CLS).all() and (ids[np.arange(len(ids)), length - 1] == SEP).all()
    assert ((ids == CLS).sum(axis=1) == 1).all()
    seps = (ids == SEP).sum(axis=1)
    if not spec["nsp"]:
        assert (seps == 1).all() and (seg == 0).all()
        return
    assert (seps == 2).all()
    first_sep = np.argmax(ids == SEP, axis=1)
    pos = np.arange(128)
    # Segment 0 through the first [SEP], segment 1 for B and the final [SEP].
    assert (seg == ((pos > first_sep[:, None]) & (pos < length[:, None]))).all()
    assert (first_sep >= 2).all() and (length - first_sep >= 3).all()  # A and B are never empty


def test_samples_are_real_text_spans_and_labels_are_the_originals(shard, flat_tokens):
    """Restoring masked_lm_ids at their positions gives spans of the tokenized text (A and B each)."""
    spec, train, _, _ = shard
    ids = originals(train)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(ids), size=150, replace=False):
        real = ids[i, :train["input_mask"][i].sum()]
        for part in np.split(real, np.flatnonzero(real == SEP)):
            part = part[(part != CLS) & (part != SEP)]
            if len(part):
                hit = flat_tokens.find(part.astype(np.int32).tobytes())
                while hit >= 0 and hit % 4:  # only int32-aligned matches count (-1: none at all)
                    hit = flat_tokens.find(part.astype(np.int32).tobytes(), hit + 1)
                assert hit >= 0, f"row {i}: span not found in the text"


def test_positions_sorted_within_real_tokens_never_special(shard):
    spec, train, _, _ = shard
    ids, pos = originals(train), train["masked_lm_positions"]
    k = expected_predictions(train, spec["nsp"])
    n = (pos > 0).sum(axis=1)
    assert (n == k).all()
    rows = np.arange(len(pos))[:, None]
    real = np.arange(20)[None, :] < n[:, None]
    assert (pos[~real] == 0).all() and (train["masked_lm_ids"][~real] == 0).all()
    assert (np.diff(np.where(real, pos, 1000 + np.arange(20)), axis=1) > 0).all()  # strictly increasing
    assert (train["input_mask"][rows, pos][real] == 1).all()
    assert not np.isin(ids[rows, pos][real], [CLS, SEP, PAD]).any()


def test_masking_rates(shard):
    spec, train, _, _ = shard
    pos, labels = train["masked_lm_positions"], train["masked_lm_ids"]
    real = pos > 0
    candidates = train["input_mask"].sum() - len(pos) * (3 if spec["nsp"] else 2)
    assert real.sum() / candidates == pytest.approx(0.15, abs=0.01)
    shown = train["input_ids"][np.arange(len(pos))[:, None], pos][real]
    labels = labels[real]
    masked, kept = (shown == MASK).mean(), (shown == labels).mean()
    assert masked == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01)
    random = shown[(shown != MASK) & (shown != labels)]
    assert len(random) / len(shown) == pytest.approx(0.1, abs=0.01)
    assert not np.isin(random, [CLS, SEP, PAD, MASK, 100]).any()  # never a special token
    assert len(np.unique(random)) > 1000  # drawn across the vocabulary


def test_nsp_labels_about_half(shard):
    spec, train, valid, _ = shard
    if not spec["nsp"]:
        assert "next_sentence_labels" not in train
        return
    # 50% random next, plus every one-sentence segment (as in the reference): a little over half.
    assert 0.48 < train["next_sentence_labels"].mean() < 0.62
    assert set(np.unique(train["next_sentence_labels"])) == {0, 1}


def test_most_samples_are_full(shard):
    """Packing fills sequences; only short_seq_prob documents and document ends leave padding."""
    _, train, _, _ = shard
    # Wide bounds: a long article that draws a short target (per document, as the reference) moves these a lot.
    assert 0.03 < 1 - train["input_mask"].mean() < 0.3
    assert (train["input_mask"].sum(axis=1) >= 126).mean() > 0.5


def test_deterministic_and_seeded_by_corpus_name_and_part(small_part, bert_tokenizer_dir, tmp_path):
    a = build(tmp_path, small_part, bert_tokenizer_dir, "a", nsp=True, dup_factor=2, whole_word_masking=True)
    b = build(tmp_path, small_part, bert_tokenizer_dir, "b", nsp=True, dup_factor=2, whole_word_masking=True)
    assert a[0].read_bytes() == b[0].read_bytes() and a[1].read_bytes() == b[1].read_bytes()
    for name, part in (("c", samples.Part("wiki", 1)), ("d", samples.Part("books", 0))):
        c = build(tmp_path, small_part, bert_tokenizer_dir, name, part=part, nsp=True, dup_factor=2,
                  whole_word_masking=True)
        with h5py.File(a[0]) as fa, h5py.File(c[0]) as fc:
            assert fa["input_ids"].shape[1] == fc["input_ids"].shape[1]
            n = min(len(fa["input_ids"]), len(fc["input_ids"]))
            assert not np.array_equal(fa["input_ids"][:n], fc["input_ids"][:n])


def test_a_part_seed_depends_on_its_corpus_name_and_number_only():
    # The name's key is SHA-256, not hash(): the same in every process, whatever other corpora exist.
    assert samples.part_seed(42, samples.Part("wiki", 1)) == [42, 0x12A435EC8454C6D1, 1]
    seeds = {tuple(samples.part_seed(42, samples.Part(c, i))) for c in ("wiki", "books", "wiki2") for i in range(3)}
    assert len(seeds) == 9
    assert samples.part_seed(-1, samples.Part("wiki", 0))[0] == (1 << 64) - 1  # SeedSequence takes no negatives


class CountingTokenizer:
    """The real Rust tokenizer, counting the sentences it is asked to encode."""

    def __init__(self, tokenizer):
        self.tokenizer, self.sentences, self.calls = tokenizer, 0, 0

    def encode_batch_fast(self, batch, **kwargs):
        self.calls += 1
        self.sentences += len(batch)
        return self.tokenizer.encode_batch_fast(batch, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_dup_factor_remasks_without_retokenizing(small_part, bert_tokenizer_dir, tmp_path):
    lines = sum(1 for line in small_part.open() if line.strip())
    # Without short targets and NSP, packing draws nothing: each pass gives the same segments.
    spec = {"valid_fraction": 0.0, "short_seq_prob": 0.0}
    one = build(tmp_path, small_part, bert_tokenizer_dir, "one", dup_factor=1, **spec)
    counting = CountingTokenizer(samples.load_tokenizer(bert_tokenizer_dir)[0])
    three = build(tmp_path, small_part, bert_tokenizer_dir, "three", dup_factor=3, tokenizer=counting, **spec)
    assert counting.sentences == lines  # every sentence tokenized exactly once
    assert counting.calls == -(-lines // samples.ENCODE_BATCH)  # in full batches, not once per pass
    assert three[2].train_samples == 3 * one[2].train_samples
    with h5py.File(three[0]) as f:
        ids = f["input_ids"][:]
    # The copies are packed and masked afresh: (almost) no row repeats exactly.
    assert len(np.unique(ids, axis=0)) > 0.99 * len(ids)


def test_valid_split_per_document(text_part, bert_tokenizer_dir, tmp_path):
    _, _, counts = build(tmp_path, text_part, bert_tokenizer_dir, "split", valid_fraction=0.2)
    assert counts.valid_documents == pytest.approx(0.2 * counts.documents, abs=0.1 * counts.documents)
    assert counts.train_documents + counts.valid_documents == counts.documents
    # Masking settings do not move documents across the split.
    _, _, other = build(tmp_path, text_part, bert_tokenizer_dir, "other", valid_fraction=0.2, masked_lm_prob=0.3,
                        nsp=True)
    assert other.valid_documents == counts.valid_documents
    # A tiny fraction still holds out one document, so the valid shard is never empty.
    _, valid, counts = build(tmp_path, text_part, bert_tokenizer_dir, "tiny", valid_fraction=1e-9)
    assert counts.valid_documents == 1 and shard_format.shard_summary(valid)["num_samples"] > 0


def test_single_document_part_has_an_empty_valid_shard(small_part, bert_tokenizer_dir, tmp_path):
    one_doc = tmp_path / "one_doc.txt"
    one_doc.write_text("".join(small_part.open().readlines()[:200]).replace("\n\n", "\n"))
    train, valid, counts = build(tmp_path, one_doc, bert_tokenizer_dir, valid_fraction=0.5)
    assert counts.documents == 1 and counts.train_samples > 0
    summary = shard_format.shard_summary(valid, nsp=False)
    assert summary["num_samples"] == 0 and summary["max_seq_length"] == 128
    assert shard_format.load_shard(valid)["input_ids"].shape == (0, 128)
    # Whatever the draw (valid_fraction near 1 draws valid): the one document trains.
    _, valid, counts = build(tmp_path, one_doc, bert_tokenizer_dir, "high", valid_fraction=0.99)
    assert counts.documents == 1 and counts.valid_documents == 0 and counts.train_samples > 0


def test_small_chunks_give_the_same_documents(small_part, bert_tokenizer_dir, tmp_path):
    """Streaming in many chunks (bounded memory) sees every document and sentence once."""
    _, _, whole = build(tmp_path, small_part, bert_tokenizer_dir, "whole", nsp=True)
    train, _, chunked = build(tmp_path, small_part, bert_tokenizer_dir, "chunked", nsp=True, chunk_chars=50_000)
    for key in ("documents", "sentences", "tokens", "valid_documents"):
        assert getattr(chunked, key) == getattr(whole, key)
    assert 0.8 < chunked.train_samples / whole.train_samples < 1.2
    assert shard_format.load_shard(train)["next_sentence_labels"].mean() > 0.45


def test_whole_word_masking_masks_complete_words(text_part, bert_tokenizer_dir, tmp_path):
    train, _, _ = build(tmp_path, text_part, bert_tokenizer_dir, "wwm", whole_word_masking=True)
    rows = shard_format.load_shard(train)
    tokenizer, _ = samples.load_tokenizer(bert_tokenizer_dir)
    continuation = samples.Vocab(tokenizer, bert_tokenizer_dir).continuation
    ids, pos = originals(rows), rows["masked_lm_positions"]
    chosen = np.zeros(ids.shape, bool)
    chosen[np.arange(len(pos))[:, None], pos] = True
    chosen[:, 0] = False  # position 0 is the padding value of masked_lm_positions
    cont = continuation[ids] & (rows["input_mask"] == 1)
    # A chosen ## piece has its predecessor chosen (or starts the segment: [CLS] before it) ...
    prev_chosen = np.roll(chosen, 1, axis=1) | (np.roll(ids, 1, axis=1) == CLS)
    assert not (chosen & cont & ~prev_chosen).any()
    # ... and a chosen token followed by a ## piece has that piece chosen.
    next_cont = np.roll(cont, -1, axis=1)
    next_chosen = np.roll(chosen, -1, axis=1)
    assert not (chosen & next_cont & ~next_chosen).any()
    words = chosen & ~cont
    assert words.sum() < chosen.sum()  # some words have several pieces
    n = chosen.sum(axis=1)
    assert (n <= expected_predictions(rows, False)).all() and (n >= 1).all()
    assert n.sum() / (rows["input_mask"].sum() - 2 * len(n)) == pytest.approx(0.15, abs=0.015)


def test_truncation_matches_reference_loop():
    """truncate()'s closed form against create_pretraining_data's truncate_seq_pair loop (longer side, B on ties)."""
    cases = [(a, b, m) for a in range(1, 40) for b in range(0, 40) for m in (5, 6, 9, 30)]
    a, b, m = (np.array(x) for x in zip(*cases, strict=True))
    for limit in (5, 6, 9, 30):
        sel = m == limit
        a0, la, b0, lb = samples.truncate(np.zeros(sel.sum(), np.int64), a[sel], np.full(sel.sum(), 1000), b[sel],
                                          limit, np.random.default_rng(0))
        for i, (x, y) in enumerate(zip(a[sel], b[sel], strict=True)):
            while x + y > limit:
                if x > y:
                    x -= 1
                else:
                    y -= 1
            assert (la[i], lb[i]) == (x, y), (a[sel][i], b[sel][i], limit)
        # Cuts come off both ends: the start moves by at most the number of tokens cut.
        assert ((a0 >= 0) & (a0 <= a[sel] - la)).all() and ((b0 >= 1000) & (b0 <= 1000 + b[sel] - lb)).all()
        assert (a0 > 0).any() and (a0 < a[sel] - la).any()


@pytest.mark.parametrize("spec", [
    {"max_seq_length": 8, "nsp": True, "max_predictions_per_seq": 1, "short_seq_prob": 0.5},
    {"max_seq_length": 512, "masked_lm_prob": 0.5, "max_predictions_per_seq": 80, "whole_word_masking": True},
], ids=["tiny-nsp", "long-wwm"])
def test_extreme_settings_keep_the_invariants(spec, small_part, bert_tokenizer_dir, tmp_path):
    train, _, _ = build(tmp_path, small_part, bert_tokenizer_dir, **spec)
    length, p = spec["max_seq_length"], spec["max_predictions_per_seq"]
    rows = shard_format.load_shard(train, max_seq_length=length, max_predictions=p, nsp=spec.get("nsp", False))
    ids, pos = originals(rows), rows["masked_lm_positions"]
    real = rows["input_mask"].sum(axis=1)
    n = (pos > 0).sum(axis=1)
    assert (ids[:, 0] == CLS).all() and (ids[np.arange(len(ids)), real - 1] == SEP).all()
    assert ((n >= 1) & (n <= p)).all() and (pos.max(axis=1) < real - 1).all()
    candidates = real - (3 if spec.get("nsp") else 2)
    k = np.minimum(p, np.maximum(1, np.rint(candidates * spec.get("masked_lm_prob", 0.15))))
    if spec.get("whole_word_masking"):
        # Whole words may leave a little of the budget unused, never exceed it.
        assert (n <= k).all() and n.sum() > 0.97 * k.sum()
    else:
        assert (n == k).all()


def test_missing_tokenizer_is_one_clear_error(small_part, tmp_path):
    with pytest.raises(BadInput, match=f"tokenizer folder {tmp_path} has neither tokenizer.json nor vocab.txt"):
        build(tmp_path, small_part, tmp_path)


def test_empty_text_is_a_warning_with_empty_shards(bert_tokenizer_dir, tmp_path, capsys):
    """A part with no document (a corpus with fewer documents than parts) or no text: a warning and
    valid shards of 0 rows, which the loader skips; never a failure of the whole DAG."""
    for content, why in (("", "holds no document"), ("\n\n   \n\t\n", "holds no document"),
                         ("\u200b\n\n", "holds no text")):
        empty = tmp_path / "part_0.txt"
        empty.write_text(content)
        build(tmp_path, empty, bert_tokenizer_dir)
        assert f"WARNING: text part {empty} {why}" in capsys.readouterr().out
        assert sorted(p.name for p in tmp_path.iterdir()) == ["part_0.txt", "s_train.h5", "s_valid.h5"]  # no temp file
        for shard in ("s_train.h5", "s_valid.h5"):
            summary = shard_format.shard_summary(tmp_path / shard)
            assert summary["num_samples"] == 0 and summary["row_ids"]
    with pytest.raises(BadInput, match=r"missing\.txt does not exist"):
        build(tmp_path, tmp_path / "missing.txt", bert_tokenizer_dir)


def test_cli_contract(small_part, bert_tokenizer_dir, tmp_path, capsys):
    train, valid = tmp_path / "train" / "wiki" / "part_3.h5", tmp_path / "valid" / "wiki" / "part_3.h5"
    samples.main(["--spec", json.dumps(SPEC), "--tokenizer", str(bert_tokenizer_dir), "--text", str(small_part),
                  "--corpus", "wiki", "--part", "3", "--train-out", str(train), "--valid-out", str(valid)])
    log = capsys.readouterr().out
    assert "documents" in log and "tokens/s" in log and "masked 0.1" in log and "padding" in log
    attrs = shard_format.shard_summary(train)["attrs"]
    assert (attrs["corpus"], attrs["part"]) == ("wiki", 3) and valid.exists()
    spec = dict(SPEC)
    del spec["seed"]
    with pytest.raises(SystemExit, match="lacks seed"):
        samples.main(["--spec", json.dumps(spec), "--tokenizer", str(bert_tokenizer_dir), "--text", str(small_part),
                      "--corpus", "wiki", "--part", "0", "--train-out", str(train), "--valid-out", str(valid)])


def test_validator_rejects_truncated_and_malformed_shards(small_part, bert_tokenizer_dir, tmp_path):
    train, _, _ = build(tmp_path, small_part, bert_tokenizer_dir, nsp=True)
    good = train.read_bytes()
    bad = tmp_path / "bad.h5"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(shard_format.ShardError, match=f"{bad}.*truncated"):
        shard_format.open_shard(bad)
    bad.write_bytes(good)
    with h5py.File(bad, "a") as f:
        del f["masked_lm_ids"]
    with pytest.raises(shard_format.ShardError, match=f"{bad}: missing dataset.*masked_lm_ids"):
        shard_format.load_shard(bad)
    bad.write_bytes(good)
    with h5py.File(bad, "a") as f:
        data = f["segment_ids"][:]
        del f["segment_ids"]
        f["segment_ids"] = data.astype(np.int64)
    with pytest.raises(shard_format.ShardError, match="segment_ids has dtype int64, expected int8"):
        shard_format.open_shard(bad)
    bad.write_bytes(good)
    with h5py.File(bad, "a") as f:
        f["next_sentence_labels"].resize((5,))
    with pytest.raises(shard_format.ShardError, match="next_sentence_labels has 5 rows"):
        shard_format.open_shard(bad)
    with pytest.raises(shard_format.ShardError, match="NSP expected False"):
        shard_format.open_shard(train, nsp=False)
    with pytest.raises(shard_format.ShardError, match="expected max_seq_length 512"):
        shard_format.open_shard(train, max_seq_length=512)
    with pytest.raises(shard_format.ShardError, match="no such file"):
        shard_format.open_shard(tmp_path / "nope.h5")
    assert os.path.getsize(train) == len(good)  # the checks never touch the shard they read
