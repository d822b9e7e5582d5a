"""Benchmarks: speed and memory targets, measured on real data (run with `make bench`)."""
