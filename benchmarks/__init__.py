"""Benchmarks: each measures a ratio against a baseline run in the same script."""
