"""Build the DeepSpeed engine for a tiny BERT with implementation.precision=fp16 on this machine, through
the scripts' one-line error path: on a CPU-only machine it must exit 1 with one line naming the key
(tests/test_pretrain_engine.py). Run outside any launcher (no RANK/WORLD_SIZE/LOCAL_RANK)."""
import json

from workflow_scripts.cli import one_line_errors
from workflow_scripts.pretrain import engine


def main():
    dist = engine.setup_distributed()
    # Imported after setup_distributed(), as the training entry point does.
    from workflow_scripts.pretrain.models.bert import BertConfig, BertForPretraining
    from workflow_scripts.pretrain.optimizers import param_groups
    from workflow_scripts.pretrain.train import resolve_recipe

    recipe = resolve_recipe(json.dumps({"model": {}, "total_training_time": 1, "batch_size": 32,
                                        "implementation": {"precision": "fp16"}}))
    model = BertForPretraining(BertConfig(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2))
    engine.Engine(model, param_groups(model, 0.0), recipe, dist)


if __name__ == "__main__":
    one_line_errors(main)()
