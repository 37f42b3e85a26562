"""The rule-based sentence splitter: abbreviations, initials, numbers, quotes, non-Latin scripts."""
import pytest

from workflow_scripts.data.sentences import split_sentences


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith went to Washington. He arrived on Monday.",
     ["Mr. Smith went to Washington.", "He arrived on Monday."]),
    ("Dr. Who met Prof. Xavier at St. Louis. They talked.",
     ["Dr. Who met Prof. Xavier at St. Louis.", "They talked."]),
    ("J. R. R. Tolkien wrote it. It was long.", ["J. R. R. Tolkien wrote it.", "It was long."]),
    ("The rate rose to 3.5 percent in 2010. Prices fell.", ["The rate rose to 3.5 percent in 2010.", "Prices fell."]),
    ("Many fruits, e.g. Apples and pears, i.e. Pomes, grow here. Others do not.",
     ["Many fruits, e.g. Apples and pears, i.e. Pomes, grow here.", "Others do not."]),
    ("He served in the U.S. Army for years. He retired.", ["He served in the U.S. Army for years.", "He retired."]),
    ("He moved to the U.S. The move was hard.", ["He moved to the U.S.", "The move was hard."]),
    ("See No. 5 and pp. 23–25 in Vol. 2 of the report. Done.",
     ["See No. 5 and pp. 23–25 in Vol. 2 of the report.", "Done."]),
    ("The answer was no. The question was moot.", ["The answer was no.", "The question was moot."]),
    ("Born c. 1500 in Rome. Died in 1560.", ["Born c. 1500 in Rome.", "Died in 1560."]),
    ("Apples, pears, etc. are fruit. Bananas are too.", ["Apples, pears, etc. are fruit.", "Bananas are too."]),
    ("It was built by Acme Inc. The firm failed.", ["It was built by Acme Inc.", "The firm failed."]),
    ('Is it? Yes! "Quite so." Then he left.', ["Is it?", "Yes!", '"Quite so."', "Then he left."]),
    ("He said (see above). Then he left...", ["He said (see above).", "Then he left..."]),
    ("Wait... what happened? Nothing.", ["Wait... what happened?", "Nothing."]),
    ("Visit example.com for more. Or not.", ["Visit example.com for more.", "Or not."]),
    ("The ratio was 3:2. 40 people came.", ["The ratio was 3:2.", "40 people came."]),
    ("Он пришёл домой. Она ушла.", ["Он пришёл домой.", "Она ушла."]),
    ("Η Αθήνα είναι πόλη. Είναι μεγάλη.", ["Η Αθήνα είναι πόλη.", "Είναι μεγάλη."]),
])
def test_latin_and_other_cased_scripts(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("东京是日本的首都。它很大！真的吗？是的。", ["东京是日本的首都。", "它很大！", "真的吗？", "是的。"]),
    ("「行こう。」と彼は言った。", ["「行こう。」と彼は言った。"]),
    ("「行こう。」「うん。」それから出た。", ["「行こう。」", "「うん。」", "それから出た。"]),
    ("यह एक वाक्य है। यह दूसरा है॥", ["यह एक वाक्य है।", "यह दूसरा है॥"]),
    ("هل أنت بخير؟ نعم.", ["هل أنت بخير؟", "نعم."]),
])
def test_scripts_whose_terminals_need_no_space(text, expected):
    assert split_sentences(text) == expected


def test_edge_cases():
    assert split_sentences("") == []
    assert split_sentences("   ") == []
    assert split_sentences("No terminal punctuation here") == ["No terminal punctuation here"]
    assert split_sentences("  Padded sentence.  ") == ["Padded sentence."]
    # lowercase after a period: an abbreviation we do not know still does not split
    assert split_sentences("The approx. value of cca. ten.") == ["The approx. value of cca. ten."]


def test_splitting_loses_no_characters():
    """On prose, re-joining the sentences gives back the paragraph (only spaces move)."""
    paragraph = ("Anarchism is a political philosophy that advocates self-governed societies based on "
                 "voluntary institutions. These are often described as stateless societies, although "
                 "several authors have defined them more specifically as institutions based on "
                 "non-hierarchical free associations. Anarchism considers the state to be undesirable, "
                 "unnecessary, and harmful.")
    sentences = split_sentences(paragraph)
    assert len(sentences) == 3
    assert " ".join(sentences) == paragraph
