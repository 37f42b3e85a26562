"""Stream raw documents (a row each, or rows joined: row_documents) from a Hugging Face `datasets` dataset.

`name` is whatever `datasets.load_dataset` accepts: a hub name (bookcorpus, wikimedia/wikipedia),
a local dataset folder (data files in the hub's layout), or a packaged builder such as "json",
"parquet", "text" or "csv" with the files given by the corpus `path` (a file, folder or glob,
passed as `data_files`). A folder written by `Dataset.save_to_disk` is read with
`load_from_disk`. Everything is streamed (`streaming=True`), so a 20 GB dataset is never
materialised, and nothing is cached beside the workflow.
"""
from pathlib import Path
from workflow_scripts.data.sources.row_documents import RowGrouper, row_fields
from workflow_scripts.errors import BadInput


def _describe(name, config, split) -> str:
    return f"Hugging Face dataset {name!r}" + (f" (config {config!r})" if config else "") + f", split {split!r}"


def _load(name: str, config, split: str, data_files):
    import datasets

    folder = Path(name)
    if folder.is_dir() and ((folder / "state.json").exists() or (folder / "dataset_dict.json").exists()):
        ds = datasets.load_from_disk(str(folder))
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise BadInput(f"corpus: {_describe(name, config, split)}: no such split "
                                 f"(it has: {', '.join(ds)})")
            ds = ds[split]
        return ds.to_iterable_dataset()
    kwargs = {"data_files": data_files} if data_files else {}
    return datasets.load_dataset(name, config, split=split, streaming=True, **kwargs)


def _rows(ds, where: str, text_column: str, key_column: str | None):
    """(text, document id or None) per row, checking the columns the corpus names."""
    features = getattr(ds, "features", None)
    for column, key in ((text_column, "text_column"), (key_column, "documents.column")):
        if column is not None and features is not None and column not in features:
            raise BadInput(f"corpus: {where} has no column `{column}` ({key}; it has: {', '.join(features)}): "
                           f"set {key} to one of those")
    for number, row in enumerate(ds):
        yield row_fields(row, f"{where} row {number}", text_column, key_column)


def iter_documents(name: str, config=None, split: str = "train", text_column: str = "text", data_files=None,
                   documents: dict | None = None):
    """The dataset's documents in its order: a row each, or consecutive rows joined as the corpus's
    `documents` block says (row_documents)."""
    where = _describe(name, config, split)
    grouper = RowGrouper(documents)
    try:
        ds = _load(name, config, split, data_files)
    except BadInput:
        raise
    except Exception as e:  # offline hub, unknown name, bad split: all surface here
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"corpus: cannot load {where}: {first_line}") from None
    yield from grouper.group(_rows(ds, where, text_column, grouper.key_column))
    if grouper.block["by"] != "row":
        print(grouper.summary(), flush=True)
