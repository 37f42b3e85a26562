"""The test suite. A package so that tests/helpers and tests/probes have one import path
(`tests.helpers.X`) for the tests and the benchmarks alike; no test module imports another."""
