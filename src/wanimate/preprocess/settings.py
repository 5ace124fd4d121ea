"""Preprocessing settings (the one definition of every ``preprocess`` option) and the per-stage clock.

The CLI (``wanimate preprocess``, ``wanimate run``), the server's job options and the Python API
are derived from the fields below (see :mod:`wanimate.options`); everything is recorded in
``meta.json`` under ``provenance.settings``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wanimate import options
from wanimate.errors import WanimateError
from wanimate.materials.layout import MODES
from wanimate.options import option

if TYPE_CHECKING:
    import numpy as np

POSE_BACKENDS = ("mediapipe", "vitpose")
MASK_BACKENDS = ("auto", "mediapipe", "sam2")
MAX_AREA_SIDE = 2048


def parse_fps(text: str) -> float | None:
    if text.strip().lower() == "source":
        return None
    try:
        value = float(text)
    except ValueError:
        raise WanimateError(f"--fps must be a number or 'source', not {text!r}") from None
    if value <= 0:
        raise WanimateError(f"--fps must be positive, not {text}")
    return value


def parse_person(text: str) -> str | int:
    if text.strip().lower() == "auto":
        return "auto"
    if not text.strip().isdigit():
        raise WanimateError(f"--person must be 'auto' or a number (0 = leftmost), not {text!r}")
    return int(text)


def _parse_area(text: str) -> tuple[int, int]:
    from wanimate.preprocess.sizing import parse_area

    return parse_area(text)


def _show_area(area: tuple[int, int]) -> str:
    return f"{area[0]}x{area[1]}"


def _area_rule(area: tuple[int, int]) -> str | None:
    from wanimate.preprocess.sizing import MIN_SIDE

    if all(MIN_SIDE <= side <= MAX_AREA_SIDE for side in area):
        return None
    return f"sides must be between {MIN_SIDE} and {MAX_AREA_SIDE}"


def _person_rule(person: str | int) -> str | None:
    if person == "auto" or (isinstance(person, int) and person >= 0):
        return None
    return "must be 'auto' or a number from 0 (0 = leftmost)"


@dataclass(frozen=True)
class PreprocessSettings:
    """Every choice that shapes the materials; invalid values raise :class:`WanimateError` on construction."""

    mode: str = option(
        "animate", help="animate: move the character; replace: put it in the video.", choices=MODES, serve=True
    )
    retarget: bool = option(True, help="Rescale the driver's bones to the character (animate only).", serve=True)
    fps: float | None = option(
        None, help="Output frame rate, or 'source' to keep the video's.", above=0.0, max=120.0,
        parse=parse_fps, show=lambda v: "source" if v is None else f"{v:g}", serve=True,
    )  # fmt: skip
    area: tuple[int, int] = option(
        (1280, 720), help="Target pixel area WxH; aspect kept, sides multiples of 16.", parse=_parse_area,
        show=_show_area, rule=_area_rule, serve=True,
    )  # fmt: skip
    pose_backend: str = option(
        "mediapipe", help="Pose backend: mediapipe (bundled) or vitpose (official ONNX).", choices=POSE_BACKENDS
    )
    models_dir: str | None = option(
        None, help="Official process_checkpoint folder (vitpose backend; its sam2/ checkpoint is used for masks)."
    )
    person: str | int = option(
        "auto", help="auto (main performer) or N (0 = leftmost).", parse=parse_person, show=str, rule=_person_rule,
        serve=True,
    )  # fmt: skip
    smooth: bool = option(True, help="Temporal smoothing of keypoints.", serve=True)
    strip: bool = option(False, help="Also write strip.mp4 (every material side by side).", negative="")
    mask_backend: str = option(
        "auto", help="Replace-mode person masks: auto (SAM2 when installed and a checkpoint is found), "
        "mediapipe or sam2.", choices=MASK_BACKENDS,
    )  # fmt: skip
    sam2_checkpoint: str | None = option(
        None, help="SAM2 checkpoint (e.g. sam2.1_hiera_large.pt; default: MODELS_DIR/sam2/*.pt)."
    )
    mask_iterations: int = option(3, help="Mask dilation iterations (replace).", min=0, max=100, serve=True)
    mask_k: int = option(7, help="Mask dilation kernel size (replace).", min=1, max=101, serve=True)
    mask_w_len: int = option(1, help="Mask bbox grid columns; 1 = full rectangle.", min=1, max=100, serve=True)
    mask_h_len: int = option(1, help="Mask bbox grid rows; 1 = full rectangle.", min=1, max=100, serve=True)
    pose_workers: int = option(0, help="Pose backends run in parallel; 0 = automatic.", min=0, max=64)

    def __post_init__(self) -> None:
        options.check(self)


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
