"""Benchmarks against the alternatives users reach for; results in bench/README.md."""
