"""Read a GLUE task split from a GLUE-layout folder or from the Hugging Face hub copy."""
import csv
import functools
from pathlib import Path
from workflow_scripts.glue.tasks import Example, Split, Task
from workflow_scripts.errors import BadInput

# What to do about a damaged task file (the dir reader) or a dataset not in nyu-mll/glue's layout (the hub's).
FIX_FILE = "fix the file, or copy the task's files from a GLUE download again"
FIX_HUB = "point glue.name at nyu-mll/glue or a copy in its layout, or use glue.source: dir"


def read_tsv(path: Path, names: tuple | None = None):
    """Yield (line number, {column: value}, header) from a GLUE TSV; quoting off (MNLI/QQP hold bare quotes).

    `names` gives the columns of a header-less file (CoLA train/dev). Rows with fewer fields
    than the header come back with the missing columns absent, for the caller to judge.
    """
    if not path.is_file():
        raise BadInput(f"{path}: file not found (glue.path must be a folder in the standard GLUE layout)")
    # utf-8-sig: some distributed copies of MRPC start with a byte-order mark before "Quality".
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = names
        if header is None:
            header = next(reader, None)
            if header is None:
                raise BadInput(f"{path}: empty file (expected a header line): {FIX_FILE}")
        for row in reader:
            if row:
                yield reader.line_num, dict(zip(header, row, strict=False)), header


def _parse_label(task: Task, value: str, where: str):
    if task.is_regression:
        try:
            return float(value)
        except ValueError:
            raise BadInput(f"{where}: {task.label} {value!r} is not a number: {FIX_FILE}") from None
    if value not in task.labels:
        raise BadInput(f"{where}: {task.label} {value!r} is not one of {', '.join(task.labels)}: {FIX_FILE}")
    return task.labels.index(value)


def read_dir_split(task: Task, split: Split, root) -> list:
    """One split of a GLUE-layout folder as Examples."""
    path = Path(root) / split.path
    labelled = split.labelled
    names = task.no_header if labelled else None
    # AX is scored with the MNLI model but keeps its own (RTE-style) column names.
    text_a, text_b = ("sentence1", "sentence2") if split.name == "diagnostic" else (task.text_a, task.text_b)
    needed = [c for c in (text_a, text_b) if c] + ([task.label] if labelled else [task.test_index])
    examples, skipped, checked = [], 0, False
    for line, row, header in read_tsv(path, names):
        if not checked:
            missing = [c for c in needed if c not in header]
            if missing:
                raise BadInput(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)}): {FIX_FILE}")
            checked = True
        if any(c not in row for c in needed):
            # The real QQP train file holds a few rows with missing fields; every reader of
            # GLUE skips them. Dev and test rows must all be there (they are scored / submitted).
            if split.name == "train":
                skipped += 1
                continue
            raise BadInput(f"{path}, line {line}: {len(row)} fields, expected {len(header)}: {FIX_FILE}")
        where = f"{path}, line {line}"
        if labelled:
            label, index = _parse_label(task, row[task.label], where), len(examples)
        else:
            label = None
            try:
                index = int(row[task.test_index])
            except ValueError:
                raise BadInput(f"{where}: {task.test_index} {row[task.test_index]!r} is not an integer: {FIX_FILE}") from None
        examples.append(Example(row[text_a], row[text_b] if text_b else None, label, index))
    if skipped:
        print(f"{path}: skipped {skipped} rows with missing fields", flush=True)
    if not examples:
        raise BadInput(f"{path}: no examples: {FIX_FILE}")
    return examples


# ---- the Hugging Face hub copy (nyu-mll/glue) -----------------------------------------------

@functools.lru_cache(maxsize=None)
def _hub_dataset(name: str, config: str, cache_dir: str | None = None):
    import datasets

    # A local folder laid out like the hub repo: datasets' cache key for it can miss edits
    # to the files (seen with datasets 5.2), so rebuild its Arrow cache on every load.
    mode = "force_redownload" if Path(name).expanduser().is_dir() else None
    try:
        return datasets.load_dataset(name, config, download_mode=mode, cache_dir=cache_dir)
    except Exception as e:  # offline, unknown name or config: say which, in one line
        raise BadInput(f"glue.name={name!r}: cannot load config {config!r} ({type(e).__name__}: {e})") from None


def read_hub_split(task: Task, split: Split, name: str, cache_dir: str | None = None) -> list:
    """One split of the hub dataset (or a local folder laid out like the hub repo) as Examples.

    `cache_dir`: datasets' cache folder (None: the Hugging Face default).
    """
    dd = _hub_dataset(name, split.hub_config, cache_dir)
    if split.hub_split not in dd:
        raise BadInput(f"{name} ({split.hub_config}): no split {split.hub_split!r} (has: {', '.join(dd)}): {FIX_HUB}")
    ds = dd[split.hub_split]
    where = f"{name} ({split.hub_config}/{split.hub_split})"
    text_a, text_b = ("premise", "hypothesis") if split.name == "diagnostic" else (task.hub_text_a, task.hub_text_b)
    labelled = split.labelled
    needed = [c for c in (text_a, text_b) if c] + ["label" if labelled else "idx"]
    for c in needed:
        if c not in ds.column_names:
            raise BadInput(f"{where}: no column {c!r} (columns: {', '.join(ds.column_names)}): {FIX_HUB}")
    # Whole columns as lists: per-row indexing of a datasets Column is ~50x slower (QQP: 364k rows).
    cols = {c: ds[c][:] for c in needed}
    for c, values in cols.items():
        # A repo whose README declares the features fills an absent column with nulls.
        nulls = [i for i, v in enumerate(values) if v is None]
        if nulls and len(nulls) == len(values):
            raise BadInput(f"{where}: no column {c!r} (every value is null): {FIX_HUB}")
        if nulls:
            raise BadInput(f"{where}, row {nulls[0]}: {c!r} is null: {FIX_HUB}")
    examples = []
    for i in range(len(ds)):
        if labelled:
            label = cols["label"][i]
            if task.is_regression:
                label = float(label)
            elif not 0 <= label < task.num_labels:
                raise BadInput(f"{where}, row {i}: label {label} is not a label id 0..{task.num_labels - 1}: {FIX_HUB}")
            index = i
        else:
            label, index = None, int(cols["idx"][i])
        examples.append(Example(cols[text_a][i], cols[text_b][i] if text_b else None, label, index))
    if not examples:
        raise BadInput(f"{where}: no examples: {FIX_HUB}")
    return examples


def read_split(task: Task, split: Split, glue: dict) -> list:
    """Examples of one split from the configured source (config `glue:`)."""
    if glue["source"] == "dir":
        return read_dir_split(task, split, glue["path"])
    if glue["source"] == "huggingface":
        # cache_dir is handed over apart from the rest (finetune --cache-dir): absent means the default.
        return read_hub_split(task, split, glue["name"], glue.get("cache_dir"))
    raise BadInput(f"glue.source={glue['source']!r}: expected dir or huggingface")

