"""One script per claim, each run from the repo root as `python -m benchmarks.NAME` (so the
test helpers in tests/helpers import without path tricks); see benchmarks/README.md."""
