"""The long-video plan: which driving frames each segment covers.

Follows the official scheme (and diffusers'): segments of ``L`` frames that overlap
by ``r`` temporal-guidance frames, the driving video padded by ping-pong (mirrored
back and forth) so the last segment is full, and the output cut back to ``N``.
"""

from __future__ import annotations

from dataclasses import dataclass


def pingpong_index(padded: int, num_frames: int) -> int:
    """Source frame for a padded index: 0,1,…,N-1,N-2,…,1,0,1,… (diffusers' ``pad_video_frames``)."""
    if num_frames == 1:
        return 0
    period = 2 * (num_frames - 1)
    phase = padded % period
    return phase if phase < num_frames else period - phase


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # first padded frame index covered
    length: int  # frames generated (L)
    keep_from: int  # frames dropped at the front (r for every segment but the first)

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class SegmentPlan:
    num_frames: int
    segment_frames: int
    overlap: int
    segments: tuple[Segment, ...]

    @property
    def num_segments(self) -> int:
        return len(self.segments)

    def source_indices(self, segment: Segment) -> list[int]:
        return [pingpong_index(p, self.num_frames) for p in range(segment.start, segment.end)]


def plan_segments(num_frames: int, segment_frames: int, overlap: int) -> SegmentPlan:
    if num_frames < 1:
        raise ValueError("a plan needs at least one frame")
    step = segment_frames - overlap
    count = max(1, -(-(num_frames - overlap) // step))
    segments = tuple(
        Segment(index=k, start=k * step, length=segment_frames, keep_from=overlap if k else 0) for k in range(count)
    )
    return SegmentPlan(num_frames, segment_frames, overlap, segments)
