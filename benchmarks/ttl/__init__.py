"""The pieces of benchmarks/time_to_loss.py: data, the one evaluation, our side, the peer's side."""
