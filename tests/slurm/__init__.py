"""A real SLURM cluster on localhost for tests/test_slurm.py (cluster.py, install.sh, the test profile)."""
