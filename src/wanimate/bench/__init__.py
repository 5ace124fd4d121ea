"""Benchmarks behind ``wanimate bench``: speed and memory of each stage, measured on this machine."""
