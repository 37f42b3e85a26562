"""GLUE: the task table, readers, metrics, the search grid, fine-tuning, selection, the submission."""
