"""Pretraining: the loop, its state and stopping rules, DeepSpeed, schedules, optimizers, batches."""
