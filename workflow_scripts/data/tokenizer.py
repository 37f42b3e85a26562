"""The workflow's tokenizer folder: a pretrained one copied, or a BERT WordPiece trained on the text parts.

    python -m workflow_scripts.data.tokenizer --spec '<json tokenizer config>' --texts [part files...] --out DIR

spec is config `tokenizer:`, either {pretrained: <local dir or hub name>} or
{train: {vocab_size, min_frequency, lowercase, strip_accents}}. DIR is written whole or not at all (built in a
temporary folder beside it, then renamed) and holds what AutoTokenizer.from_pretrained needs for
a fast tokenizer plus the classic BERT files: tokenizer.json, tokenizer_config.json,
special_tokens_map.json and, for WordPiece vocabularies, vocab.txt.
"""
import argparse
import json
import time
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.cli import json_object, one_line_errors
from workflow_scripts.errors import BadInput

# BERT's special tokens, in the order a trained vocabulary gets them: [PAD] is id 0, which the
# samples and models assume for padding.
SPECIAL_TOKENS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "mask_token": "[MASK]"}
REQUIRED_SPECIALS = ("pad_token", "cls_token", "sep_token", "mask_token")
MODEL_MAX_LENGTH = 512  # BERT's position embeddings; recorded in tokenizer_config.json
# A local folder holds a vocabulary in one of these forms (without one, transformers quietly builds
# a tokenizer of the special tokens alone, and the samples jobs crash on it).
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
NEEDS = "a tokenizer folder needs tokenizer.json, or vocab.txt (a BERT WordPiece vocabulary)"


def check_pretrained(name: str) -> None:
    """One line if `pretrained` names a local folder without a vocabulary, or a path that is no folder
    (a hub name, org/name, is left to the loader). rules/common.smk calls it at parse time, load_pretrained
    before anything is written."""
    folder = Path(name)
    if folder.is_dir():
        if not any((folder / f).is_file() for f in VOCABULARY_FILES):
            raise BadInput(f"tokenizer: cannot load pretrained tokenizer folder {folder}: it holds no vocabulary; "
                           f"{NEEDS} (config tokenizer.pretrained)")
        check_readable(folder)
    elif folder.exists() or name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise BadInput(f"tokenizer: cannot load pretrained tokenizer {name}: no such folder; {NEEDS} "
                       "(config tokenizer.pretrained: a folder, or a hub name org/name)")


def check_readable(folder: Path) -> None:
    """One line if the folder's tokenizer.json or vocab.txt is cut short or not text: the tokenizer job
    would otherwise replace the workflow's tokenizer folder and then fail on it (a few ms at parse time)."""
    for name in ("tokenizer.json", "vocab.txt"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if name == "tokenizer.json":
                json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadInput(f"tokenizer: {path} is damaged ({type(e).__name__}: {e}); copy the tokenizer folder "
                           "again (config tokenizer.pretrained)") from None
        if not text.strip():
            raise BadInput(f"tokenizer: {path} is empty; copy the tokenizer folder again (config tokenizer.pretrained)")


def _bare_vocab_is_cased(vocab_file: Path) -> bool:
    """A lone vocab.txt carries no casing flag: call it cased when it holds capitalized tokens
    (bert-base-cased has ~20% such tokens, uncased vocabularies none outside [SPECIALS])."""
    tokens = [t for t in vocab_file.read_text(encoding="utf-8").split("\n") if t and not t.startswith("[")]
    return sum(t[:1].isupper() for t in tokens) > 0.01 * max(len(tokens), 1)


def load_pretrained(name: str):
    """A fast tokenizer from a local folder or a hub name, or one clear line saying why not."""
    from transformers import AutoTokenizer, BertTokenizer

    check_pretrained(name)
    folder = Path(name)
    try:
        if folder.is_dir() and not (folder / "tokenizer.json").exists() and not (
                folder / "tokenizer_config.json").exists() and (folder / "vocab.txt").exists():
            # A bare BERT vocabulary: AutoTokenizer cannot tell its class, BertTokenizer can.
            tok = BertTokenizer.from_pretrained(str(folder), do_lower_case=not _bare_vocab_is_cased(
                folder / "vocab.txt"), model_max_length=MODEL_MAX_LENGTH)
        else:
            tok = AutoTokenizer.from_pretrained(name)
    except Exception as e:  # offline hub, missing files, unknown class: all land here
        where = f"folder {folder}" if folder.exists() else f"{name!r} (not a local folder; as a hub name)"
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"tokenizer: cannot load pretrained tokenizer {where}: {first_line}") from None
    if getattr(tok, "backend_tokenizer", None) is None:
        raise BadInput(f"tokenizer: {name} loads as a slow (Python) tokenizer; the workflow needs a fast one "
                         "(a folder with tokenizer.json, or a WordPiece vocab.txt)")
    missing = [k for k in REQUIRED_SPECIALS if getattr(tok, k, None) is None]
    if missing:
        raise BadInput(f"tokenizer: {name} has no {', '.join(missing)}: masked-LM pretraining needs "
                         "pad, cls, sep and mask tokens")
    if len(tok) <= len(tok.all_special_tokens):
        raise BadInput(f"tokenizer: pretrained tokenizer {name} has {len(tok)} tokens, its special tokens alone "
                       f"(no vocabulary); {NEEDS}")
    return tok


def read_lines(texts: list[Path], progress_every: int = 1_000_000):
    """Non-empty lines (sentences) of the text parts, streamed, with a progress line now and then."""
    count = 0
    for path in texts:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    count += 1
                    if count % progress_every == 0:
                        print(f"tokenizer: {count} sentences read (now in {path})", flush=True)
                    yield line
    print(f"tokenizer: {count} sentences read; computing the vocabulary", flush=True)


def train_wordpiece(texts: list[Path], vocab_size: int = 30522, min_frequency: int = 2, lowercase: bool = True,
                    strip_accents: bool | None = None):
    """A BERT WordPiece tokenizer trained on the text parts, wrapped for save_pretrained.

    Mixed scripts work as in BERT's own vocabularies: the normalizer puts spaces around every CJK
    ideograph (handle_chinese_chars), so each is a word of its own, and the pre-tokenizer splits on
    whitespace and punctuation (Cyrillic, Devanagari, Latin words stay whole for WordPiece to cut).
    strip_accents None follows lowercase, as BERT's uncased models do; that also drops the combining
    vowel signs and viramas of Devanagari and similar scripts (है -> ह): set false for such corpora.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizer

    missing = [str(p) for p in texts if not Path(p).is_file()]
    if missing:
        raise BadInput(f"tokenizer: text part {missing[0]} does not exist")
    if not texts or not any(Path(p).stat().st_size for p in texts):
        raise BadInput("tokenizer: no text to train on (--texts is empty or every part is empty)")
    tok = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    # BERT's normalizer: cleans control characters, spaces CJK characters, and lowercases and
    # strips accents together (strip_accents=None follows lowercase), as in the original vocab.
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=lowercase,
                                                strip_accents=strip_accents)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS.values()),
                                        continuing_subword_prefix="##", show_progress=False)
    tok.train_from_iterator(read_lines(texts), trainer=trainer)
    cls, sep = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    # tokenizer_object=, not vocab_file=: transformers 5 ignores vocab_file here.
    return BertTokenizer(tokenizer_object=tok, do_lower_case=lowercase, strip_accents=strip_accents,
                         model_max_length=MODEL_MAX_LENGTH, **SPECIAL_TOKENS)


def save(tok, out: Path) -> None:
    """save_pretrained into a temporary folder beside `out`, add the classic files, then rename."""
    with atomic.replacing_dir(out) as tmp:
        tok.save_pretrained(str(tmp))
        # transformers 5 writes only tokenizer.json + tokenizer_config.json; older readers (and
        # people) expect vocab.txt and special_tokens_map.json beside them.
        backend = json.loads(tok.backend_tokenizer.to_str())
        if backend["model"]["type"] == "WordPiece":
            vocab = sorted(tok.backend_tokenizer.get_vocab(with_added_tokens=True).items(), key=lambda kv: kv[1])
            if [i for _, i in vocab] != list(range(len(vocab))):
                raise BadInput("tokenizer: the vocabulary's ids are not 0..N-1; cannot write vocab.txt")
            (tmp / "vocab.txt").write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
        specials = {k: str(v) for k, v in tok.special_tokens_map.items() if isinstance(v, str)}
        (tmp / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="config `tokenizer:` as JSON")
    parser.add_argument("--texts", nargs="*", default=[], type=Path, help="text parts (training only)")
    parser.add_argument("--out", required=True, type=Path, help="tokenizer folder to write")
    args = parser.parse_args(argv)
    spec = json_object(args.spec, "--spec", "tokenizer")
    start = time.monotonic()
    if spec.get("pretrained"):
        print(f"tokenizer: loading pretrained {spec['pretrained']}", flush=True)
        tok = load_pretrained(spec["pretrained"])
    elif "train" in spec:
        train = {"vocab_size": 30522, "min_frequency": 2, "lowercase": True, **(spec["train"] or {})}
        print(f"tokenizer: training WordPiece {train} on {len(args.texts)} text part(s)", flush=True)
        tok = train_wordpiece(args.texts, **train)
        if len(tok) < train["vocab_size"]:
            print(f"tokenizer: note: the text yields only {len(tok)} of vocab_size={train['vocab_size']} "
                  f"entries (min_frequency={train['min_frequency']}); the vocabulary is that size", flush=True)
    else:
        raise BadInput("tokenizer: the spec needs `pretrained` (a folder or hub name) or `train` ({vocab_size, ...})")
    save(tok, args.out)
    ids = {k: tok.convert_tokens_to_ids(getattr(tok, k)) for k in SPECIAL_TOKENS if getattr(tok, k, None)}
    print(f"tokenizer: wrote {args.out} in {time.monotonic() - start:.1f} s: vocabulary {len(tok)}, "
          f"special ids {ids}", flush=True)


if __name__ == "__main__":
    main()
