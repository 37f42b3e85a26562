"""GLUE readers on the smoke set: every task and split, the hub layout gives the same examples, bad files fail in one line."""
import shutil

import pytest

from workflow_scripts.glue import readers, tasks
from workflow_scripts.errors import BadInput

SMOKE = "demo/glue_smoke"


@pytest.fixture(scope="module")
def smoke(repo_root):
    return {"source": "dir", "path": str(repo_root / SMOKE)}


def all_splits(task):
    return (task.train_split(), *task.dev, *task.test)


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_every_split_of_every_task_reads(name, smoke):
    task = tasks.TASKS[name]
    for split in all_splits(task):
        examples = readers.read_split(task, split, smoke)
        assert 32 <= len(examples) <= 96, (split.path, len(examples))
        assert all(e.text_a for e in examples)
        assert all((e.text_b is None) == (task.text_b is None) for e in examples)
        if split in task.test:
            assert all(e.label is None for e in examples)
            assert [e.index for e in examples] == list(range(len(examples)))
        elif task.is_regression:
            assert all(0.0 <= e.label <= 5.0 for e in examples)
        else:
            labels = {e.label for e in examples}
            assert labels <= set(range(task.num_labels))
            assert len(labels) > 1, f"{split.path}: one class only"


def test_layout_matches_glue(repo_root):
    root = repo_root / SMOKE
    # CoLA train/dev have no header: source, label, original annotation, sentence.
    first = (root / "CoLA/train.tsv").read_text().splitlines()[0].split("\t")
    assert len(first) == 4 and first[1] in ("0", "1")
    assert (root / "CoLA/test.tsv").read_text().startswith("index\tsentence\n")
    header = (root / "MNLI/dev_mismatched.tsv").read_text().splitlines()[0].split("\t")
    assert header[-6:] == ["label1", "label2", "label3", "label4", "label5", "gold_label"]
    assert (root / "diagnostic/diagnostic.tsv").read_text().startswith("index\tsentence1\tsentence2\n")
    assert (root / "QQP/test.tsv").read_text().startswith("id\tquestion1\tquestion2\n")
    assert "NOT GLUE" in (root / "README.md").read_text()
    # Bare quotes as in MNLI/QQP: a reader with quoting on would merge rows here.
    assert '"' in (root / "MNLI/train.tsv").read_text() + (root / "QQP/train.tsv").read_text()


def test_smoke_set_is_reproducible(repo_root, hub_copy):
    committed = sorted(p.relative_to(repo_root / SMOKE) for p in (repo_root / SMOKE).rglob("*") if p.is_file())
    regenerated = sorted(p.relative_to(hub_copy / "dir") for p in (hub_copy / "dir").rglob("*") if p.is_file())
    assert committed == regenerated
    for rel in committed:
        assert (repo_root / SMOKE / rel).read_bytes() == (hub_copy / "dir" / rel).read_bytes(), rel


@pytest.mark.parametrize("name", list(tasks.TASKS))
def test_hub_layout_yields_the_same_examples(name, smoke, hub_copy):
    task = tasks.TASKS[name]
    hub = {"source": "huggingface", "name": str(hub_copy / "hub")}
    for split in all_splits(task):
        from_dir = readers.read_split(task, split, smoke)
        from_hub = readers.read_split(task, split, hub)
        assert len(from_dir) == len(from_hub)
        for a, b in zip(from_dir, from_hub, strict=True):
            assert (a.text_a, a.text_b, a.index) == (b.text_a, b.text_b, b.index)
            if task.is_regression and a.label is not None:
                assert a.label == pytest.approx(b.label, abs=1e-6)  # the hub stores float32
            else:
                assert a.label == b.label


def test_missing_column_names_file_and_column(repo_root, tmp_path):
    shutil.copytree(repo_root / SMOKE, tmp_path / "glue")
    path = tmp_path / "glue/RTE/dev.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line.rsplit("\t", 1)[0] for line in lines) + "\n")  # drop `label`
    task = tasks.TASKS["RTE"]
    with pytest.raises(BadInput) as err:
        readers.read_split(task, task.dev[0], {"source": "dir", "path": str(tmp_path / "glue")})
    assert str(path) in str(err.value) and "'label'" in str(err.value)


def test_missing_file_and_bad_label_and_short_row(repo_root, tmp_path):
    shutil.copytree(repo_root / SMOKE, tmp_path / "glue")
    glue = {"source": "dir", "path": str(tmp_path / "glue")}
    mnli = tasks.TASKS["MNLI"]
    (tmp_path / "glue/diagnostic/diagnostic.tsv").unlink()
    with pytest.raises(BadInput, match=r"diagnostic\.tsv: file not found"):
        readers.read_split(mnli, mnli.test[2], glue)

    path = tmp_path / "glue/SST-2/dev.tsv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tpositive"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInput, match=r"SST-2/dev\.tsv, line 4: label 'positive' is not one of 0, 1"):
        readers.read_split(tasks.TASKS["SST-2"], tasks.TASKS["SST-2"].dev[0], glue)

    path = tmp_path / "glue/QQP/test.tsv"
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit("\t", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadInput, match=r"QQP/test\.tsv, line 6: 2 fields, expected 3"):
        readers.read_split(tasks.TASKS["QQP"], tasks.TASKS["QQP"].test[0], glue)


def test_short_train_rows_are_skipped(repo_root, tmp_path, capsys):
    """The real QQP train file has rows with missing fields; GLUE readers skip them."""
    shutil.copytree(repo_root / SMOKE, tmp_path / "glue")
    path = tmp_path / "glue/QQP/train.tsv"
    lines = path.read_text().splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:4])
    path.write_text("\n".join(lines) + "\n")
    task = tasks.TASKS["QQP"]
    examples = readers.read_split(task, task.train_split(), {"source": "dir", "path": str(tmp_path / "glue")})
    assert len(examples) == 95
    assert "skipped 1 rows" in capsys.readouterr().out


def test_hub_missing_column_is_named(hub_copy, tmp_path):
    import pyarrow.parquet as pq

    shutil.copytree(hub_copy / "hub", tmp_path / "hub")
    path = tmp_path / "hub/qnli/validation-00000-of-00001.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["sentence"]), path)
    task = tasks.TASKS["QNLI"]
    with pytest.raises(BadInput, match=r"qnli/validation\): no column 'sentence'"):
        readers.read_split(task, task.dev[0], {"source": "huggingface", "name": str(tmp_path / "hub")})


def test_schema_task_enums_follow_the_task_table(repo_root):
    """config/schema.yaml stays a static file; this keeps its task names in step with glue/tasks.py."""
    import yaml

    finetune = yaml.safe_load((repo_root / "config/schema.yaml").read_text())["properties"]["finetune"]["properties"]
    names = list(tasks.TASKS)
    assert finetune["tasks"]["items"]["enum"] == names
    assert finetune["grid"]["propertyNames"]["enum"] == ["default", *names]
    assert finetune["stilts"]["items"]["enum"] == [t for t in names if t != "MNLI"]  # STILTs starts from MNLI
    assert {f.task for f in tasks.SUBMISSION_FILES.values()} == set(names)
