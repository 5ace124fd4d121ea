"""The batch's live table (one row per job) and the summary printed when it ends."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from wanimate.batch.tasks import JobStatus

STYLES = {"done": "green", "failed": "red", "generating": "cyan", "preprocessing": "yellow", "queued": "dim"}


def _elapsed(status: JobStatus, now: float) -> str:
    if status.started is None:
        return ""
    return f"{(status.finished or now) - status.started:.0f} s"


def status_table(statuses: list[JobStatus], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("job", "state", "segment", "step", "attempts", "worker", "time", "error"):
        table.add_column(column, overflow="fold", max_width=60 if column == "error" else None)
    now = time.time()
    for s in statuses:
        segment = f"{s.segment + 1}/{s.num_segments}" if s.num_segments else ""
        step = f"{s.step}/{s.num_steps}" if s.num_steps and s.state == "generating" else ""
        worker = f"{s.host}:{s.pid}" if s.pid else ""
        table.add_row(
            s.name,
            f"[{STYLES.get(s.state, '')}]{s.state}[/]",
            segment,
            step,
            str(s.attempts),
            worker,
            _elapsed(s, now),
            s.error or "",
        )
    return table


class BatchDisplay:
    """A live table on stderr while jobs run; ``summary`` afterwards."""

    def __init__(self, names: list[str], console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.names = names
        self.statuses = {name: JobStatus(name) for name in names}
        self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self._started = time.monotonic()

    def _render(self) -> Table:
        return status_table([self.statuses[n] for n in self.names], "wanimate batch")

    def __enter__(self) -> BatchDisplay:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.update(self._render())
        self._live.stop()

    def update(self, statuses: dict[str, JobStatus]) -> None:
        self.statuses.update({k: v for k, v in statuses.items() if k in self.statuses})
        self._live.update(self._render())

    def summary(self) -> None:
        done = [s for s in self.statuses.values() if s.state == "done"]
        failed = [s for s in self.statuses.values() if s.state == "failed"]
        seconds = time.monotonic() - self._started
        self.console.print(f"{len(done)} of {len(self.names)} jobs done, {len(failed)} failed, in {seconds:.0f} s")
        for s in failed:
            self.console.print(f"[red]failed[/] {s.name}: {s.error}", highlight=False, soft_wrap=True)
