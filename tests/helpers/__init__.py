"""Code shared by the tests and the benchmarks: building real test inputs and running Snakemake.
Fixtures live in tests/conftest.py; these are plain functions."""
