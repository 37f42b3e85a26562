"""Sample-stage filters and weights on real text: duplicates skipped, characters-per-token filter, corpus
weights as passes per document, and the per-shard stats JSON."""
import json
import re

import h5py
import numpy as np
import pytest

from workflow_scripts.data import corpus, dedup, samples, shard_format
from workflow_scripts.errors import BadInput

SPEC = {"max_seq_length": 128, "masked_lm_prob": 0.15, "max_predictions_per_seq": 20, "dup_factor": 1,
        "short_seq_prob": 0.0, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.2, "seed": 42,
        "min_chars_per_token": 3.0}
TABLE = "\n".join(f"| {1990 + i} | {i * 37 % 100} | {i * 3.5:.1f} | {i * i} |" for i in range(40))
CODE = "\n".join(f"def f{i}(x): return x[{i}] + {{'k{i}': {i}}}" for i in range(40))
RUSSIAN = ("Москва — столица России. Первое упоминание о Москве относится к 1147 году. "
           "В 1156 году по приказу Юрия Долгорукого был построен деревянный кремль.")


@pytest.fixture(scope="module")
def wiki_docs(wiki_dump, tmp_path_factory):
    """The first 30 cleaned articles of the real excerpt, as lists of sentences."""
    out = tmp_path_factory.mktemp("wiki") / "part_0.txt"
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "max_documents": 30}, [out])
    return [block.split("\n") for block in out.read_text(encoding="utf-8").split("\n\n") if block]


def write_part(folder, name, docs):
    """A part through the corpus stage (text source, one document per block) with its hashes."""
    source = folder / f"{name}.txt"
    source.write_text("\n\n".join(" ".join(d) for d in docs) + "\n", encoding="utf-8")
    out = folder / "text" / name
    corpus.extract({"type": "text", "path": str(source)}, [out / "part_0.txt"], hashes_out=out / "doc_hashes.npz")
    return out / "part_0.txt", out / "doc_hashes.npz"


def build(tmp_path, text, tokenizer_dir, name="s", weight=1.0, duplicates=None, **spec):
    spec = {**SPEC, **spec}
    train, valid, stats = (tmp_path / f"{name}_train.h5", tmp_path / f"{name}_valid.h5",
                           tmp_path / f"{name}_stats.json")
    counts = samples.build_shards(spec, tokenizer_dir, text, samples.Part(text.parent.name, 0), train, valid,
                                  weight=weight, duplicates=duplicates, stats_out=stats)
    return train, valid, counts, json.loads(stats.read_text())


def test_duplicates_are_skipped_and_counted(wiki_docs, bert_tokenizer_dir, tmp_path):
    docs = wiki_docs[:12]
    part, hashes = write_part(tmp_path, "a", docs + [docs[3], docs[7]])  # two repeats at the end
    other, other_hashes = write_part(tmp_path, "b", [docs[5], ["An article of b's own, long enough."]])
    dup_a, dup_b = tmp_path / "text/a/duplicates.json", tmp_path / "text/b/duplicates.json"
    dedup.find_duplicates([], hashes, dup_a)
    dedup.find_duplicates([hashes], other_hashes, dup_b)  # b after a in config order
    _, _, counts, stats = build(tmp_path, part, bert_tokenizer_dir, "a", duplicates=dup_a)
    assert counts.documents_read == 14 and counts.duplicates_dropped == 2 and counts.documents == 12
    assert stats["documents"]["duplicates_dropped"] == 2 and stats["documents"]["used"] == 12
    _, _, counts, stats = build(tmp_path, other, bert_tokenizer_dir, "b", duplicates=dup_b, valid_fraction=0)
    assert counts.duplicates_dropped == 1 and counts.documents == 1  # b's copy of a's article goes
    # Without the file, the same part keeps its repeats: the filter is what removed them.
    _, _, counts, _ = build(tmp_path, part, bert_tokenizer_dir, "plain")
    assert counts.duplicates_dropped == 0 and counts.documents == 14


def test_duplicates_never_move_other_documents_across_the_split(wiki_docs, bert_tokenizer_dir, tmp_path):
    docs = wiki_docs[:20]
    part, hashes = write_part(tmp_path, "a", docs[:10] + [docs[2]] + docs[10:])
    dup_json = tmp_path / "text" / "a" / "duplicates.json"
    dedup.find_duplicates([], hashes, dup_json)
    _, valid_with, counts_with, _ = build(tmp_path, part, bert_tokenizer_dir, "with", duplicates=dup_json,
                                          valid_fraction=0.3)
    _, valid_without, counts_without, _ = build(tmp_path, part, bert_tokenizer_dir, "without", valid_fraction=0.3)
    # The split is drawn per document read: only the skipped copy may leave the valid side.
    assert counts_without.valid_documents - counts_with.valid_documents in (0, 1)
    assert counts_with.valid_documents >= 1


def test_a_stale_duplicates_file_is_one_clear_error(wiki_docs, bert_tokenizer_dir, tmp_path):
    part, hashes = write_part(tmp_path, "a", wiki_docs[:5])
    dup_json = tmp_path / "text" / "a" / "duplicates.json"
    dedup.find_duplicates([], hashes, dup_json)
    part.write_text(part.read_text() + "A document added after the duplicates were found.\n\n")
    with pytest.raises(BadInput, match=r"part_0\.txt holds 6 documents, the duplicates file .* expects 5"):
        build(tmp_path, part, bert_tokenizer_dir, duplicates=dup_json)
    assert not list(tmp_path.glob("s_*.h5"))


def test_chars_per_token_filter_drops_tables_code_and_unspellable_text(wiki_docs, bert_tokenizer_dir, tmp_path,
                                                                        capsys):
    part = tmp_path / "part_0.txt"
    junk = [TABLE.split("\n"), CODE.split("\n"), [RUSSIAN]]
    part.write_text("\n\n".join("\n".join(d) for d in wiki_docs[:10] + junk) + "\n", encoding="utf-8")
    _, _, counts, stats = build(tmp_path, part, bert_tokenizer_dir, "cpt")
    assert counts.low_chars_per_token_dropped == 3 and counts.documents == 10
    assert stats["documents"]["low_chars_per_token_dropped"] == 3 and stats["min_chars_per_token"] == 3.0
    # Judged against the part's own median (English articles, ~4.8): 0.6 x that, about the absolute 3.0.
    fit = stats["tokenizer_fit"]
    assert 4.3 < fit["median_chars_per_token"] < 5.5
    assert fit["chars_per_token_threshold"] == pytest.approx(min(3.0, 0.6 * fit["median_chars_per_token"]), abs=1e-3)
    assert re.search(r"3 below (3 characters per token \(min_chars_per_token\)|[23]\.\d\d characters per token "
                     r"\(min_chars_per_token 3, lowered to min_chars_per_token_relative x this part's median 4\.\d\d\))",
                     capsys.readouterr().out)
    # The kept documents are the articles: every sample's tokens come from them, none from the junk.
    tokenizer, _ = samples.load_tokenizer(bert_tokenizer_dir)
    junk_ids = set(tokenizer.encode(" ".join(TABLE.split("\n")[:3]), add_special_tokens=False).ids) - set(
        samples.tokenize_documents(tokenizer, wiki_docs[:10])[0].tokens.tolist())
    train = shard_format.load_shard(tmp_path / "cpt_train.h5")
    assert junk_ids and not junk_ids & set(np.unique(train["input_ids"]).tolist())
    _, _, counts, _ = build(tmp_path, part, bert_tokenizer_dir, "off", min_chars_per_token=0)
    assert counts.low_chars_per_token_dropped == 0 and counts.documents == 13


def test_absolute_chars_per_token_filter_warns_and_an_emptied_part_is_a_warning(bert_tokenizer_dir, tmp_path,
                                                                                 capsys):
    """min_chars_per_token_relative 0: the absolute threshold alone, as before issue 10."""
    part = tmp_path / "ru" / "part_0.txt"
    part.parent.mkdir()
    part.write_text("\n\n".join([RUSSIAN] * 3 + ["An English document that is long enough to pass the filter."])
                    + "\n", encoding="utf-8")
    build(tmp_path, part, bert_tokenizer_dir, valid_fraction=0, min_chars_per_token_relative=0)
    assert ("WARNING: the characters-per-token filter dropped 3 of 4 documents of corpus ru: below 3 characters "
            "per token") in capsys.readouterr().out
    part.write_text((RUSSIAN + "\n\n") * 2, encoding="utf-8")
    train, valid, counts, stats = build(tmp_path, part, bert_tokenizer_dir, "empty", min_chars_per_token_relative=0)
    message = (r"text part \S+ru/part_0\.txt holds no text left after the filters: of 2 documents, 0 are duplicates "
               r".*2 are below 3 characters per token .*: its shards are empty and training skips them")
    assert re.search("WARNING: " + message, capsys.readouterr().out)
    assert any(re.fullmatch(message, w) for w in stats["warnings"])
    for shard in (train, valid):  # valid shards with no rows, for the loader to skip
        assert len(shard_format.load_shard(shard)["input_ids"]) == 0
    assert stats["train"]["samples"] == stats["valid"]["samples"] == 0
    # With the per-corpus threshold (the default) the same part keeps both documents.
    _, _, counts, _ = build(tmp_path, part, bert_tokenizer_dir, "relative")
    assert counts.low_chars_per_token_dropped == 0 and counts.documents == 2


@pytest.fixture(scope="module")
def weighted(wiki_docs, bert_tokenizer_dir, tmp_path_factory):
    """The same part built at several weights (dup_factor 2, no short targets or NSP: each pass packs alike)."""
    tmp = tmp_path_factory.mktemp("weights")
    part = tmp / "part_0.txt"
    part.write_text("\n\n".join("\n".join(d) for d in wiki_docs) + "\n", encoding="utf-8")
    return {w: build(tmp, part, bert_tokenizer_dir, f"w{w}", weight=w, dup_factor=2)
            for w in (1.0, 2.0, 0.75, 0.25)}


def test_weight_multiplies_the_passes_of_train_documents(weighted):
    one, two = weighted[1.0], weighted[2.0]
    assert two[2].train_samples == 2 * one[2].train_samples  # 4 passes vs 2, identical packing
    assert two[3]["train"]["document_passes"] == 4 * two[2].train_documents
    # Valid documents are the same and used once, whatever the weight.
    assert two[2].valid_documents == one[2].valid_documents
    with h5py.File(one[1]) as a, h5py.File(two[1]) as b:
        assert np.array_equal(a["input_ids"][:], b["input_ids"][:])
    with h5py.File(two[0]) as f:
        assert f.attrs["weight"] == 2.0 and f.attrs["dup_factor"] == 2


def test_fractional_weights_draw_a_pass_per_document(weighted):
    one, three_quarters, quarter = weighted[1.0], weighted[0.75], weighted[0.25]
    n = one[2].train_documents
    # 0.75 x 2 = 1.5 passes: each train document 1 or 2, about half of them 2.
    passes = three_quarters[3]["train"]["document_passes"]
    assert three_quarters[2].train_documents == n and n < passes < 2 * n
    assert passes / n == pytest.approx(1.5, abs=0.25)
    assert one[2].train_samples / 2 < three_quarters[2].train_samples < one[2].train_samples
    # 0.25 x 2 = 0.5 passes: about half the train documents are left out, the rest used once.
    left_out = quarter[2].weighted_out
    assert quarter[2].train_documents + left_out == n and left_out / n == pytest.approx(0.5, abs=0.25)
    assert quarter[3]["train"]["document_passes"] == quarter[2].train_documents
    assert quarter[3]["documents"]["weighted_out"] == left_out


def test_stats_json_holds_counts_and_sample_statistics(weighted):
    train_file, _, counts, stats = weighted[1.0]
    assert set(stats) >= {"text", "corpus", "part", "weight", "dup_factor", "min_chars_per_token", "documents",
                          "sentences", "tokens", "train", "valid", "tokenizer_fit", "warnings", "seconds"}
    assert stats["warnings"] == []  # English articles, full samples: nothing to say
    assert stats["documents"] == {"read": 30, "duplicates_dropped": 0, "low_chars_per_token_dropped": 0,
                                  "empty_dropped": 0, "used": 30, "train": counts.train_documents,
                                  "valid": counts.valid_documents, "weighted_out": 0}
    rows = shard_format.load_shard(train_file)
    real = rows["input_mask"].sum(axis=1)
    train = stats["train"]
    assert train["samples"] == len(real) == counts.train_samples
    assert train["tokens_per_sample"] == pytest.approx(real.mean(), abs=1e-3)
    assert train["padding_fraction"] == pytest.approx(1 - real.mean() / 128, abs=1e-5)
    predicted = (rows["masked_lm_positions"] > 0).sum()
    assert train["masked_fraction"] == pytest.approx(predicted / (real - 2).sum(), abs=1e-5)
    # The statistics a healthy build has: full rows (no short targets), 15% masked.
    assert 120 < train["tokens_per_sample"] <= 128 and train["padding_fraction"] < 0.07
    assert train["masked_fraction"] == pytest.approx(0.15, abs=0.01)


def test_cli_takes_weight_duplicates_and_stats(wiki_docs, bert_tokenizer_dir, tmp_path):
    part, hashes = write_part(tmp_path, "a", wiki_docs[:4] + [wiki_docs[0]])
    dup_json = tmp_path / "text" / "a" / "duplicates.json"
    dedup.find_duplicates([], hashes, dup_json)
    stats = tmp_path / "stats" / "a" / "part_0.json"
    samples.main(["--spec", json.dumps(SPEC), "--tokenizer", str(bert_tokenizer_dir), "--text", str(part),
                  "--corpus", "a", "--part", "0", "--train-out", str(tmp_path / "t.h5"),
                  "--valid-out", str(tmp_path / "v.h5"),
                  "--weight", "3", "--duplicates", str(dup_json), "--stats-out", str(stats)])
    record = json.loads(stats.read_text())
    assert record["weight"] == 3.0 and record["documents"]["duplicates_dropped"] == 1
    assert record["train"]["document_passes"] == 3 * record["documents"]["train"]
    with pytest.raises(SystemExit, match="--weight must be > 0"):
        samples.main(["--spec", json.dumps(SPEC), "--tokenizer", str(bert_tokenizer_dir), "--text", str(part),
                      "--corpus", "a", "--part", "0", "--train-out", str(tmp_path / "t.h5"),
                      "--valid-out", str(tmp_path / "v.h5"), "--weight", "0"])
