"""Keeps one worker process alive beside the API and restarts it when it dies."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from wanimate.serve.config import ServeConfig

log = logging.getLogger("wanimate.serve")
MAX_BACKOFF_S = 10.0


class WorkerSupervisor:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.config_path = config.data_dir / "worker-config.json"
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".partial")
        tmp.write_text(self.config.to_json())
        os.replace(tmp, self.config_path)
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "wanimate.serve.worker",
            str(Path(self.config_path).resolve()),
            str(os.getpid()),
        ]
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def _watch(self) -> None:
        backoff = 0.5
        while not self._stop.wait(0.2):
            proc = self._proc
            if proc is None or proc.poll() is None:
                continue
            log.warning("worker exited with code %s; restarting in %.1f s", proc.returncode, backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            self.restarts += 1
            self._spawn()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to requeue what it runs and exit; kill it if it takes too long."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
