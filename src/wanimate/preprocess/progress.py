"""Progress bars and notices on stderr, so stdout stays free for the result path.

Preprocessing a minute of video takes minutes on a laptop; frames per second and an
ETA tell the user whether to wait or to lower ``--fps``/``--area``. Notices (a
downscaled input, a performer lost for a while) are printed even without bars,
because they change what the materials contain.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} frames/s" if speed else "  ... frames/s", style="cyan")


class Reporter:
    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.enabled = enabled
        self.warnings: list[str] = []
        self._progress: Progress | None = None

    def notice(self, message: str) -> None:
        self.console.print(f"[bold]note:[/] {message}")

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        self.console.print(f"[bold yellow]warning:[/] {message}")

    def task(self, description: str, total: int | None) -> _Bar:
        """A bar for one pass; a no-op when progress is disabled."""
        if not self.enabled:
            return _Bar(None, None)
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
        return _Bar(self._progress, self._progress.add_task(description, total=total))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class _Bar:
    def __init__(self, progress: Progress | None, task_id: object) -> None:
        self._progress = progress
        self._task = task_id

    def advance(self, frames: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, frames)  # type: ignore[arg-type]

    def finish(self, total: int) -> None:
        """Fix the total once the real count is known (estimates can be off by a few frames)."""
        if self._progress is not None:
            self._progress.update(self._task, total=total, completed=total)  # type: ignore[arg-type]
