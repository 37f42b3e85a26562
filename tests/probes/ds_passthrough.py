"""A tiny real DeepSpeed training (CPU) with implementation.deepspeed pass-through keys: 6 micro-batches
of a 1-layer BERT through our Engine, then print, as JSON, what DeepSpeed's engine itself read from
the merged config, and write the flops profiler's report to PROFILE.
Usage: ds_passthrough.py SHARD.h5 PROFILE (tests/test_pretrain_engine.py)."""
import json
import sys

from workflow_scripts.pretrain import batches, engine


def main(shard: str, profile: str) -> dict:
    dist = engine.setup_distributed()
    # Imported after setup_distributed(), as the training entry point does.
    from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining
    from workflow_scripts.pretrain.optimizers import param_groups
    from workflow_scripts.pretrain.train import resolve_recipe

    passthrough = {"steps_per_print": 3, "wall_clock_breakdown": True,
                   "flops_profiler": {"enabled": True, "profile_step": 1, "output_file": profile}}
    recipe = resolve_recipe(json.dumps({"model": {}, "total_training_time": 1, "batch_size": 8,
                                        "implementation": {"micro_batch_size": 4, "deepspeed": passthrough}}))
    model = BertForPretraining(BertConfig(vocab_size=30522, hidden_size=32, num_layers=1, num_heads=2,
                                          intermediate_size=64))
    eng = engine.Engine(model, param_groups(model, 0.01), recipe, dist)
    for batch in list(batches.TrainStream([shard], 0, 1, 4, 2, 0).epoch(0))[:6]:
        eng.train_micro_batch(batch)
    return {"steps_per_print": eng.ds.steps_per_print(), "wall_clock_breakdown": eng.ds.wall_clock_breakdown(),
            "flops_profiler": eng.ds.flops_profiler_enabled(), "train_batch_size": eng.ds.train_batch_size(),
            "global_steps": eng.ds.global_steps, "throughput_timer": eng.ds.tput_timer.config.enabled}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
