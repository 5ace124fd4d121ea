"""Run pose detection on several backends at once, in frame order, with bounded memory.

One MediaPipe Holistic graph keeps well under two cores busy (its calculators wait on
each other), so on a small CPU a second graph working on other frames nearly doubles
pass 1's throughput. Frames go out in short consecutive blocks, round-robin, so each
backend still sees mostly consecutive frames for its own landmark tracking, and at
most ``(workers + 1) * block`` frames are in memory whatever the video's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np


def _detect_block(backend: Any, frames: list[np.ndarray]) -> list[list[Any]]:
    return [backend.detect(frame) for frame in frames]


def detect_all(
    frames: Iterable[np.ndarray],
    backends: Sequence[Any],
    *,
    block: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[list[Any]], tuple[int, int] | None]:
    """Detections for every frame in order, and the (H, W) of the frames (None when there were none).

    ``on_done(count)`` is called after each block, for progress.

    Each backend is used by one thread at a time (its next block is submitted only after
    its previous one finished), since stateful backends are not thread-safe.
    """
    detections: list[list[Any]] = []
    pending: list[Future[list[list[Any]]] | None] = [None] * len(backends)
    frame_size: tuple[int, int] | None = None

    def collect(slot: int) -> None:
        future = pending[slot]
        if future is not None:
            done = future.result()
            detections.extend(done)
            pending[slot] = None
            if on_done is not None:
                on_done(len(done))

    with ThreadPoolExecutor(max_workers=len(backends), thread_name_prefix="pose") as pool:
        try:
            batch: list[np.ndarray] = []
            submitted = 0
            for frame in frames:
                if frame_size is None:
                    frame_size = (int(frame.shape[0]), int(frame.shape[1]))
                batch.append(frame)
                if len(batch) == block:
                    slot = submitted % len(backends)
                    collect(slot)  # blocks are collected in submission order, so frames stay in order
                    pending[slot] = pool.submit(_detect_block, backends[slot], batch)
                    submitted += 1
                    batch = []
            for step in range(len(backends)):
                collect((submitted + step) % len(backends))
            if batch:
                detections.extend(_detect_block(backends[submitted % len(backends)], batch))
                if on_done is not None:
                    on_done(len(batch))
        except BaseException:
            for future in pending:
                if future is not None:
                    future.cancel()
            raise
    return detections, frame_size
