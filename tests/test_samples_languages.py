"""Every language kept (issue 10): the characters-per-token filter judges a document against its own corpus,
so Cyrillic, CJK and Devanagari text survives the default English tokenizer; a poor tokenizer fit and short
samples are said once, in the log and the stats JSON."""
import json

import pytest

from workflow_scripts.data import samples, shard_format, tokenizer_fit

SPEC = {"max_seq_length": 64, "masked_lm_prob": 0.15, "max_predictions_per_seq": 10, "dup_factor": 1,
        "short_seq_prob": 0.0, "nsp": False, "whole_word_masking": False, "valid_fraction": 0.2, "seed": 1,
        "min_chars_per_token": 3.0, "min_chars_per_token_relative": 0.6}
SENTENCES = {
    "ru": ["Москва — столица России, город федерального значения и административный центр округа.",
           "Первое упоминание о Москве относится к 1147 году.",
           "В 1156 году по приказу Юрия Долгорукого был построен деревянный кремль.",
           "Москва — самый населённый город Европы и крупнейший город России.",
           "Город расположен на реке Москве в центре Восточно-Европейской равнины.",
           "Московский метрополитен открыт в 1935 году и стал первым в стране."],
    "zh": ["北京市，简称京，是中华人民共和国的首都及直辖市。",
           "北京位于华北平原北部，总面积一万六千平方公里。",
           "北京有三千多年的建城史，元朝在此建立大都。",
           "此后明朝和清朝亦定都于此，北京是中国的交通枢纽。",
           "北京的气候为典型的暖温带半湿润大陆性季风气候。",
           "故宫是明清两代的皇家宫殿，位于北京中轴线的中心。"],
    "hi": ["नई दिल्ली भारत की राजधानी है और दिल्ली महानगर का एक भाग है।",
           "शहर की स्थापना वर्ष 1911 में हुई थी।",
           "यहाँ भारत सरकार के कई कार्यालय स्थित हैं।",
           "दिल्ली यमुना नदी के किनारे बसा एक प्राचीन नगर है।",
           "लाल किला और कुतुब मीनार यहाँ के प्रसिद्ध स्मारक हैं।",
           "दिल्ली मेट्रो देश की सबसे बड़ी मेट्रो प्रणालियों में से एक है।"],
}


def corpus_part(tmp_path, name, documents):
    """results/text/<name>/part_0.txt: the folder names the corpus, as the workflow lays it out."""
    part = tmp_path / "text" / name / "part_0.txt"
    part.parent.mkdir(parents=True)
    part.write_text("".join("\n".join(d) + "\n\n" for d in documents), encoding="utf-8")
    return part


def language_documents(lang, n=8):
    """n documents of a language: its sentences, each document starting one further along."""
    s = SENTENCES[lang]
    return [[s[(i + j) % len(s)] for j in range(len(s))] for i in range(n)]


def build(tmp_path, part, tokenizer_dir, name="s", **spec):
    stats = tmp_path / f"{name}.json"
    counts = samples.build_shards({**SPEC, **spec}, tokenizer_dir, part, samples.Part(part.parent.name, 0),
                                  tmp_path / f"{name}_t.h5",
                                  tmp_path / f"{name}_v.h5", stats_out=stats)
    return counts, json.loads(stats.read_text())


@pytest.mark.parametrize("lang,fit_problem", [("ru", "spelled"), ("zh", "unk"), ("hi", "spelled")])
def test_non_latin_corpus_is_kept_under_the_english_tokenizer_and_the_fit_is_named(
        lang, fit_problem, bert_tokenizer_dir, tmp_path, capsys):
    part = corpus_part(tmp_path, lang, language_documents(lang))
    counts, stats = build(tmp_path, part, bert_tokenizer_dir)
    assert counts.low_chars_per_token_dropped == 0 and counts.documents == 8 and counts.train_samples > 0
    fit = stats["tokenizer_fit"]
    # ~1 to 1.6 characters per token under the English vocabulary: an absolute 3.0 would drop them all.
    assert 0.9 < fit["median_chars_per_token"] < 2.0
    assert fit["chars_per_token_threshold"] == pytest.approx(0.6 * fit["median_chars_per_token"], abs=1e-3)
    rate = {"spelled": fit["spelled_rate"], "unk": fit["unk_rate"]}[fit_problem]
    assert rate > {"spelled": tokenizer_fit.POOR_SPELLED_RATE, "unk": tokenizer_fit.POOR_UNK_RATE}[fit_problem]
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if "WARNING: the tokenizer fits" in line]
    assert len(warnings) == 1, out  # said once
    assert f"corpus {lang} poorly: {fit['chars_per_token']:.2f} characters per token" in warnings[0]
    assert "tokenizer: {train:" in warnings[0] and "multilingual" in warnings[0]
    assert stats["warnings"] == [warnings[0].split("WARNING: ", 1)[1]]
    # The absolute threshold alone (relative 0) is what dropped such a corpus whole before issue 10.
    counts, stats = build(tmp_path, part, bert_tokenizer_dir, "absolute", min_chars_per_token_relative=0)
    assert counts.documents == 0 and counts.low_chars_per_token_dropped == 8
    assert stats["train"]["samples"] == 0 and any("holds no text left after the filters" in w for w in stats["warnings"])


def test_english_corpus_keeps_its_threshold_and_gets_no_fit_warning(wiki_dump, bert_tokenizer_dir, tmp_path, capsys):
    from workflow_scripts.data import corpus

    part = tmp_path / "text" / "wiki" / "part_0.txt"
    corpus.extract({"type": "wikipedia", "path": str(wiki_dump), "max_documents": 8}, [part])
    capsys.readouterr()
    _, stats = build(tmp_path, part, bert_tokenizer_dir)
    fit = stats["tokenizer_fit"]
    assert fit["unk_rate"] < 0.001 and fit["spelled_rate"] < 0.05 and fit["chars_per_token"] > 4
    assert 2.5 < fit["chars_per_token_threshold"] <= 3.0
    assert stats["warnings"] == [] and "WARNING" not in capsys.readouterr().out


def test_a_mixed_script_corpus_drops_only_what_is_far_below_its_own_median(bert_tokenizer_dir, tmp_path):
    """An English corpus with a few Russian documents: the median is English, so the Russian ones go
    (text its vocabulary cannot spell, the filter's purpose); a Russian corpus keeps them."""
    english = [["An English document about the history of a city, long enough to be judged fairly.",
                f"It has a second sentence, number {i}, about its rivers and bridges."] for i in range(6)]
    russian = language_documents("ru", 2)
    counts, _ = build(tmp_path, corpus_part(tmp_path, "en", english + russian), bert_tokenizer_dir, "en")
    assert counts.low_chars_per_token_dropped == 2 and counts.documents == 6
    counts, _ = build(tmp_path, corpus_part(tmp_path, "ru", language_documents("ru", 6) + english[:2]),
                      bert_tokenizer_dir, "ru")
    assert counts.low_chars_per_token_dropped == 0 and counts.documents == 8


def test_short_samples_are_named_once(bert_tokenizer_dir, tmp_path, capsys):
    """One sentence per document (a sentence-per-row dataset fed as is): samples far below max_seq_length."""
    rows = [[f"A short sentence, row {i} of a sentence-per-row dataset."] for i in range(40)]
    _, stats = build(tmp_path, corpus_part(tmp_path, "books", rows), bert_tokenizer_dir)
    assert stats["train"]["tokens_per_sample"] < SPEC["max_seq_length"] / 2
    out = capsys.readouterr().out
    short = [line for line in out.splitlines() if "under half of max_seq_length" in line]
    assert len(short) == 1 and "WARNING: corpus books: its train samples hold" in short[0], out
    assert len(stats["warnings"]) == 1 and "under half of max_seq_length 64" in stats["warnings"][0]


def test_median_is_taken_over_the_first_documents_only(bert_tokenizer_dir, tmp_path, monkeypatch):
    tokenizer, _ = samples.load_tokenizer(bert_tokenizer_dir)
    docs = language_documents("ru", 3) + [["An English sentence that carries many characters per token."]] * 50
    monkeypatch.setattr(tokenizer_fit, "CPT_SAMPLE_CHARS", 1)  # the first document alone
    first = tokenizer_fit.median_chars_per_token(iter(docs), lambda d: samples.document_tokens(tokenizer, d))
    monkeypatch.setattr(tokenizer_fit, "CPT_SAMPLE_CHARS", 1 << 20)
    whole = tokenizer_fit.median_chars_per_token(iter(docs), lambda d: samples.document_tokens(tokenizer, d))
    assert first < 2.0 and whole > 4.0
    assert tokenizer_fit.median_chars_per_token(iter([]), lambda d: []) is None
    assert tokenizer_fit.threshold(3.0, 0.6, None) == 3.0 and tokenizer_fit.threshold(0.0, 0.6, 1.2) == 0.0
    assert tokenizer_fit.threshold(3.0, 0.0, 1.2) == 3.0 and tokenizer_fit.threshold(3.0, 0.6, 1.2) == pytest.approx(0.72)


def test_empty_shards_load_and_read_as_empty(bert_tokenizer_dir, tmp_path):
    part = corpus_part(tmp_path, "none", [])
    counts, stats = build(tmp_path, part, bert_tokenizer_dir)
    assert counts.documents_read == 0 and stats["train"]["samples"] == 0
    assert any("holds no document" in w for w in stats["warnings"])
    assert shard_format.shard_summary(tmp_path / "s_t.h5")["num_samples"] == 0
