"""Preprocessing settings (the one definition of every ``preprocess`` option) and the per-stage clock.

The CLI (``wanimate preprocess``, ``wanimate run``), the server's job options and the Python API
are derived from the fields below (see :mod:`wanimate.options`); everything is recorded in
``meta.json`` under ``provenance.settings``.
"""

from __future__ import annotations

import contextlib
import threading
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
FINDERS = ("tiles", "single")
# ``wanimate people`` (and the server's ``POST /people``) list who is in a video: of these options,
# only how the video is sampled and people are found.
PEOPLE_OPTIONS = ("fps", "max_people", "finder")


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
        raise WanimateError(
            f"--person must be 'auto' or a person id (0 = leftmost; see `wanimate people`), not {text!r}"
        )
    return int(text)


def _parse_area(text: str) -> tuple[int, int]:
    from wanimate.preprocess.sizing import parse_area

    return parse_area(text)


def _show_area(area: tuple[int, int]) -> str:
    return f"{area[0]}x{area[1]}"


def _area_rule(area: tuple[int, int]) -> str | None:
    from wanimate.preprocess.sizing import MAX_SIDE, MIN_SIDE

    if min(area) < MIN_SIDE:
        return f"is too small; each side must be at least {MIN_SIDE}"
    if max(area) > MAX_SIDE:
        return f"is too large; each side must be at most {MAX_SIDE}"
    return None


def parse_point(text: str | None) -> tuple[float, float] | None:
    """``"320,180"`` -> (320.0, 180.0): a pixel of the driving video."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise WanimateError(f"--person-at must be X,Y in video pixels (e.g. 320,180), not {text!r}") from None
    if x < 0 or y < 0:
        raise WanimateError(f"--person-at must be X,Y in video pixels (0 or more), not {text!r}")
    return x, y


def _show_point(point: tuple[float, float] | None) -> str | None:
    return None if point is None else f"{point[0]:g},{point[1]:g}"


def _point_rule(point: tuple[float, float] | None) -> str | None:
    if point is None or min(point) >= 0:
        return None
    return "must be X,Y in source pixels (0 or more)"


def _person_rule(person: str | int) -> str | None:
    if person == "auto" or (isinstance(person, int) and person >= 0):
        return None
    return "must be 'auto' or a person id from 0 (0 = leftmost)"


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
        (1280, 720), help="Target pixel area WxH (or 480p, 720p); aspect kept, sides multiples of 16.",
        parse=_parse_area, show=_show_area, rule=_area_rule, serve=True,
    )  # fmt: skip
    pose_backend: str = option(
        "mediapipe", help="Pose backend: mediapipe (bundled) or vitpose (official ONNX).", choices=POSE_BACKENDS
    )
    models_dir: str | None = option(
        None, help="Official process_checkpoint folder (vitpose backend; its sam2/ checkpoint is used for masks)."
    )
    person: str | int = option(
        "auto", help="People: auto (main performer) or an id from `wanimate people` (0 = leftmost).",
        parse=parse_person, show=str, rule=_person_rule, serve=True,
    )  # fmt: skip
    person_at: tuple[float, float] | None = option(
        None, help="People: the performer is the person at X,Y (video pixels) in their first frame.",
        parse=parse_point, show=_show_point, rule=_point_rule, serve=True,
    )  # fmt: skip
    max_people: int = option(8, help="People: at most this many followed at once.", min=1, max=64, serve=True)
    finder: str = option(
        "tiles", help="People: tiles (every size) or single (faster, large people only).", choices=FINDERS,
        serve=True,
    )  # fmt: skip
    people_media: bool = option(
        False, help="People: also write every person's masks (people_masks.mp4) and face crops.", negative=""
    )
    smooth: bool = option(True, help="Temporal smoothing of keypoints.", serve=True)
    strip: bool = option(False, help="Also write strip.mp4 (every material side by side).", negative="")
    mask_backend: str = option(
        "auto", help="Replace-mode person masks: auto (SAM2 when installed and a checkpoint is found), "
        "mediapipe or sam2.", choices=MASK_BACKENDS,
    )  # fmt: skip
    sam2_checkpoint: str | None = option(
        None, help="SAM2 checkpoint (e.g. sam2.1_hiera_large.pt; default: MODELS_DIR/sam2/*.pt)."
    )
    # Bounded so a typo cannot make a mask pass run for hours (the official defaults are 3 and 7).
    mask_iterations: int = option(3, help="Mask dilation iterations (replace).", min=0, max=64, serve=True)
    mask_k: int = option(7, help="Mask dilation kernel size (replace).", min=1, max=255, serve=True)
    mask_w_len: int = option(1, help="Mask bbox grid columns; 1 = full rectangle.", min=1, max=64, serve=True)
    mask_h_len: int = option(1, help="Mask bbox grid rows; 1 = full rectangle.", min=1, max=64, serve=True)
    pose_workers: int = option(
        0, help="Pass-1 pose workers, each on a stretch of the clip; 0 = one per core, at most 4.", min=0, max=64
    )

    def __post_init__(self) -> None:
        options.check(self)


@dataclass
class StageTimer:
    """Seconds per stage; pass 2 overlaps with encoder threads, so stages need not sum to the total."""

    seconds: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:  # pass 1's decoders charge "decode" from several threads
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
