"""Checkpoint round trip of the engine: train 4 micro-batches, save, train 4 more; a second engine
with other weights, optimizer and RNG loads the checkpoint and trains the same 4; print SAME when
weights and Adam moments agree bit for bit, else DIFFERENT. Usage: engine_round_trip.py SHARD.h5
(tests/test_pretrain_run.py)."""
import sys
import tempfile

import torch

from workflow_scripts.pretrain import batches, engine

RECIPE = {"batch_size": 8, "implementation": {"micro_batch_size": 4, "precision": "fp32", "zero_stage": 0},
          "optimizer": {"name": "adamw", "lr": 1e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 0.01,
                        "gradient_clipping": 1.0}}


def make(seed, dist):
    # Imported after setup_distributed(), as the training entry point does.
    from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining
    from workflow_scripts.pretrain.optimizers import param_groups

    torch.manual_seed(seed)
    m = BertForPretraining(BertConfig(vocab_size=30522, hidden_size=32, num_layers=1, num_heads=2,
                                      intermediate_size=64, dropout=0.3))
    return engine.Engine(m, param_groups(m, 0.01), RECIPE, dist)


def main(shard: str) -> str:
    dist = engine.setup_distributed()
    micro = list(batches.TrainStream([shard], 0, 1, 4, 2, 0).epoch(0))[:8]
    a = make(0, dist)
    for b in micro[:4]:
        a.train_micro_batch(b)
    folder = tempfile.mkdtemp()
    a.save(folder, "t", {})
    for b in micro[4:]:                       # a goes on: 2 more optimizer steps, dropout drawing from its RNG
        a.train_micro_batch(b)
    c = make(1, dist)                         # other initial weights, fresh optimizer, other RNG
    c.load(folder, "t")
    for b in micro[4:]:
        c.train_micro_batch(b)
    same = all(torch.equal(p, q) for p, q in zip(a.module.parameters(), c.module.parameters(), strict=True))
    state_a, state_c = a.optimizer.state_dict()["state"], c.optimizer.state_dict()["state"]
    same_opt = all(torch.equal(state_a[k]["exp_avg_sq"], state_c[k]["exp_avg_sq"]) for k in state_a)
    return "SAME" if same and same_opt and len(state_a) == len(state_c) > 0 else "DIFFERENT"


if __name__ == "__main__":
    print(main(sys.argv[1]))
