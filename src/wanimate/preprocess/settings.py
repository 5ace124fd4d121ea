"""The settings of one preprocessing run and the per-stage clock that reports on it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from wanimate.errors import WanimateError
from wanimate.materials.folder import Mode
from wanimate.preprocess.sizing import check_area


@dataclass(frozen=True)
class Settings:
    """Every choice that shapes the materials; recorded verbatim in meta.json."""

    mode: Mode = "animate"
    retarget: bool = True
    fps: float | None = None
    area: tuple[int, int] = (1280, 720)
    backend: str = "mediapipe"
    models_dir: str | None = None
    person: str | int = "auto"
    person_at: tuple[float, float] | None = None  # a source pixel on the performer, in their first frame
    max_people: int = 8
    finder: str = "tiles"
    people_media: bool = False  # also write people_masks.mp4 and every person's face crops
    smooth: bool = True
    preview: bool = False
    mask_iterations: int = 3
    mask_k: int = 7
    mask_w_len: int = 1
    mask_h_len: int = 1
    pose_workers: int = 0  # 0 = automatic (see passes.pose_workers)

    def validate(self) -> None:
        if self.mode not in ("animate", "replace"):
            raise WanimateError(f"--mode must be 'animate' or 'replace', not {self.mode!r}")
        if self.fps is not None and not (0 < self.fps <= 240):
            raise WanimateError(f"--fps must be between 0 and 240 (or 'source'), not {self.fps}")
        if isinstance(self.person, int) and self.person < 0:
            raise WanimateError(f"--person must be 'auto' or a number from 0, not {self.person}")
        if self.person_at is not None and (len(self.person_at) != 2 or min(self.person_at) < 0):
            raise WanimateError(f"--person-at must be X,Y in source pixels (0 or more), not {self.person_at}")
        if self.max_people < 1:
            raise WanimateError(f"--max-people must be 1 or more, not {self.max_people}")
        if self.finder not in ("tiles", "single"):
            raise WanimateError(f"--finder must be 'tiles' or 'single', not {self.finder!r}")
        if self.pose_workers < 0:
            raise WanimateError(f"--pose-workers must be 0 (automatic) or more, not {self.pose_workers}")
        if self.mask_iterations < 0 or self.mask_k < 1 or self.mask_w_len < 1 or self.mask_h_len < 1:
            raise WanimateError("--mask-iterations must be >= 0 and --mask-k, --mask-w-len, --mask-h-len >= 1")
        if self.mask_iterations > 64 or self.mask_k > 255 or max(self.mask_w_len, self.mask_h_len) > 64:
            raise WanimateError(
                "--mask-iterations and --mask-w-len/--mask-h-len must be at most 64 and --mask-k at most 255 "
                "(the official defaults are 3 and 7)"
            )
        if len(self.area) != 2 or not all(isinstance(side, int) for side in self.area):
            raise WanimateError(f"area must be two whole numbers (width, height), not {self.area!r}")
        check_area(self.area)


@dataclass
class StageTimer:
    """Seconds per stage; pass 2 overlaps with encoder threads, so stages need not sum to the total."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def timed(self, name: str, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Charge the time spent producing each item (decoding) to ``name``."""
        while True:
            start = time.perf_counter()
            try:
                item = next(frames)
            except StopIteration:
                self.add(name, time.perf_counter() - start)
                return
            self.add(name, time.perf_counter() - start)
            yield item
