"""Benchmarks and proofs that run tiersync against the local tracker simulators."""
