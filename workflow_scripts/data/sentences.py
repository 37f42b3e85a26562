"""A fast rule-based sentence splitter: compiled regexes plus an abbreviation check, nothing downloaded.

`split_sentences(paragraph)` returns the sentences of one paragraph (a line of prose with no
newlines that matter). Rules, in the spirit of Punkt but without a trained model:
- `.`, `?`, `!`, `…` (with any closing quotes/brackets after them) followed by whitespace end a
  sentence when the next word does not start with a lowercase letter;
- a `.` after a known abbreviation (Mr., Dr., e.g., No., ...) or a single-letter initial
  (J. R. R. Tolkien) does not end one; after ambiguous ones (U.S., etc., Inc.) it does only
  when the next word is a common sentence opener ("... in the U.S. The war ...");
- decimals (3.5), dotted names (example.com) and ellipses inside a word never split, since the
  terminal must be followed by whitespace;
- scripts that end sentences without a following space split right after their terminal:
  CJK 。！？, Devanagari danda । ॥, Arabic ؟ ۔, Ethiopic ።, Armenian ։ (but not a Japanese quote
  that a particle continues: 「行こう。」と彼は言った。 is one sentence).
"""
import re

# A Latin-style terminal run, its closing quotes/brackets, then the whitespace that follows it;
# or a terminal of a script that needs no space, with its closing quotes/brackets.
_BOUNDARY = re.compile(
    r"(?P<latin>[.!?…‼⁇⁈⁉]+)[\"'”’»)\]]*(?P<ws>\s+)"
    r"|[。！？｡।॥؟۔።։]+(?P<close>[」』”’)）\"']*)\s*"
)
# The next word after a boundary, past any opening quotes/brackets.
_NEXT_WORD = re.compile(r"[\"'“‘«(\[¿¡]*(\w*)")
# The token a period ends: the run of non-space characters before it, minus opening brackets.
_DOTTED_ACRONYM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # U.S / e.g / i.e / a.m (final dot excluded)

# Always followed by more of the same sentence (titles precede names, references precede
# numbers). Case-sensitive: "No. 5" is an abbreviation, "the answer was no. The" is not.
HARD_ABBREVIATIONS = frozenset("""
Mr Mrs Ms Dr Prof St Mt Ft Rev Hon Gen Col Lt Sgt Capt Cmdr Adm Maj Gov Sen Rep Pres Messrs Mme Mlle
No Nos Vol Vols Fig Figs Ch Sec Art Eq Ed Eds Op Para Pp Cf Ca Approx Vs Viz
nos vol vols pp p para figs cf ca c approx vs v viz ibid op cit
Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec
""".split())
# Often end a sentence too: split after them only before a typical sentence opener.
SOFT_ABBREVIATIONS = frozenset("etc inc ltd co corp bros jr sr esq plc llc dept univ al".split())
SENTENCE_OPENERS = frozenset("""
The A An In It He She They This That These Those There We I But And However On At As After
For His Her Its Their Our When While Although Since If By From During Following Later
""".split())


def _ends_sentence(text: str, m: re.Match) -> bool:
    """Whether the Latin-style boundary `m` (not at the end of `text`) really ends a sentence."""
    word = _NEXT_WORD.match(text, m.end()).group(1)
    if word[:1].islower():
        return False
    terminal = m.group("latin")
    if terminal != ".":
        return True  # ?, !, ellipsis, ?!, ...: followed by a non-lowercase word
    start = text.rfind(" ", 0, m.start()) + 1
    token = text[start:m.start()].lstrip("\"'“‘«([")
    if token in HARD_ABBREVIATIONS:
        return False
    if len(token) == 1 and token.isupper():
        return False  # an initial: J. R. R. Tolkien
    if token.lower() in SOFT_ABBREVIATIONS or _DOTTED_ACRONYM.fullmatch(token):
        return word in SENTENCE_OPENERS
    return True


def split_sentences(paragraph: str) -> list[str]:
    """The sentences of one paragraph, stripped, empty ones dropped."""
    text = paragraph.strip()
    sentences = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        end = m.end()
        if end >= len(text):
            break
        if m.group("latin") is not None:
            if not _ends_sentence(text, m):
                continue
        elif m.group("close") and text[end] in "とっ":
            continue  # 「行こう。」と彼は言った: a quote followed by the quoting particle goes on
        piece = text[start:end].strip()
        if piece:
            sentences.append(piece)
        start = end
    piece = text[start:].strip()
    if piece:
        sentences.append(piece)
    return sentences
