"""Documents from consecutive rows (a corpus's `documents:` block): real .jsonl, .parquet and saved datasets."""
import json
from pathlib import Path

import pytest
import yaml

from workflow_scripts import config_checks
from workflow_scripts.data import corpus, samples, shard_format
from workflow_scripts.data.sources import row_documents
from workflow_scripts.errors import BadInput

# Sentence rows of three "books" with an id column and a blank row after each book. Book a's second
# row is lowercase with no full stop: joined into one paragraph, the splitter would glue it to its
# neighbours; as rows it stays a sentence of its own.
ROWS = [("It was a cold morning.", "a"), ("she walked to the station", "a"), ("The train was late.", "a"),
        ("", "a"),
        ("Chapter two begins here.", "b"), ("Nobody came. She waited.", "b"),
        ("", "b"),
        ("The end.", "c")]
A1, A2, A3, _, B1, B2, _, C1 = (text for text, _ in ROWS)
EXPECTED = {
    "row": [[A1], [A2], [A3], [B1], ["Nobody came.", "She waited."], [C1]],
    "column": [[A1, A2, A3], [B1, "Nobody came.", "She waited."], [C1]],
    "blank_row": [[A1, A2, A3], [B1, "Nobody came.", "She waited."], [C1]],
    # every 2 rows, blank rows counted: (A1 A2) (A3 -) (B1 B2) (- C1)
    "rows": [[A1, A2], [A3], [B1, "Nobody came.", "She waited."], [C1]],
    # up to 50 characters of row text: A1+A2 = 47; A3+B1 = 43; B2+C1 = 32
    "chars": [[A1, A2], [A3, B1], ["Nobody came.", "She waited.", C1]],
}
BLOCKS = {"row": {"by": "row"}, "column": {"by": "column", "column": "book"}, "blank_row": {"by": "blank_row"},
          "rows": {"by": "rows", "rows": 2}, "chars": {"by": "chars", "chars": 50}}


def documents(path: Path) -> list[list[str]]:
    """A part file's documents, each its list of sentence lines."""
    return [block.split("\n") for block in path.read_text(encoding="utf-8").split("\n\n") if block]


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for text, book in rows:
            f.write(json.dumps({"text": text, "book": book}) + "\n")
    return path


def write_parquet(path: Path, rows) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": [t for t, _ in rows], "book": [b for _, b in rows]})
    pq.write_table(table, path, row_group_size=3)  # books span row groups (and read batches)
    return path


@pytest.mark.parametrize("by", list(EXPECTED))
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_text_files_grouped_each_way(fmt, by, tmp_path):
    source = (write_jsonl if fmt == "jsonl" else write_parquet)(tmp_path / f"rows.{fmt}", ROWS)
    out = tmp_path / "part_0.txt"
    counts = corpus.extract({"type": "text", "path": str(source), "documents": BLOCKS[by]}, [out])
    assert documents(out) == EXPECTED[by]
    assert counts.kept == len(EXPECTED[by])


def test_documents_never_span_files(tmp_path):
    folder = tmp_path / "books"
    folder.mkdir()
    write_jsonl(folder / "1.jsonl", ROWS[:2])
    write_parquet(folder / "2.parquet", ROWS[2:3])
    out = tmp_path / "part_0.txt"
    corpus.extract({"type": "text", "path": str(folder), "documents": {"by": "column", "column": "book"}}, [out])
    assert documents(out) == [[A1, A2], [A3]]  # same book id, but two files


def test_txt_files_keep_their_blank_line_documents(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.txt").write_text("First book. Still the first.\n\nSecond book.\n")
    write_jsonl(folder / "b.jsonl", ROWS)
    out = tmp_path / "part_0.txt"
    corpus.extract({"type": "text", "path": str(folder), "documents": {"by": "blank_row"}}, [out])
    assert documents(out) == [["First book.", "Still the first."], ["Second book."], *EXPECTED["blank_row"]]
    assert "groups .jsonl/.parquet rows only: the .txt files" in capsys.readouterr().out


def test_saved_huggingface_dataset_grouped_by_column(tmp_path, capsys):
    import datasets

    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(
        {"sentence": [t for t, _ in ROWS], "book_id": [b for _, b in ROWS]})}).save_to_disk(str(saved))
    out = tmp_path / "part_0.txt"
    source = {"type": "huggingface", "name": str(saved), "split": "train", "text_column": "sentence",
              "documents": {"by": "column", "column": "book_id"}}
    corpus.extract(source, [out])
    assert documents(out) == EXPECTED["column"]
    assert "8 rows -> 3 documents (documents.by column" in capsys.readouterr().out
    with pytest.raises(BadInput, match=r"has no column `book` \(documents\.column; it has: sentence, book_id\): set documents\.column to one of those$"):
        corpus.extract({**source, "documents": {"by": "column", "column": "book"}}, [out])


def test_streamed_huggingface_builder_grouped_by_column(tmp_path):
    """The packaged json builder streams rows (features may be unknown until read): same documents."""
    rows = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    out = tmp_path / "part_0.txt"
    corpus.extract({"type": "huggingface", "name": "json", "path": str(rows), "split": "train",
                    "documents": {"by": "column", "column": "book"}}, [out])
    assert documents(out) == EXPECTED["column"]


def test_a_column_that_never_changes_still_gives_bounded_documents(tmp_path, capsys):
    rows = [(f"Sentence number {i} of the one book.", "same") for i in range(40)]
    out = tmp_path / "part_0.txt"
    corpus.extract({"type": "text", "path": str(write_jsonl(tmp_path / "r.jsonl", rows)),
                    "documents": {"by": "column", "column": "book", "chars": 200}}, [out])
    docs = documents(out)
    assert sum(map(len, docs)) == 40 and all(sum(map(len, d)) <= 200 for d in docs)
    assert len(docs) == 8   # 34-35 characters a row: 5 rows fit in 200
    assert "cut at documents.chars=200" in capsys.readouterr().out


def test_a_row_longer_than_chars_is_its_own_document():
    grouper = row_documents.RowGrouper({"by": "chars", "chars": 10})
    assert list(grouper.group([("Short.", None), ("A much longer row.", None), ("Tiny.", None)])) == [
        "Short.", "A much longer row.", "Tiny."]


@pytest.mark.parametrize("block, message", [
    ({"by": "book"}, r"^corpus: documents\.by: 'book' is not one of row, column, rows, blank_row, chars$"),
    ({"by": "column"}, r"^corpus: documents: by column needs documents\.column \(the column holding"),
    ({"by": "rows"}, r"^corpus: documents: by rows needs documents\.rows"),
    ({"by": "chars", "column": "book"}, r"^corpus: documents\.column: only read with by: column \(by is chars\)"),
    ({"by": "rows", "rows": 0}, r"^corpus: documents\.rows: 0 is not a whole number >= 1$"),
    ({"by": "row", "size": 3}, r"^corpus: documents: unknown key 'size' \(allowed: by, column, rows, chars\)$"),
])
def test_a_bad_block_is_one_line(block, message, tmp_path):
    source = write_jsonl(tmp_path / "rows.jsonl", ROWS)
    with pytest.raises(BadInput, match=message) as err:
        corpus.extract({"type": "text", "path": str(source), "documents": block}, [tmp_path / "p.txt"])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_missing_id_column_names_the_file(fmt, tmp_path):
    source = (write_jsonl if fmt == "jsonl" else write_parquet)(tmp_path / f"rows.{fmt}", ROWS)
    where = r"line 1 has no `chapter` field" if fmt == "jsonl" else r"has no column `chapter`"
    with pytest.raises(BadInput, match=rf"^corpus: .*rows\.{fmt} {where} \(documents\.column; it has: text, book\): set documents\.column to one of those$"):
        corpus.extract({"type": "text", "path": str(source), "documents": {"by": "column", "column": "chapter"}},
                       [tmp_path / "p.txt"])
    assert not (tmp_path / "p.txt").exists()


def test_parse_time_checks(repo_root):
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    config["corpora"]["wiki"]["documents"] = {"by": "rows", "rows": 100}
    with pytest.raises(config_checks.ConfigError, match=r"^config key corpora\.wiki\.documents: a wikipedia corpus"):
        config_checks.validate(config, repo_root / "config" / "schema.yaml")
    config["corpora"]["wiki"] = {"type": "text", "path": "x", "documents": {"by": "column"}}
    with pytest.raises(config_checks.ConfigError, match=r"^config key corpora\.wiki\.documents: by column needs"):
        config_checks.validate(config, repo_root / "config" / "schema.yaml")
    config["corpora"]["wiki"]["documents"] = {"by": "sentences"}
    with pytest.raises(config_checks.ConfigError, match=r"^config key corpora\.wiki\.documents\.by: 'sentences'"):
        config_checks.validate(config, repo_root / "config" / "schema.yaml")


def test_defaults_are_the_schemas(repo_root):
    properties = yaml.safe_load((repo_root / "config/schema.yaml").read_text())["$defs"]["corpus"]["properties"]
    block = properties["documents"]
    assert row_documents.DEFAULTS == {k: v["default"] for k, v in block["properties"].items()}
    assert list(block["properties"]["by"]["enum"]) == list(row_documents.BY)
    assert corpus.SOURCE_DEFAULTS["documents"] == block["default"]


# -- what it is for: full-length samples from a sentence-per-row corpus ------------------------------------

SPEC = {"max_seq_length": 128, "masked_lm_prob": 0.15, "max_predictions_per_seq": 20, "dup_factor": 1,
        "short_seq_prob": 0.1, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.05, "seed": 42,
        "min_chars_per_token": 0.0}


@pytest.fixture(scope="module")
def sentence_rows(wiki_dump, tmp_path_factory):
    """Real Wikipedia sentences, one per .jsonl row (as the hub's bookcorpus holds its books), with the article id."""
    tmp = tmp_path_factory.mktemp("sentence_rows")
    part = tmp / "wiki.txt"
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "max_chars": 300_000}, [part])
    rows = [(sentence, article) for article, doc in enumerate(documents(part)) for sentence in doc]
    return write_jsonl(tmp / "sentences.jsonl", rows), len(rows)


def test_grouped_sentence_rows_make_full_length_samples(sentence_rows, bert_tokenizer_dir, tmp_path):
    """Grouped as the 24 h recipe groups the hub's bookcorpus (by chars, no book id), the sample builder
    packs full rows; a row each, every sample is one sentence and mostly padding."""
    rows, n_rows = sentence_rows
    real_tokens = {}
    for name, documents_block in (("ungrouped", {"by": "row"}), ("grouped", {"by": "chars", "chars": 20000})):
        part = tmp_path / f"{name}.txt"
        corpus.extract({"type": "text", "path": str(rows), "documents": documents_block}, [part])
        train, valid = tmp_path / f"{name}_train.h5", tmp_path / f"{name}_valid.h5"
        samples.build_shards(SPEC, bert_tokenizer_dir, part, samples.Part(name, 0), train, valid)
        real_tokens[name] = shard_format.load_shard(train)["input_mask"].sum(axis=1).mean()
    half = SPEC["max_seq_length"] / 2
    assert n_rows > 1500
    assert real_tokens["grouped"] >= half, real_tokens          # ~115: samples fill their 128 slots
    assert real_tokens["ungrouped"] < 0.75 * half, real_tokens  # ~32: one sentence each, the rest padding
    assert real_tokens["grouped"] > 3 * real_tokens["ungrouped"], real_tokens
