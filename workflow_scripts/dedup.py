"""Exact duplicate documents across and within corpora: which (part, document) the sample builder skips.

    python -m workflow_scripts.dedup --hashes results/text/wiki/doc_hashes.npz ... --out results/text/duplicates.json

Each --hashes file is one corpus's (workflow_scripts.corpus --hashes): per kept document, in the
order read, the 64-bit hash of its cleaned text and its part. The corpus is named by the file's
folder; the files come in config order. A document is a duplicate when an earlier one has the
same hash, "earlier" meaning an earlier corpus in config order, or earlier in the same corpus's
reading order; the first occurrence is kept. At 6M documents the hashes are 48 MB and one
np.unique sorts them in a second or two.

The JSON written (atomically):
    {"documents": N, "duplicates": D,
     "corpora": {"wiki": {"documents": n, "duplicates": d, "duplicate_of": {"wiki": d}}, ...},
     "parts": {"wiki/part_0.txt": {"documents": n, "drop": [3, 17]}, ...}}
`parts` keys are the part files relative to the JSON's folder; `drop` lists document numbers
(0-based, in file order: the i-th blank-line-separated block) to skip; `duplicate_of` counts,
per corpus, where the kept copy lives.
"""
import argparse
import os
import time
from pathlib import Path


def load_hashes(path: Path):
    """(hash uint64 [N], part uint32 [N], part names) of one corpus; a bad file is one clear line."""
    import numpy as np

    if not path.is_file():
        raise SystemExit(f"dedup: document hashes {path} do not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            hashes, parts, names = f["hash"], f["part"], [str(n) for n in f["part_names"]]
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"dedup: {path} is not a document-hash file from workflow_scripts.corpus ({e})") from None
    if hashes.dtype != np.uint64 or len(hashes) != len(parts) or (len(parts) and parts.max() >= len(names)):
        raise SystemExit(f"dedup: {path}: hash and part arrays disagree (truncated or foreign file?)")
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


def find_duplicates(hash_files: list[Path], out: Path) -> dict:
    """Write the duplicates JSON for the corpora's hash files (in config order); returns it."""
    import numpy as np

    out = Path(out)
    loaded = [load_hashes(Path(p)) for p in hash_files]
    names = [Path(p).parent.name for p in hash_files]
    if len(set(names)) != len(names):
        raise SystemExit(f"dedup: two hash files in one folder: {', '.join(map(str, hash_files))}")
    all_hashes = np.concatenate([h for h, _, _ in loaded]) if loaded else np.zeros(0, np.uint64)
    corpus_of = np.repeat(np.arange(len(loaded)), [len(h) for h, _, _ in loaded])
    # np.unique's return_index is the FIRST occurrence in the concatenation: config order, then reading order.
    _, first, inverse = np.unique(all_hashes, return_index=True, return_inverse=True)
    keeper = first[inverse.reshape(-1)]  # for each document, the position of the copy that is kept
    is_dup = keeper != np.arange(len(all_hashes))
    result = {"documents": int(len(all_hashes)), "duplicates": int(is_dup.sum()), "corpora": {}, "parts": {}}
    offset = 0
    for c, ((hashes, parts, part_names), hash_file, name) in enumerate(zip(loaded, hash_files, names)):
        n = len(hashes)
        dup = is_dup[offset:offset + n]
        kept_in = corpus_of[keeper[offset:offset + n][dup]]
        within, counts = index_within_part(parts, len(part_names))
        result["corpora"][name] = {
            "documents": n, "duplicates": int(dup.sum()),
            "duplicate_of": {names[k]: int(v) for k, v in enumerate(np.bincount(kept_in, minlength=len(names))) if v}}
        for p, part_name in enumerate(part_names):
            key = Path(os.path.relpath(Path(hash_file).parent / part_name, out.parent)).as_posix()
            drop = np.sort(within[dup & (parts == p)])
            result["parts"][key] = {"documents": int(counts[p]), "drop": drop.tolist()}
        offset += n
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
        raise SystemExit(f"samples: cannot read duplicates file {duplicates} ({e})") from None
    key = Path(os.path.relpath(part.resolve(), duplicates.resolve().parent)).as_posix()
    entry = data.get("parts", {}).get(key)
    if entry is None:
        raise SystemExit(f"samples: duplicates file {duplicates} has no entry for {key} "
                         "(written for other corpora? rerun find_duplicate_documents)")
    return entry["documents"], set(entry["drop"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", nargs="+", required=True, type=Path,
                        help="each corpus's doc_hashes.npz, in config order (the first copy is kept)")
    parser.add_argument("--out", required=True, type=Path, help="the duplicates JSON to write")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = find_duplicates(args.hashes, args.out)
    for name, c in result["corpora"].items():
        where = ", ".join(f"{v} of {k}" for k, v in c["duplicate_of"].items())
        print(f"dedup: {name}: {c['documents']} documents, {c['duplicates']} exact duplicates"
              + (f" (the kept copy in: {where})" if where else ""), flush=True)
    print(f"dedup: {result['documents']} documents, {result['duplicates']} duplicates to skip, "
          f"in {time.perf_counter() - started:.1f} s -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
