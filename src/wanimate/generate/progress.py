"""A rich progress display for generation: segment i/n, what the segment is doing (step j/m), elapsed, ETA."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from wanimate.generate.engine import ProgressEvent


class RichProgress:
    """Consumes :class:`ProgressEvent` s; one bar for segments, one for the current segment's stage.

    The stage bar says what is running: the VAE encoding of a segment's conditioning and the VAE
    decode have no step count (the bar pulses), only denoising counts steps.
    """

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._segments: TaskID | None = None
        self._stage: TaskID | None = None

    def __enter__(self) -> RichProgress:
        # The display starts with the first event, so an early error prints nothing but itself.
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._segments is not None:
            self._progress.stop()

    def _show(self, description: str, total: int | None = None, completed: int = 0) -> None:
        assert self._stage is not None
        count = f"{completed}/{total}" if total else ""
        self._progress.reset(self._stage, total=total, completed=completed, description=description, count=count)

    def __call__(self, event: ProgressEvent) -> None:
        p = self._progress
        if self._segments is None and event.num_segments:
            p.start()
            n = event.num_segments
            self._segments = p.add_task("segments", total=n, count=f"0/{n}")
            self._stage = p.add_task("text and image encoders", total=None, count="")
        if self._segments is None or self._stage is None:
            return
        n = event.num_segments
        if event.stage == "segment":
            p.update(self._segments, completed=event.segment, description=f"segment {event.segment + 1}")
            self._show("VAE encode")
        elif event.stage == "denoise":
            self._show("denoise", event.num_steps)
        elif event.stage == "step":
            p.update(self._stage, completed=event.step, count=f"{event.step}/{event.num_steps}")
        elif event.stage == "decode":
            self._show("VAE decode")
        elif event.stage == "saved":
            p.update(self._segments, completed=event.segment + 1, count=f"{event.segment + 1}/{n}")
        elif event.stage == "resume":
            p.update(
                self._segments,
                completed=event.segment,
                description=f"resuming at {event.segment + 1}/{n}",
                count=f"{event.segment}/{n}",
            )
        elif event.stage == "write":
            self._show("writing the video")
