"""A lease on a job's work folder: one process at a time may write it.

An exclusive ``flock`` on ``<work>/lease.lock``: the kernel (or the NFS server) drops
it when its holder dies, even by ``kill -9``, so a retried job can take it at once,
while a second copy of a job that is still running waits and then gives up with a
line naming the holder (written into the lock file: host, pid, since when).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import TextIO

from wanimate.errors import WanimateError
from wanimate.workdir import LEASE_FILE


class WorkLease:
    def __init__(self, work: Path, job: str, *, wait_s: float = 30.0) -> None:
        self.path = work / LEASE_FILE
        self.job = job
        self.wait_s = wait_s
        self._handle: TextIO | None = None

    def holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> WorkLease:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    handle.close()
                    who = self.holder()
                    raise WanimateError(
                        f"job {self.job} is already running (host {who.get('host', '?')}, pid {who.get('pid', '?')}); "
                        f"its work folder {self.path.parent} is leased"
                    ) from None
                time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.close()  # releases the lock; the holder line stays as a record of the last holder
            self._handle = None
