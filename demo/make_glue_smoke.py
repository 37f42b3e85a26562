"""Write the GLUE smoke set: every GLUE task's exact file layout, filled from templates (NOT GLUE data).

    python demo/make_glue_smoke.py                    # rewrites demo/glue_smoke/
    python demo/make_glue_smoke.py --out DIR --hub-layout HUBDIR

Deterministic (a fixed seed, no clock, no network): rerunning it reproduces the committed
files byte for byte. Each task has a signal a tiny model can pick up (sentiment words, word
order, shared words), so a smoke fine-tune can beat chance, but the scores mean nothing.
--hub-layout also writes the same rows the way the Hugging Face hub repo nyu-mll/glue lays
them out (<config>/<split>-00000-of-00001.parquet + a README.md declaring configs and label
names), so the hub code path can be tested offline with datasets.load_dataset(HUBDIR, config).
"""
import argparse
import random
from pathlib import Path

SEED = 20240611
SIZES = {"train": 96, "dev": 32, "test": 32}
SMALL_TRAIN = 64  # RTE and WNLI are GLUE's small tasks; keep them smaller here too

PEOPLE = ["teacher", "doctor", "farmer", "pilot", "singer", "painter", "student", "lawyer", "baker",
          "nurse", "writer", "driver", "sailor", "judge", "chef", "poet"]
PLACES = ["park", "kitchen", "library", "garden", "station", "market", "office", "school", "harbor",
          "museum", "theater", "village"]
ACTIVITIES = ["reading a book", "playing the piano", "cooking dinner", "painting a wall", "writing a letter",
              "fixing a bike", "singing a song", "watching a film", 'reading "the hobbit"', "feeding a cat"]
OBJECTS = ["book", "letter", "window", "apple", "ticket", "car", "song", "box", "map", "lamp"]
VERBS = ["opened", "found", "carried", "painted", "sold", "bought", "dropped", "cleaned", "lost", "wrote"]
POSITIVE = ["wonderful", "brilliant", "delightful", "charming", "moving", "superb", "enjoyable", "beautiful",
            "funny", "gripping"]
NEGATIVE = ["terrible", "boring", "awful", "dull", "clumsy", "painful", "tedious", "ugly", "lifeless", "bland"]
SKILLS = ["python", "chess", "french", "guitar", "cooking", "swimming", "drawing", "algebra", "typing", "sailing"]
CITIES = ["paris", "tokyo", "lima", "oslo", "cairo", "delhi", "quito", "rome", "seoul", "dublin"]
MATCHED_GENRES = ["fiction", "government", "slate", "telephone", "travel"]
MISMATCHED_GENRES = ["facetoface", "letters", "nineeleven", "oup", "verbatim"]

# The hub's label ids (nyu-mll/glue class_label names), in id order.
HUB_LABELS = {
    "cola": ["unacceptable", "acceptable"], "sst2": ["negative", "positive"],
    "mrpc": ["not_equivalent", "equivalent"], "qqp": ["not_duplicate", "duplicate"],
    "mnli": ["entailment", "neutral", "contradiction"], "ax": ["entailment", "neutral", "contradiction"],
    "qnli": ["entailment", "not_entailment"], "rte": ["entailment", "not_entailment"],
    "wnli": ["not_entailment", "entailment"], "stsb": None,
}


def sentence(words: list) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:]


def parses(text: str) -> tuple:
    """Binary and Penn-style parse strings shaped like MNLI's (a flat right-branching tree)."""
    words = text.split()
    binary = " ".join(f"( {w}" for w in words[:-1]) + f" {words[-1]}" + " )" * (len(words) - 1)
    return binary, "(ROOT (S " + " ".join(f"(X {w})" for w in words) + "))"


# Each maker returns (text_a, text_b or None, label in the GLUE folder's vocabulary).

def make_cola(rng):
    words = ["the", rng.choice(PEOPLE), rng.choice(VERBS), "the", rng.choice(OBJECTS), "."]
    if rng.random() < 0.5:
        return sentence(words), None, "1"
    broken = words[:-1]
    rng.shuffle(broken)  # scrambled word order: the signal
    if broken == words[:-1]:
        broken.reverse()
    return sentence(broken + ["."]), None, "0"


def make_sst2(rng):
    good = rng.random() < 0.5
    pool = POSITIVE if good else NEGATIVE
    a, b = rng.sample(pool, 2)
    subject = rng.choice(["the film", "this movie", "the story", "the acting", "the ending"])
    return f"{subject} is {a} and {b} .", None, "1" if good else "0"


def make_mrpc(rng):
    person, obj, verb, place = rng.choice(PEOPLE), rng.choice(OBJECTS), rng.choice(VERBS), rng.choice(PLACES)
    first = sentence(["the", person, verb, "the", obj, "in", "the", place, "."])
    if rng.random() < 0.5:
        return first, sentence(["in", "the", place, ",", "the", person, verb, "the", obj, "."]), "1"
    other = rng.choice([p for p in PEOPLE if p != person])
    return first, sentence(["the", other, rng.choice(VERBS), "a", rng.choice(OBJECTS), "at", "home", "."]), "0"


def make_stsb(rng):
    person, act, place = rng.choice(PEOPLE), rng.choice(ACTIVITIES), rng.choice(PLACES)
    kept = rng.randint(0, 3)  # how many of the three parts the second sentence keeps
    parts = [person, act, place]
    other = [rng.choice([p for p in PEOPLE if p != person]), rng.choice([a for a in ACTIVITIES if a != act]),
             rng.choice([p for p in PLACES if p != place])]
    keep = set(rng.sample(range(3), kept))
    mixed = [parts[i] if i in keep else other[i] for i in range(3)]
    score = min(5.0, max(0.0, kept * 5 / 3 + rng.uniform(-0.4, 0.4)))
    return (sentence(["a", person, "is", act, "in", "the", place, "."]),
            sentence(["a", mixed[0], "is", mixed[1], "in", "the", mixed[2], "."]), f"{score:.3f}")


def make_qqp(rng):
    skill = rng.choice(SKILLS)
    # Fields that start with a quote, as real QQP/MNLI rows do: only a reader with quoting off keeps them whole.
    first = rng.choice([f"How do I learn {skill} ?", f'What does "{skill}" mean ?', f"Is {skill} hard to learn ?",
                        f'"{skill}" : is it hard to learn ?', f'"{skill} for beginners : where do I start ?'])
    if rng.random() < 0.5:
        return first, f"What is the best way to learn {skill} ?", "1"
    other = rng.choice([s for s in SKILLS if s != skill])
    return first, f"Why do people like {other} so much ?", "0"


def make_nli(rng, labels=("entailment", "neutral", "contradiction")):
    person, act, place = rng.choice(PEOPLE), rng.choice(ACTIVITIES), rng.choice(PLACES)
    premise = sentence(["the", person, "is", act, "in", "the", place, "."])
    quoted = rng.random()
    if quoted < 0.1:  # reported speech, quotes balanced
        premise = f'" {premise[:-2]} , " she said .'
    elif quoted < 0.15:  # an opening quote never closed (MNLI has these)
        premise = f'"{premise}'
    label = rng.choice(labels)
    hypothesis = {
        "entailment": rng.choice([f"A {person} is {act} .", f"Someone is in the {place} ."]),
        "neutral": rng.choice([f"The {person} is {act} with a friend .", f"The {person} is happy today ."]),
        "contradiction": rng.choice([f"The {person} is not {act} .", f"Nobody is in the {place} ."]),
        "not_entailment": rng.choice([f"The {person} is not {act} .", f"The {person} is {act} with a friend ."]),
    }[label]
    return premise, hypothesis, label


def make_qnli(rng):
    person, place = rng.choice(PEOPLE), rng.choice(PLACES)
    question = f"Where does the {person} work ?"
    if rng.random() < 0.5:
        return question, f"The {person} works in the {place} every day .", "entailment"
    return question, f"The {rng.choice(PEOPLE)} likes {rng.choice(ACTIVITIES)} on sundays .", "not_entailment"


def make_rte(rng):
    person, city, place, act = rng.choice(PEOPLE), rng.choice(CITIES), rng.choice(PLACES), rng.choice(ACTIVITIES)
    first = sentence(["the", person, "from", city, "was", act, "in", "the", place, "yesterday", "."])
    if rng.random() < 0.5:
        return first, sentence(["the", person, "was", "in", "the", place, "."]), "entailment"
    return first, sentence(["the", person, "has", "never", "been", "to", city, "."]), "not_entailment"


def make_wnli(rng):
    big, small = rng.sample(OBJECTS, 2)
    first = f"The {big} did not fit in the {small} because it was too big ."
    if rng.random() < 0.5:
        return first, f"The {big} was too big .", "1"
    return first, f"The {small} was too big .", "0"


# ---- writers: the exact GLUE file layout per task ------------------------------------------

def tsv(path: Path, header, rows) -> None:
    lines = (["\t".join(header)] if header else []) + ["\t".join(str(v) for v in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def draw(rng, maker, n):
    return [maker(rng) for _ in range(n)]


def write_single(root, task, rng, maker, hub, records):
    """CoLA and SST-2: one sentence per row."""
    for split in ("train", "dev"):
        rows = draw(rng, maker, SIZES[split])
        records[(hub, split)] = rows
        if task == "CoLA":  # no header: source, label, original annotation ('*' marks unacceptable), sentence
            tsv(root / task / f"{split}.tsv", None,
                [("smk01", lab, "" if lab == "1" else "*", a) for a, _, lab in rows])
        else:
            tsv(root / task / f"{split}.tsv", ["sentence", "label"], [(a, lab) for a, _, lab in rows])
    rows = draw(rng, maker, SIZES["test"])
    records[(hub, "test")] = rows
    tsv(root / task / "test.tsv", ["index", "sentence"], [(i, a) for i, (a, _, _) in enumerate(rows)])


def write_mrpc(root, rng, records):
    header = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    for split in ("train", "dev", "test"):
        rows = draw(rng, make_mrpc, SIZES[split])
        records[("mrpc", split)] = rows
        ids = [(rng.randint(100000, 3999999), rng.randint(100000, 3999999)) for _ in rows]
        if split == "test":
            tsv(root / "MRPC/test.tsv", ["index"] + header[1:],
                [(i, *ids[i], a, b) for i, (a, b, _) in enumerate(rows)])
        else:
            tsv(root / f"MRPC/{split}.tsv", header, [(lab, *ids[i], a, b) for i, (a, b, lab) in enumerate(rows)])


def write_stsb(root, rng, records):
    header = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]
    for split in ("train", "dev", "test"):
        rows = draw(rng, make_stsb, SIZES[split])
        records[("stsb", split)] = rows
        meta = [(rng.choice(["main-captions", "main-news", "main-forums"]), rng.choice(["MSRvid", "images", "headlines"]),
                 rng.choice(["2012test", "2014", "2015"]), f"{rng.randint(1, 1500):04d}") for _ in rows]
        out = [(i, *meta[i], "none", "none", a, b) + (() if split == "test" else (lab,))
               for i, (a, b, lab) in enumerate(rows)]
        tsv(root / f"STS-B/{split}.tsv", header + ([] if split == "test" else ["score"]), out)


def write_qqp(root, rng, records):
    for split in ("train", "dev", "test"):
        rows = draw(rng, make_qqp, SIZES[split])
        records[("qqp", split)] = rows
        if split == "test":
            tsv(root / "QQP/test.tsv", ["id", "question1", "question2"], [(i, a, b) for i, (a, b, _) in enumerate(rows)])
        else:
            tsv(root / f"QQP/{split}.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                [(1000 + i, 2 * i + 1, 2 * i + 2, a, b, lab) for i, (a, b, lab) in enumerate(rows)])


def write_mnli(root, rng, records):
    base = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
            "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
    plan = [("train", "train", MATCHED_GENRES), ("dev_matched", "validation_matched", MATCHED_GENRES),
            ("dev_mismatched", "validation_mismatched", MISMATCHED_GENRES),
            ("test_matched", "test_matched", MATCHED_GENRES), ("test_mismatched", "test_mismatched", MISMATCHED_GENRES)]
    for name, hub_split, genres in plan:
        rows = draw(rng, make_nli, SIZES[name.split("_")[0]])
        records[("mnli", hub_split)] = rows
        out = []
        for i, (a, b, lab) in enumerate(rows):
            prompt = rng.randint(1000, 99999)
            row = [i, prompt, f"{prompt}{lab[0] if name[:4] != 'test' else rng.choice('enc')}", rng.choice(genres),
                   parses(a)[0], parses(b)[0], parses(a)[1], parses(b)[1], a, b]
            if name == "train":
                row += [lab, lab]
            elif name.startswith("dev"):
                # Five annotator labels, the gold one the majority (one dissenter now and then).
                votes = [lab] * 5
                if rng.random() < 0.3:
                    votes[rng.randrange(5)] = rng.choice(["entailment", "neutral", "contradiction"])
                row += votes + [lab]
            out.append(row)
        extra = {"train": ["label1", "gold_label"], "test": []}.get(name.split("_")[0],
                                                                    [f"label{k}" for k in range(1, 6)] + ["gold_label"])
        tsv(root / f"MNLI/{name}.tsv", base + extra, out)
    rows = draw(rng, make_nli, SIZES["test"])
    records[("ax", "test")] = rows
    tsv(root / "diagnostic/diagnostic.tsv", ["index", "sentence1", "sentence2"],
        [(i, a, b) for i, (a, b, _) in enumerate(rows)])


def write_pair(root, task, hub, rng, maker, records, columns, train_size):
    """QNLI, RTE, WNLI: index, two texts, label."""
    for split in ("train", "dev", "test"):
        rows = draw(rng, maker, train_size if split == "train" else SIZES[split])
        records[(hub, split)] = rows
        if split == "test":
            tsv(root / task / "test.tsv", ["index", *columns], [(i, a, b) for i, (a, b, _) in enumerate(rows)])
        else:
            tsv(root / task / f"{split}.tsv", ["index", *columns, "label"],
                [(i, a, b, lab) for i, (a, b, lab) in enumerate(rows)])


README = """# GLUE smoke set (NOT GLUE)

Written for this project by `demo/make_glue_smoke.py` (deterministic; rerun it to reproduce
these files byte for byte). It is **not** GLUE data and contains none: every row comes from
small English templates (sentiment words for SST-2, scrambled word order for CoLA, shared words
for MRPC/QQP/STS-B, simple premise/hypothesis patterns for MNLI/QNLI/RTE/WNLI/AX).

What it is for: exercising the workflow end to end (readers, fine-tuning, trial selection,
submission.zip and its validator) in seconds on a laptop CPU. **Scores on it mean nothing**
about a model's language understanding, and the submission it produces is not a GLUE submission
(the row counts are not the official test-set counts).

What matches real GLUE exactly: the folder layout (one folder per task, MNLI's
dev_matched/dev_mismatched/test_matched/test_mismatched, diagnostic/diagnostic.tsv for AX),
each file's columns and header (CoLA's train/dev have none), the label vocabularies, tab
separation with quoting off (some rows hold bare `"` characters, as MNLI and QQP do), and
test files with an index column 0..n-1 and no labels.

Sizes: {sizes}. Point `glue.path` in config/config.yaml at a real GLUE folder
(the classic download script's layout) for real fine-tuning.
"""


def write_hub_layout(hub_root: Path, records: dict) -> None:
    """The same rows as nyu-mll/glue's parquet files: hub column names, label ids, idx, test labels -1."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"cola": ("sentence", None), "sst2": ("sentence", None), "mrpc": ("sentence1", "sentence2"),
               "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"),
               "mnli": ("premise", "hypothesis"), "ax": ("premise", "hypothesis"),
               "qnli": ("question", "sentence"), "rte": ("sentence1", "sentence2"), "wnli": ("sentence1", "sentence2")}
    # The GLUE folder's label strings -> the hub's label names.
    folder_to_hub = {"0": 0, "1": 1}
    configs, infos = [], []
    for config in sorted({c for c, _ in records}):
        a_col, b_col = columns[config]
        names = HUB_LABELS[config]
        data_files = []
        for (c, split), rows in sorted(records.items()):
            if c != config:
                continue
            hub_split = {"dev": "validation"}.get(split, split)
            test = hub_split.startswith("test")
            if names is None:
                labels = pa.array([-1.0 if test else float(lab) for _, _, lab in rows], pa.float32())
            else:
                labels = pa.array([-1 if test else (folder_to_hub[lab] if lab in folder_to_hub else names.index(lab))
                                   for _, _, lab in rows], pa.int64())
            table = {a_col: [a for a, _, _ in rows]}
            if b_col:
                table[b_col] = [b for _, b, _ in rows]
            table.update(label=labels, idx=pa.array(range(len(rows)), pa.int32()))
            path = hub_root / config / f"{hub_split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table(table), path)
            data_files.append(f"  - split: {hub_split}\n    path: {config}/{hub_split}-*")
        configs.append(f"- config_name: {config}\n  data_files:\n" + "\n".join(data_files))
        feats = [f"  - name: {a_col}\n    dtype: string"] + ([f"  - name: {b_col}\n    dtype: string"] if b_col else [])
        if names is None:
            feats.append("  - name: label\n    dtype: float32")
        else:
            feats.append("  - name: label\n    dtype:\n      class_label:\n        names:\n"
                         + "\n".join(f"          '{i}': {n}" for i, n in enumerate(names)))
        feats.append("  - name: idx\n    dtype: int32")
        infos.append(f"- config_name: {config}\n  features:\n" + "\n".join(feats))
    (hub_root / "README.md").write_text(
        "---\ndataset_info:\n" + "\n".join(infos) + "\nconfigs:\n" + "\n".join(configs) + "\n---\n"
        "# GLUE smoke set in the Hugging Face hub layout (NOT GLUE; see demo/glue_smoke/README.md)\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "glue_smoke",
                        help="the GLUE-layout folder to write (default: demo/glue_smoke next to this script)")
    parser.add_argument("--hub-layout", type=Path, help="also write the rows laid out like the hub repo nyu-mll/glue")
    args = parser.parse_args(argv)
    rng = random.Random(SEED)
    records = {}
    root = args.out
    write_single(root, "CoLA", rng, make_cola, "cola", records)
    write_single(root, "SST-2", rng, make_sst2, "sst2", records)
    write_mrpc(root, rng, records)
    write_stsb(root, rng, records)
    write_qqp(root, rng, records)
    write_mnli(root, rng, records)
    write_pair(root, "QNLI", "qnli", rng, make_qnli, records, ["question", "sentence"], SIZES["train"])
    write_pair(root, "RTE", "rte", rng, lambda r: make_nli(r, ("entailment", "not_entailment")) if r.random() < 0.5
               else make_rte(r), records, ["sentence1", "sentence2"], SMALL_TRAIN)
    write_pair(root, "WNLI", "wnli", rng, make_wnli, records, ["sentence1", "sentence2"], SMALL_TRAIN)
    sizes = (f"train {SIZES['train']} rows ({SMALL_TRAIN} for RTE and WNLI), dev {SIZES['dev']}, "
             f"test {SIZES['test']} per task (MNLI: each of its two dev and two test files; AX {SIZES['test']})")
    (root / "README.md").write_text(README.format(sizes=sizes), encoding="utf-8")
    print(f"wrote the GLUE smoke set to {root}")
    if args.hub_layout:
        write_hub_layout(args.hub_layout, records)
        print(f"wrote its hub layout to {args.hub_layout}")


if __name__ == "__main__":
    main()
