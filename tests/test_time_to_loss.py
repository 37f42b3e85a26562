"""benchmarks/time_to_loss.py's pieces: the held-out eval rows, the one evaluation, the time-to-loss
interpolation, the peer's schedule and a seconds-long run of each side (numbers mean nothing)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import time_to_loss
from benchmarks.ttl import data, evaluate, peer

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}


@pytest.fixture(scope="module")
def held_out(tmp_path_factory, wiki_dump):
    """Eight cleaned text parts of the real excerpt from our corpus stage (small parts: fast tests)."""
    config = data.filled_config(8, {}, {})
    return data.text_parts(config, tmp_path_factory.mktemp("text"))


@pytest.fixture(scope="module")
def rows(held_out):
    return data.eval_rows(held_out[0], 40)


def test_eval_rows_are_masked_once_the_same_way(held_out, rows):
    a, b = rows, data.eval_rows(held_out[0], 40)
    assert np.array_equal(a["input_ids"], b["input_ids"]) and np.array_equal(a["labels"], b["labels"])
    ids, labels = a["input_ids"], a["labels"]
    assert ids.shape == (40, 128) and (ids[:, 0] == 101).all() and (ids[:, -1] == 102).all()   # [CLS] ... [SEP]
    picked = labels != -100
    assert (picked.sum(1) == 19).all()                       # 15% of the 126 text positions
    assert not picked[:, 0].any() and not picked[:, -1].any()
    masked = (ids[picked] == 103).mean()                     # [MASK] for ~80% of the predicted tokens
    assert 0.7 < masked < 0.9
    assert (labels[picked] != 103).all()                     # labels are the real tokens


def test_mlm_loss_is_the_models_own_loss(tmp_path, rows):
    import torch
    from transformers import BertForMaskedLM

    torch.manual_seed(0)
    model = BertForMaskedLM(peer.model_config(TINY)).eval()
    model.save_pretrained(tmp_path / "m")
    with torch.no_grad():
        ids = torch.from_numpy(rows["input_ids"])
        own = float(model(input_ids=ids, labels=torch.from_numpy(rows["labels"])).loss)
    assert evaluate.mlm_loss(tmp_path / "m", rows, batch_size=5) == pytest.approx(own, rel=1e-5)


def test_unigram_loss_of_the_labels_own_counts_is_their_entropy():
    rows = {"labels": np.array([[-100, 1, 1, 2, -100]])}
    want = -(2 * np.log(3 / 6) + np.log(2 / 6)) / 3   # add-one counts 1, 3, 2 of 6 over a vocab of 3
    assert evaluate.unigram_loss(np.array([1, 1, 2]), rows, 3) == pytest.approx(want)


def test_time_to_reach_interpolates_between_snapshots():
    curve = [(10.0, 8.0), (20.0, 6.0), (30.0, 5.0)]
    assert time_to_loss.time_to_reach(curve, 7.0) == pytest.approx(15.0)
    assert time_to_loss.time_to_reach(curve, 8.5) == 10.0
    assert time_to_loss.time_to_reach(curve, 4.0) is None


def test_versus_classic_is_the_time_to_berts_final_over_berts_own():
    curves = {"peer": [(30.0, 4.0)], "bert": [(10.0, 8.0), (20.0, 6.0), (30.0, 5.0)],
              "modern": [(10.0, 7.0), (20.0, 5.0)], "slow": [(10.0, 9.0), (30.0, 5.5)]}
    got = time_to_loss.versus_classic(curves)
    assert set(got) == {"modern", "slow"}
    assert got["modern"] == {"cpu_s": 20.0, "bert_cpu_s": 30.0, "ratio": pytest.approx(2 / 3)}
    assert got["slow"]["cpu_s"] is None and got["slow"]["ratio"] is None
    assert time_to_loss.versus_classic({"peer": [(1.0, 1.0)], "modern": [(1.0, 1.0)]}) == {}


def test_peer_lr_warms_up_then_decays_to_zero():
    assert peer.linear_lr(1e-3, 0.0, 0.1) == 0.0
    assert peer.linear_lr(1e-3, 0.05, 0.1) == pytest.approx(5e-4)
    assert peer.linear_lr(1e-3, 0.1, 0.1) == pytest.approx(1e-3)
    assert peer.linear_lr(1e-3, 0.55, 0.1) == pytest.approx(5e-4)
    assert peer.linear_lr(1e-3, 1.2, 0.1) == 0.0


def test_peer_side_trains_for_its_cpu_budget(tmp_path, held_out, rows):
    blocks = data.peer_blocks(held_out[1:2])[:64]
    taken = peer.train(blocks, TINY, 1e-3, 1.0, 4, 2, tmp_path)
    assert taken[-1]["cpu_s"] >= 1.0 and len(taken) >= 2
    assert np.isfinite(evaluate.mlm_loss(taken[-1]["model"], rows))


@pytest.mark.workflow
def test_our_side_exports_a_snapshot_per_validation(tmp_path, pretrain_shards, repo_root, rows):
    recipe = {"model": {**TINY, "layer_norm": "pre"}, "total_training_time": 2 / 3600, "batch_size": 8,
              "validation_interval_minutes": 1 / 60, "validation_max_samples": 8,
              "implementation": {"micro_batch_size": 8}}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.ttl.ours", "--recipe", json.dumps(recipe), "--train",
                           *map(str, pretrain_shards["train"]), "--valid", *map(str, pretrain_shards["valid"]),
                           "--out", str(tmp_path)], cwd=repo_root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **data.ONE_THREAD, "DS_ACCELERATOR": "cpu"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    taken = json.loads((tmp_path / "snapshots.json").read_text())
    assert len(taken) >= 2 and taken[-1]["cpu_s"] >= 2.0          # every second of CPU, and the end
    assert [s["step"] for s in taken] == sorted({s["step"] for s in taken})
    assert np.isfinite(evaluate.mlm_loss(taken[-1]["model"], rows))
