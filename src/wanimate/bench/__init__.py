"""Benchmarks behind ``wanimate bench``: speed and memory of each stage, measured on this machine."""

from __future__ import annotations

from collections.abc import Mapping

# What ``bench generate`` changes from the stage's own defaults (on the CLI and in Python alike): a few
# steps in fp32, so a random model on a CPU finishes in seconds and compares exactly with diffusers.
BENCH_DEFAULTS = {"steps": 4, "dtype": "fp32"}


def print_metrics(title: str, metrics: Mapping[str, object]) -> None:
    """One two-column table of a benchmark's results, floats to three decimals."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console().print(table)
