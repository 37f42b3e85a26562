"""ExtremeBERT as a Snakemake DAG: the functions every rule calls (python -m workflow_scripts.X)."""
