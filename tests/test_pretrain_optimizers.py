"""Optimizers: built-ins with kwargs, a user's class by import path (in-process and in a real run,
picked up from the recipe alone), the README's Lion example, and one-line errors."""
import importlib.util
import json
import sys

import pytest
import torch

from tests.helpers.pretrain_run import REPO, USER_MODULE, events, recipe, run_with
from workflow_scripts.errors import BadInput
from workflow_scripts.pretrain import optimizers



@pytest.fixture
def user_module(tmp_path, monkeypatch):
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / "my_opts.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def groups():
    torch.manual_seed(0)
    w, b = torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.zeros(4))
    return [{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}]


def spec(**over):
    return {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-6, "kwargs": {}, **over}


def test_built_ins_take_their_kwargs():
    adamw = optimizers.make(groups(), spec(kwargs={"amsgrad": True}), "cpu")
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["amsgrad"]
    assert adamw.param_groups[0]["betas"] == (0.9, 0.98) and adamw.param_groups[1]["weight_decay"] == 0.0
    assert type(optimizers.make(groups(), spec(name="adam"), "cpu")) is torch.optim.Adam
    sgd = optimizers.make(groups(), spec(name="sgd", lr=0.1, kwargs={"momentum": 0.9, "nesterov": True}), "cpu")
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["momentum"] == 0.9 and sgd.param_groups[0]["lr"] == 0.1


def test_a_users_class_by_import_path(user_module, tmp_path):
    trace = tmp_path / "trace.txt"
    opt = optimizers.make(groups(), spec(name="my_opts:TracedSGD", lr=0.5, kwargs={"trace": str(trace)}), "cpu")
    assert type(opt).__name__ == "TracedSGD" and opt.param_groups[0]["weight_decay"] == 0.1
    for g in opt.param_groups:
        for p in g["params"]:
            p.grad = torch.ones_like(p)
    opt.step()
    assert trace.read_text() == "1 0.5 0.0\n"


def test_bad_optimizers_fail_in_one_line(user_module):
    with pytest.raises(BadInput, match=r"optimizer\.name='my_opts:NOT_AN_OPTIMIZER' is not a torch\.optim\.Optimizer"):
        optimizers.make(groups(), spec(name="my_opts:NOT_AN_OPTIMIZER"), "cpu")
    with pytest.raises(BadInput, match="cannot import module nowhere_pkg"):
        optimizers.make(groups(), spec(name="nowhere_pkg.opt:Opt"), "cpu")
    with pytest.raises(BadInput, match=r"optimizer.kwargs \{'betas2': 1\}: AdamW does not accept them"):
        optimizers.make(groups(), spec(kwargs={"betas2": 1}), "cpu")
    with pytest.raises(BadInput, match=r"optimizer\.name: 'lamb' is not one of adamw, adam, sgd"):
        optimizers.make(groups(), spec(name="lamb"), "cpu")


def test_readme_lion_example_steps_by_the_sign_of_the_momentum():
    sys.path.insert(0, str(REPO))
    from examples.my_optimizer import Lion

    torch.manual_seed(0)
    target = torch.randn(50)
    p = torch.nn.Parameter(torch.zeros(50))
    opt = optimizers.make([{"params": [p], "weight_decay": 0.0}],
                          spec(name="examples.my_optimizer:Lion", lr=0.02, kwargs={"betas": [0.9, 0.99]}), "cpu")
    assert isinstance(opt, Lion)
    losses = []
    for _ in range(300):                     # |target| < 4: lr 0.02 covers it in 200 steps
        opt.zero_grad()
        loss = ((p - target) ** 2).sum()
        loss.backward()
        before = p.detach().clone()
        opt.step()
        # Every coordinate moves by exactly lr (a sign update), whatever its gradient's size.
        torch.testing.assert_close((p.detach() - before).abs(), torch.full_like(p, 0.02))
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.01 * losses[0]


def test_pretraining_picks_up_a_users_optimizer_from_the_recipe_alone(user_module, pretrain_shards,
                                                                      bert_tokenizer_dir, tmp_path):
    trace = tmp_path / "trace.txt"
    rec = recipe(600, max_steps=5, schedule={"name": "constant", "warmup_proportion": 0},
                 optimizer={"name": "my_opts:TracedSGD", "lr": 0.05, "kwargs": {"trace": str(trace), "momentum": 0.9}},
                 implementation={"micro_batch_size": 4, "tensorboard": True})
    proc = run_with(user_module, pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Our class stepped once per optimizer step (DeepSpeed wraps it, keeps it), with the recipe's kwargs
    # and the LR the schedule set.
    assert trace.read_text().splitlines() == [f"{i} 0.05 0.9" for i in range(1, 6)]
    log = events(tmp_path / "log.jsonl")
    assert log[0]["optimizer"]["name"] == "my_opts:TracedSGD" and log[-1]["reason"] == "max_steps"
    # TensorBoard asked for but not installed here: said once, in one line, and the run went on.
    if importlib.util.find_spec("tensorboard") is None:
        assert proc.stdout.count("the tensorboard package is not installed (pip install tensorboard)") == 1
    else:
        assert list((tmp_path / "state").glob("*/tensorboard/events.out.tfevents.*"))
    json.dumps(log)   # the log is plain JSON


@pytest.mark.workflow
def test_a_stop_signal_at_the_last_step_ends_the_run_normally(user_module, pretrain_shards, bert_tokenizer_dir,
                                                                tmp_path):
    # SIGTERM during step 4's optimizer step is seen at step 5's agreement; step 5 is also the last
    # (max_steps): the run ends as a finished run (final validation, end event, export, exit 0),
    # not as a signalled one that a retry would only re-export without its final valid loss.
    rec = recipe(600, max_steps=5, schedule={"name": "constant", "warmup_proportion": 0},
                 optimizer={"name": "my_opts:TracedSGD", "lr": 0.05,
                            "kwargs": {"trace": str(tmp_path / "trace.txt"), "signal_at": 4}})
    proc = run_with(user_module, pretrain_shards, bert_tokenizer_dir, tmp_path, rec)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = events(tmp_path / "log.jsonl")
    assert log[-1]["event"] == "end" and log[-1]["reason"] == "max_steps" and log[-1]["step"] == 5
    assert log[-2]["event"] == "valid" and log[-2]["step"] == 5
    assert (tmp_path / "model" / "config.json").is_file()
