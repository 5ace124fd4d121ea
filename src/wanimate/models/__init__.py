"""Model components: building (random, for tests and benchmarks) and loading (real weights)."""
