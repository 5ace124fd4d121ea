"""``wanimate bench generate``: both models through the generation spec, with the bench's own defaults only."""

from __future__ import annotations

import pytest

from wanimate.bench import BENCH_DEFAULTS
from wanimate.cli import main
from wanimate.generate.settings import GenerateSettings
from wanimate.multianimate.settings import MultiAnimateSettings


@pytest.fixture
def metrics(monkeypatch):
    """What the command would print, as the dict it hands to ``print_metrics``."""
    seen: dict = {}
    monkeypatch.setattr("wanimate.bench.print_metrics", lambda title, values: seen.update(values, title=title))
    return seen


def _bench(*args: str) -> int:
    try:
        main(["bench", "generate", "--config", "tiny", "--res", "32x32", "--no-baseline", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_animate_takes_the_stage_defaults_and_the_bench_ones(metrics, one_thread):
    assert _bench("--model", "animate", "--segment-frames", "5", "--cache", "fbc") == 0
    assert metrics["steps"] == BENCH_DEFAULTS["steps"] and metrics["dtype"] == BENCH_DEFAULTS["dtype"]
    assert metrics["guidance"] == GenerateSettings().guidance
    assert metrics["frames"] == metrics["segment_frames"] == 5  # one segment unless --frames says otherwise
    assert metrics["options"] == "cache=fbc"  # an option the spec offers, reported as changed
    assert "fbc_steps_computed_cached" in metrics


def test_multianimate_starts_from_its_own_defaults(metrics, one_thread):
    assert _bench("--model", "multianimate", "--segment-frames", "5", "--steps", "1", "--characters", "2") == 0
    assert metrics["model"] == "multianimate" and metrics["characters"] == 2
    assert metrics["guidance"] == MultiAnimateSettings().guidance != GenerateSettings().guidance
    assert metrics["steps"] == 1 and metrics["dtype"] == BENCH_DEFAULTS["dtype"]
    assert metrics["frames"] == 5 and metrics["options"] == "none"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "multianimate", "--mode", "replace"], "--mode replace is a Wan2.2-Animate benchmark"),
        (["--model", "multianimate", "--cache", "fbc"], "--cache fbc is a Wan2.2-Animate option"),
        (["--model", "other"], "--model must be animate or multianimate"),
        (["--mode", "both"], "--mode must be animate or replace"),
    ],
)
def test_options_of_the_other_model_are_one_line(args, message, capsys):
    assert _bench(*args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
