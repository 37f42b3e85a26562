"""The scripts' shared command-line plumbing: JSON arguments and JSON input records fail in one line naming what is wrong."""
import json

import pytest

from workflow_scripts import cli
from workflow_scripts.data import corpus, tokenizer
from workflow_scripts.report import make_report
from workflow_scripts.errors import BadInput


def test_json_object_argument():
    assert cli.json_object('{"a": [1]}', "--spec") == {"a": [1]}
    with pytest.raises(BadInput, match=r"^tokenizer: --spec: not valid JSON \(Expecting"):
        cli.json_object("{pretrained: x}", "--spec", "tokenizer")
    with pytest.raises(BadInput, match=r"^--glue: expected a JSON object, got list$"):
        cli.json_object("[1, 2]", "--glue")
    assert cli.json_object('{"seed": 1}', "--spec", "samples", required=("seed",)) == {"seed": 1}
    with pytest.raises(BadInput, match=r"^samples: --spec lacks nsp, seed$"):
        cli.json_object('{"dup_factor": 1}', "--spec", "samples", required=("nsp", "seed"))


def test_json_lines_skip_blank_lines_and_name_a_bad_one():
    assert list(cli.json_lines(['{"a": 1}', "", "  ", "[2]"], "f.jsonl")) == [(1, {"a": 1}), (4, [2])]
    with pytest.raises(BadInput, match=r"^f\.jsonl, line 2: not valid JSON \(Expecting"):
        list(cli.json_lines(['{"a": 1}', "{a: 1}"], "f.jsonl"))


def test_scripts_name_their_bad_json_argument(tmp_path):
    with pytest.raises(SystemExit, match=r"^corpus: --source: not valid JSON"):
        corpus.main(["--source", "{type: text}", "--out", str(tmp_path / "p.txt")])
    with pytest.raises(SystemExit, match=r"^tokenizer: --spec: expected a JSON object, got str$"):
        tokenizer.main(["--spec", '"resources/bert-base-uncased"', "--out", str(tmp_path / "tok")])
    assert not list(tmp_path.iterdir())


def test_read_record_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "stats.json"
    with pytest.raises(BadInput, match=r"stats\.json: file not found$"):
        cli.read_record(path, ())
    path.write_text('{"train": {"samples": 3}')
    with pytest.raises(BadInput, match=r"stats\.json: not valid JSON"):
        cli.read_record(path, ())
    path.write_text("[]")
    with pytest.raises(BadInput, match=r"stats\.json: expected a JSON object, got list$"):
        cli.read_record(path, ())
    path.write_text(json.dumps({"train": {"samples": 3}, "valid": 5}))
    assert cli.read_record(path, ("train", "train.samples"))["train"]["samples"] == 3
    with pytest.raises(BadInput, match=r"stats\.json: missing key 'train\.tokens_per_sample'$"):
        cli.read_record(path, ("train.samples", "train.tokens_per_sample"))
    with pytest.raises(BadInput, match=r"stats\.json: missing key 'valid\.samples'$"):
        cli.read_record(path, ("valid.samples",))


def test_report_reads_best_json_through_it(tmp_path):
    best = tmp_path / "runs/demo/glue/RTE/best.json"
    best.parent.mkdir(parents=True)
    best.write_text(json.dumps({"task": "RTE", "chosen": "lr1e-05_bs16_ep2_seed1", "score": 60.0}))
    with pytest.raises(SystemExit, match=r"best\.json: missing key 'trials'$"):
        make_report.main(["--best", str(best), "--table-out", str(tmp_path / "t.md"), "--curves-out", str(tmp_path / "c.png")])
    assert not (tmp_path / "t.md").exists()
