"""The job queue in SQLite: the one place the API and the worker process agree on.

Both processes open short-lived connections in WAL mode, so readers never block the
worker's progress writes. Every state change is a single conditional ``UPDATE``
(``... WHERE state = 'queued'``), which makes claiming and cancelling race-free
without any lock beyond SQLite's own.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED = "queued"
RUNNING_STATES = ("preprocessing", "generating")
TERMINAL_STATES = ("done", "failed", "cancelled")
STATES = (QUEUED, *RUNNING_STATES, *TERMINAL_STATES)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    lane TEXT NOT NULL,
    options TEXT NOT NULL,
    client TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    result TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, lane, created);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    time REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_job ON events (job, seq);
"""


@dataclass
class Job:
    id: str
    state: str
    lane: str
    options: dict[str, Any]
    client: str
    created: float
    started: float | None
    finished: float | None
    updated: float
    progress: dict[str, Any]
    error: str | None
    attempts: int
    cancel: bool
    result: dict[str, Any] | None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(
            id=row["id"],
            state=row["state"],
            lane=row["lane"],
            options=json.loads(row["options"]),
            client=row["client"],
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
            updated=row["updated"],
            progress=json.loads(row["progress"]),
            error=row["error"],
            attempts=row["attempts"],
            cancel=bool(row["cancel"]),
            result=json.loads(row["result"]) if row["result"] else None,
        )


class JobStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            yield db
        finally:
            db.close()

    def add(self, job_id: str, lane: str, options: dict[str, Any], client: str) -> Job:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO jobs (id, state, lane, options, client, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job_id, QUEUED, lane, json.dumps(options), client, now, now),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return Job.from_row(row) if row else None

    def page(self, *, limit: int, offset: int, state: str | None = None) -> tuple[list[Job], int]:
        """Newest first."""
        where, args = ("WHERE state = ?", [state]) if state else ("", [])
        with self._connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT * FROM jobs {where} ORDER BY created DESC, id LIMIT ? OFFSET ?", [*args, limit, offset]
            ).fetchall()
        return [Job.from_row(r) for r in rows], total

    def counts(self) -> dict[str, int]:
        with self._connect() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: n for state, n in rows}

    def claim(self, lane: str) -> Job | None:
        """Move the oldest queued job of ``lane`` to ``preprocessing``; ``None`` when there is none."""
        now = time.time()
        with self._connect() as db:
            row = db.execute(
                "UPDATE jobs SET state = 'preprocessing', attempts = attempts + 1, started = COALESCE(started, ?), "
                "updated = ? WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND lane = ? "
                "ORDER BY created, id LIMIT 1) AND state = 'queued' RETURNING *",
                (now, now, lane),
            ).fetchone()
        return Job.from_row(row) if row else None

    def requeue_running(self) -> list[str]:
        """Jobs a dead worker left half-done go back to the queue (their work folder makes them resume)."""
        with self._connect() as db:
            rows = db.execute(
                "UPDATE jobs SET state = 'queued', updated = ? WHERE state IN ('preprocessing', 'generating') "
                "RETURNING id",
                (time.time(),),
            ).fetchall()
        return [r[0] for r in rows]

    def update_progress(self, job_id: str, state: str, progress: dict[str, Any], event: bool, attempt: int) -> bool:
        """Record progress; returns whether cancellation was requested (one round trip serves both)."""
        now = time.time()
        with self._connect() as db:
            row = db.execute(
                "UPDATE jobs SET state = ?, progress = ?, updated = ? WHERE id = ? AND state IN "
                "('preprocessing', 'generating') RETURNING cancel",
                (state, json.dumps(progress), now, job_id),
            ).fetchone()
            if event and row is not None:
                db.execute(
                    "INSERT INTO events (job, attempt, time, data) VALUES (?, ?, ?, ?)",
                    (job_id, attempt, now, json.dumps(progress)),
                )
        return row is None or bool(row[0])

    def finish(
        self, job_id: str, state: str, *, error: str | None = None, result: dict[str, Any] | None = None
    ) -> None:
        now = time.time()
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET state = ?, error = ?, result = ?, finished = ?, updated = ? WHERE id = ?",
                (state, error, json.dumps(result) if result else None, now, now, job_id),
            )

    def requeue(self, job_id: str) -> None:
        """A job stopped by a clean shutdown goes back to the queue; that attempt does not count."""
        with self._connect() as db:
            db.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, updated = ? WHERE id = ? AND state IN "
                "('preprocessing', 'generating')",
                (time.time(), job_id),
            )

    def cancel(self, job_id: str) -> str | None:
        """Cancel: a queued job at once (returns ``cancelled``), a running one by flag (returns its state)."""
        now = time.time()
        with self._connect() as db:
            row = db.execute(
                "UPDATE jobs SET state = 'cancelled', finished = ?, updated = ? WHERE id = ? AND state = 'queued' "
                "RETURNING state",
                (now, now, job_id),
            ).fetchone()
            if row:
                return row[0]
            row = db.execute(
                "UPDATE jobs SET cancel = 1, updated = ? WHERE id = ? AND state IN ('preprocessing', 'generating') "
                "RETURNING state",
                (now, job_id),
            ).fetchone()
        return row[0] if row else None

    def delete(self, job_id: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM events WHERE job = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def expired(self, before: float) -> list[str]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND finished < ?", (before,)
            ).fetchall()
        return [r[0] for r in rows]

    def events(self, job_id: str) -> list[tuple[int, dict[str, Any]]]:
        """(attempt, progress) of every recorded stage/segment change, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT attempt, data FROM events WHERE job = ? ORDER BY seq", (job_id,)).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]
