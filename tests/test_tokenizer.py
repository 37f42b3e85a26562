"""The tokenizer folder: the real bert-base-uncased copied, a WordPiece trained on real Wikipedia parts."""
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from workflow_scripts.data import corpus, tokenizer

SENTENCES = ["Anarchism is a political philosophy that advocates self-governed societies.",
             "Pierre-Joseph Proudhon (1809–1865) wrote What is Property?", "Ἀχιλλεύς and 東京 too."]
FILES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"}


@pytest.fixture(scope="module")
def wiki_texts(wiki_dump, tmp_path_factory):
    out = tmp_path_factory.mktemp("texts")
    parts = [out / "part_0.txt", out / "part_1.txt"]
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "parts": 2}, parts)
    return parts


def test_pretrained_copy_round_trips_ids(bert_tokenizer_dir, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "tokenizer"
    tokenizer.main(["--spec", json.dumps({"pretrained": str(bert_tokenizer_dir)}), "--texts", "--out", str(out)])
    assert {p.name for p in out.iterdir()} == FILES
    assert (out / "vocab.txt").read_bytes() == (bert_tokenizer_dir / "vocab.txt").read_bytes()
    original, copy = AutoTokenizer.from_pretrained(str(bert_tokenizer_dir)), AutoTokenizer.from_pretrained(str(out))
    assert copy.is_fast
    for a, b in [(s, None) for s in SENTENCES] + [(SENTENCES[0], SENTENCES[1])]:
        assert copy(a, b)["input_ids"] == original(a, b)["input_ids"]
    ids = copy(SENTENCES[0])["input_ids"]
    assert ids[0] == 101 and ids[-1] == 102 and copy.pad_token_id == 0 and copy.mask_token_id == 103
    assert json.loads((out / "special_tokens_map.json").read_text())["mask_token"] == "[MASK]"


def test_bare_vocab_folder_loads(bert_tokenizer_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(bert_tokenizer_dir / "vocab.txt", bare / "vocab.txt")
    tok = tokenizer.load_pretrained(str(bare))
    assert tok.convert_ids_to_tokens(tok("Hello World")["input_ids"]) == ["[CLS]", "hello", "world", "[SEP]"]


def test_trained_wordpiece(wiki_texts, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "trained"
    spec = {"train": {"vocab_size": 2000, "min_frequency": 2, "lowercase": True}}
    tokenizer.main(["--spec", json.dumps(spec), "--texts", *map(str, wiki_texts), "--out", str(out)])
    assert {p.name for p in out.iterdir()} == FILES
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.is_fast and len(tok) == 2000
    vocab = (out / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab) == 2000
    ids = (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id)
    assert ids == (0, 1, 2, 3, 4)
    enc = tok(SENTENCES[0], SENTENCES[1])
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens[:3] == ["[CLS]", "anarch", "##ism"] and "political" in tokens  # frequent words stay whole
    assert tokens.count("[SEP]") == 2 and tokens[-1] == "[SEP]"
    assert enc["token_type_ids"][0] == 0 and enc["token_type_ids"][-1] == 1
    decoded = tok.decode(tok(SENTENCES[0])["input_ids"], skip_special_tokens=True)
    assert decoded.replace(" ", "") == SENTENCES[0].lower().replace(" ", "")  # nothing became [UNK]


MIXED = ["Москва — столица России и крупнейший город страны.", "Первое упоминание о Москве относится к 1147 году.",
         "北京是中华人民共和国的首都。", "北京位于华北平原北部。",
         "The city of Moscow is the capital of Russia.", "Beijing is the capital of China.",
         "दिल्ली भारत की राजधानी है।", "दिल्ली एक प्राचीन नगर है।"]


@pytest.mark.parametrize("strip_accents", [None, False])
def test_trained_wordpiece_on_mixed_scripts(tmp_path, strip_accents):
    """Chinese + Russian + English (+ Hindi) lines: each CJK ideograph is a word of its own (BERT's
    handle_chinese_chars), Cyrillic and Latin words are cut by WordPiece, nothing seen becomes [UNK]."""
    from transformers import AutoTokenizer

    text = tmp_path / "part_0.txt"
    text.write_text("\n".join(MIXED * 20) + "\n", encoding="utf-8")
    out = tmp_path / "mixed"
    spec = {"train": {"vocab_size": 400, "min_frequency": 2, "lowercase": True, "strip_accents": strip_accents}}
    tokenizer.main(["--spec", json.dumps(spec), "--texts", str(text), "--out", str(out)])
    tok = AutoTokenizer.from_pretrained(str(out))
    pieces = tok.tokenize("北京是首都。Москва — столица. The capital.")
    assert pieces[:5] == ["北", "京", "是", "首", "都"]  # one ideograph per token, never merged
    assert "москва" in pieces and "capital" in pieces  # frequent words whole, in either script
    for line in MIXED:
        assert tok.unk_token not in tok.tokenize(line), line
    hindi = tok.decode(tok("दिल्ली भारत की राजधानी है।")["input_ids"], skip_special_tokens=True).replace(" ", "")
    # Stripping accents (BERT uncased's default) drops Devanagari's virama and vowel signs; false keeps them.
    assert (hindi == "दिल्लीभारतकीराजधानीहै।") == (strip_accents is False)


def test_trained_cased(wiki_texts, tmp_path):
    out = tmp_path / "cased"
    tokenizer.main(["--spec", json.dumps({"train": {"vocab_size": 1000, "lowercase": False}}),
                    "--texts", str(wiki_texts[0]), "--out", str(out)])
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.convert_ids_to_tokens(tok("The")["input_ids"]) == ["[CLS]", "The", "[SEP]"]


def test_output_is_replaced_whole(bert_tokenizer_dir, tmp_path):
    out = tmp_path / "tokenizer"
    out.mkdir()
    (out / "stale.txt").write_text("from an earlier run")
    tokenizer.main(["--spec", json.dumps({"pretrained": str(bert_tokenizer_dir)}), "--out", str(out)])
    assert {p.name for p in out.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer"]  # no temporary folder left


def test_folder_is_readable_by_group_and_others(bert_tokenizer_dir, tmp_path):
    """On a shared cluster other users' jobs read results/tokenizer: mode 0777 / 0666 less the umask,
    not the private 0700 a temporary folder starts with."""
    old = os.umask(0o022)
    try:
        tokenizer.main(["--spec", json.dumps({"pretrained": str(bert_tokenizer_dir)}), "--out", str(tmp_path / "tok")])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "tok").stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "tok").iterdir()} == {0o644}


def test_errors_are_one_clear_line(repo_root, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(SystemExit, match="no text to train on"):
        tokenizer.main(["--spec", '{"train": {"vocab_size": 1000}}', "--texts", str(empty),
                        "--out", str(tmp_path / "t")])
    with pytest.raises(SystemExit, match=r"text part .*missing\.txt does not exist"):
        tokenizer.main(["--spec", '{"train": {}}', "--texts", str(tmp_path / "missing.txt"),
                        "--out", str(tmp_path / "t")])
    assert not (tmp_path / "t").exists()
    # as the rule runs it; the hub is unreachable here, so a name that is not a folder fails fast offline
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.tokenizer", "--spec",
                          json.dumps({"pretrained": str(tmp_path / "no-such-tokenizer")}), "--texts",
                          "--out", str(tmp_path / "t")], cwd=repo_root, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("tokenizer: cannot load pretrained tokenizer") and "no-such-tokenizer" in last
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("kept", [["tokenizer_config.json", "special_tokens_map.json"], []])
def test_a_folder_without_its_vocabulary_is_one_line_and_replaces_nothing(bert_tokenizer_dir, tmp_path, kept):
    """Without tokenizer.json or vocab.txt, transformers builds a tokenizer of the 5 special tokens
    (the samples jobs then crash): one line naming the folder and the files it needs, and the good
    tokenizer already in --out stays."""
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in kept:
        shutil.copy(bert_tokenizer_dir / name, bad / name)
    out = tmp_path / "tok"
    tokenizer.main(["--spec", json.dumps({"pretrained": str(bert_tokenizer_dir)}), "--out", str(out)])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run = subprocess.run([sys.executable, "-m", "workflow_scripts.data.tokenizer", "--spec",
                          json.dumps({"pretrained": str(bad)}), "--texts", "--out", str(out)],
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert str(bad) in run.stderr and "tokenizer.json" in run.stderr and "vocab.txt" in run.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "tok"]      # no temporary folder left


def test_check_pretrained_leaves_hub_names_to_the_loader(bert_tokenizer_dir, tmp_path):
    tokenizer.check_pretrained(str(bert_tokenizer_dir))
    tokenizer.check_pretrained("bert-base-uncased")
    tokenizer.check_pretrained("google/bert_uncased_L-2_H-128_A-2")
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(tokenizer.BadInput, match="no such folder"):
        tokenizer.check_pretrained(str(tmp_path / "vocab.json"))
    with pytest.raises(tokenizer.BadInput, match="no such folder"):
        tokenizer.check_pretrained("resources/typo/bert-base-uncased")
