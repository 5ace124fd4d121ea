"""Decode and encode off the main thread, without holding frames in memory.

Pass 2 produces up to five videos per frame. PyAV releases the GIL while x264
encodes, so giving every output its own thread lets encoding overlap with
segmentation and drawing on a small CPU; the bounded queues keep host memory flat
however long the clip is.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from wanimate.video import VideoWriter

_STOP = object()


class ThreadedWriter:
    """A :class:`VideoWriter` fed through a bounded queue from another thread.

    An encoding error is raised in the producer at its next :meth:`write` or at
    :meth:`close`, so a failure never goes unnoticed. ``busy_s`` is the encoder's own
    time, which the benchmark reports as the cost of writing.
    """

    def __init__(
        self, path: str | Path, fps: float, *, lossless: bool = False, preset: str = "medium", depth: int = 4
    ) -> None:
        self.path = Path(path)
        # each output has its own thread already, so x264 gets one thread (see VideoWriter)
        self._writer = VideoWriter(self.path, fps, lossless=lossless, preset=preset, threads=1)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self.busy_s = 0.0
        self.frames = 0
        self._thread = threading.Thread(target=self._run, name=f"encode-{self.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if self._error is not None:
                continue
            start = time.perf_counter()
            try:
                self._writer.write(item)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc
            self.busy_s += time.perf_counter() - start

    def _raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frame: np.ndarray) -> None:
        self._raise_pending()
        self._queue.put(frame)
        self.frames += 1

    def close(self) -> Path:
        """Flush and publish the file; raises what the encoder thread hit, if anything."""
        self._queue.put(_STOP)
        self._thread.join()
        self._raise_pending()
        start = time.perf_counter()
        path = self._writer.close()
        self.busy_s += time.perf_counter() - start
        return path

    def abort(self) -> None:
        """Stop the thread and drop the temporary file; used when the run fails."""
        self._error = self._error or RuntimeError("aborted")
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        self._thread.join()
        self._writer.abort()

    def __enter__(self) -> ThreadedWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Prefetch:
    """Decode ahead in a thread (PyAV releases the GIL) so pose and drawing never wait on it.

    The queue holds at most ``depth`` frames, and an error in the decoder surfaces in the
    consumer at the frame where it happened.
    """

    def __init__(self, frames: Iterator[np.ndarray], depth: int = 4) -> None:
        self._frames = frames
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="decode", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if not self._put(frame):
                    return
            self._put(_STOP)
        except BaseException as exc:
            self._put(exc)
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        item = self._queue.get()
        if item is _STOP:
            self._queue.put(_STOP)
            raise StopIteration
        if isinstance(item, BaseException):
            self._queue.put(_STOP)
            raise item
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop decoding early (an error downstream) and release the file."""
        self._stopped.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()
