"""Exact duplicate documents of one corpus, against itself and the corpora before it: which (part, document) the sample builder skips.

    python -m workflow_scripts.data.dedup --earlier results/text/wiki/doc_hashes.npz ... \\
        --hashes results/text/mine/doc_hashes.npz --out results/text/mine/duplicates.json

Each hash file is one corpus's (workflow_scripts.data.corpus --hashes): per kept document, in the
order read, the 64-bit hash of its cleaned text and its part. A corpus is named by its file's
folder. --earlier lists the corpora before this one in config order, in that order. A document
is a duplicate when an earlier one has the same hash, "earlier" meaning an earlier corpus in
config order, or earlier in this corpus's reading order; the first occurrence is kept. So a
corpus's drop list depends on it and the corpora before it only, and one file per corpus lets an
edit to corpus j redo the duplicates (and samples) of corpora j, j+1, ... and no others. At 6M
documents the hashes are 48 MB and one np.unique sorts them in a second or two.

The JSON written (atomically), for the corpus of --hashes:
    {"corpus": "mine", "earlier": ["wiki"], "documents": n, "duplicates": d,
     "duplicate_of": {"wiki": 1, "mine": 2},
     "parts": {"part_0.txt": {"documents": n, "drop": [3, 17]}, ...}}
`parts` keys are the part files relative to the JSON's folder; `drop` lists document numbers
(0-based, in file order: the i-th blank-line-separated block) to skip; `duplicate_of` counts,
per corpus, where the kept copy lives.
"""
import argparse
import os
import time
from pathlib import Path
from workflow_scripts.errors import BadInput
from workflow_scripts.cli import one_line_errors


def load_hashes(path: Path):
    """(hash uint64 [N], part uint32 [N], part names) of one corpus; a bad file is one clear line."""
    import numpy as np

    if not path.is_file():
        raise BadInput(f"dedup: document hashes {path} do not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            hashes, parts, names = f["hash"], f["part"], [str(n) for n in f["part_names"]]
    except (OSError, ValueError, KeyError) as e:
        raise BadInput(f"dedup: {path} is not a document-hash file from workflow_scripts.data.corpus ({e})") from None
    if hashes.dtype != np.uint64 or len(hashes) != len(parts) or (len(parts) and parts.max() >= len(names)):
        raise BadInput(f"dedup: {path}: hash and part arrays disagree (truncated or foreign file?)")
    return hashes, parts, names


def index_within_part(parts, num_parts: int):
    """For each document (in reading order), its number within its part: the k-th document written there."""
    import numpy as np

    order = np.argsort(parts, kind="stable")
    counts = np.bincount(parts, minlength=num_parts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    within = np.empty(len(parts), np.int64)
    within[order] = np.arange(len(parts)) - np.repeat(starts, counts)
    return within, counts


def find_duplicates(earlier: list[Path], hash_file: Path, out: Path) -> dict:
    """Write the duplicates JSON of the corpus of `hash_file`, given the corpora before it (hash
    files in config order); returns it."""
    import numpy as np

    out, files = Path(out), [*map(Path, earlier), Path(hash_file)]
    names = [p.parent.name for p in files]
    if len(set(names)) != len(names):
        raise BadInput(f"dedup: two hash files in one folder: {', '.join(map(str, files))}")
    # Earlier corpora: only their hashes matter (8 bytes a document).
    earlier_hashes = [load_hashes(p)[0] for p in files[:-1]]
    hashes, parts, part_names = load_hashes(files[-1])
    all_hashes = np.concatenate([*earlier_hashes, hashes])
    corpus_of = np.repeat(np.arange(len(files)), [*map(len, earlier_hashes), len(hashes)])
    # np.unique's return_index is the FIRST occurrence in the concatenation: config order, then reading order.
    _, first, inverse = np.unique(all_hashes, return_index=True, return_inverse=True)
    offset = len(all_hashes) - len(hashes)
    keeper = first[inverse.reshape(-1)[offset:]]  # for each of this corpus's documents, where its kept copy is
    dup = keeper != np.arange(offset, len(all_hashes))
    kept_in = np.bincount(corpus_of[keeper[dup]], minlength=len(files))
    within, counts = index_within_part(parts, len(part_names))
    result = {"corpus": names[-1], "earlier": names[:-1], "documents": int(len(hashes)),
              "duplicates": int(dup.sum()),
              "duplicate_of": {names[k]: int(v) for k, v in enumerate(kept_in) if v}, "parts": {}}
    for p, part_name in enumerate(part_names):
        key = Path(os.path.relpath(files[-1].parent / part_name, out.parent)).as_posix()
        result["parts"][key] = {"documents": int(counts[p]), "drop": np.sort(within[dup & (parts == p)]).tolist()}
    from workflow_scripts.atomic import write_json

    write_json(out, result)
    return result


def part_drops(duplicates: Path, part: Path) -> tuple[int, set]:
    """(documents the part should hold, the document numbers to skip) for one text part, from the JSON."""
    import json

    duplicates, part = Path(duplicates), Path(part)
    try:
        data = json.loads(duplicates.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInput(f"samples: cannot read duplicates file {duplicates} ({e})") from None
    key = Path(os.path.relpath(part.resolve(), duplicates.resolve().parent)).as_posix()
    entry = data.get("parts", {}).get(key)
    if entry is None:
        raise BadInput(f"samples: duplicates file {duplicates} has no entry for {key} "
                         "(written for another corpus? rerun its find_duplicate_documents job)")
    return entry["documents"], set(entry["drop"])


@one_line_errors
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--earlier", nargs="*", default=[], type=Path,
                        help="the doc_hashes.npz of the corpora before this one, in config order (the first copy is kept)")
    parser.add_argument("--hashes", required=True, type=Path, help="this corpus's doc_hashes.npz")
    parser.add_argument("--out", required=True, type=Path, help="the corpus's duplicates JSON to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = find_duplicates(args.earlier, args.hashes, args.out)
    where = ", ".join(f"{v} of {k}" for k, v in result["duplicate_of"].items())
    print(f"dedup: {result['corpus']}: {result['documents']} documents, {result['duplicates']} exact duplicates"
          + (f" (the kept copy in: {where})" if where else "")
          + f", checked against {len(args.earlier)} earlier corpora, in {time.perf_counter() - started:.1f} s"
          f" -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
