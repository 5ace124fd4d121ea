"""Generation: a materials folder becomes a video with the Wan-Animate model, segment by segment."""

from wanimate.generate.engine import ProgressEvent, SegmentGenerator
from wanimate.generate.pipeline import generate
from wanimate.generate.segments import plan_segments
from wanimate.generate.settings import DEFAULT_WEIGHTS, GenerateSettings

__all__ = [
    "DEFAULT_WEIGHTS",
    "GenerateSettings",
    "ProgressEvent",
    "SegmentGenerator",
    "generate",
    "plan_segments",
]
