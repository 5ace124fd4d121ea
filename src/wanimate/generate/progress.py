"""A rich progress display for generation: segment i/n, step j/m, elapsed, ETA."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from wanimate.generate.engine import ProgressEvent


class RichProgress:
    """Consumes :class:`ProgressEvent` s; one bar for segments, one for the steps of the current segment."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._segments: TaskID | None = None
        self._steps: TaskID | None = None

    def __enter__(self) -> RichProgress:
        # The display starts with the first event, so an early error prints nothing but itself.
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._segments is not None:
            self._progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        p = self._progress
        if self._segments is None and event.num_segments:
            p.start()
            self._segments = p.add_task("segments", total=event.num_segments)
            self._steps = p.add_task("steps", total=event.num_steps)
        if self._segments is None or self._steps is None:
            return
        if event.stage == "segment":
            p.update(self._segments, completed=event.segment, description=f"segment {event.segment + 1}")
            p.reset(self._steps, total=event.num_steps, description="denoise")
        elif event.stage == "step":
            p.update(self._steps, completed=event.step)
        elif event.stage == "decode":
            p.update(self._steps, description="VAE decode")
        elif event.stage == "saved":
            p.update(self._segments, completed=event.segment + 1)
        elif event.stage == "resume":
            p.update(self._segments, completed=event.segment, description="resumed")
