"""A cast's inputs with known truth: people crossing on a plain scene, and cut-out figures to cast.

The people record here is ground truth (the protocol of :mod:`wanimate.cast.people`), so the cast's
own logic is tested apart from detection and tracking: every person's box, keypoints and visible
pixels are known in every frame. Figures are standing stick bodies filled in a colour of their own,
so who is drawn where can be read back from the pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from wanimate.cast.characters import CastCharacter
from wanimate.preprocess.keypoints import body20
from wanimate.preprocess.skeleton import LIMBS
from wanimate.testing.synthetic import figure_keypoints

COLOURS = ((200, 40, 40), (40, 160, 60), (40, 70, 210))  # performers
CHARACTER_COLOURS = ((230, 200, 30), (200, 40, 200), (30, 200, 220))


def figure_alpha(keypoints: np.ndarray, size: tuple[int, int], width: float) -> np.ndarray:
    """A filled stick body over ``keypoints`` (limbs ``width`` px thick, a round head), as a 0/1 float map."""
    canvas = np.zeros(size, np.uint8)
    body = body20(keypoints)
    for a, b in LIMBS[:12]:
        if body[a, 2] > 0 and body[b, 2] > 0:
            p, q = body[a, :2].astype(int), body[b, :2].astype(int)
            cv2.line(canvas, tuple(int(v) for v in p), tuple(int(v) for v in q), 1, max(int(width), 1))
    torso = np.array([body[2, :2], body[5, :2], body[11, :2], body[8, :2]], np.int32)
    cv2.fillConvexPoly(canvas, torso, 1)
    cv2.circle(canvas, tuple(int(v) for v in body[0, :2]), max(int(width * 1.2), 2), 1, -1)
    return canvas.astype(np.float32)


@dataclass(frozen=True)
class TruthPerson:
    id: int
    keypoints: np.ndarray
    boxes: np.ndarray
    state: np.ndarray
    face_boxes: np.ndarray

    @property
    def present(self) -> np.ndarray:
        return self.state != 0


@dataclass
class TruthPeople:
    num_frames: int
    fps: float
    source_size: tuple[int, int]
    people: list[TruthPerson]
    labels: np.ndarray = field(repr=False)  # (T, H, W) uint8

    def iter_masks(self) -> Iterator[np.ndarray]:
        yield from self.labels


@dataclass
class CrossingScene:
    """People walking across each other (the last one nearest); frames and truth."""

    people: TruthPeople
    frames: np.ndarray  # (T, H, W, 3)

    def write(self, path: Path) -> Path:
        from wanimate.video import VideoWriter

        with VideoWriter(path, self.people.fps, crf=10) as writer:
            for frame in self.frames:
                writer.write(frame)
        return path


def crossing_scene(
    count: int = 2, frames: int = 10, size: tuple[int, int] = (128, 192), late: int | None = None
) -> CrossingScene:
    """``count`` (up to 3) figures whose paths cross mid-clip; person i's feet are lower (nearer) with i.

    ``late``: that person only enters at frame 3 (absent before).
    """
    height, width = size
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(90, 160, (height // 8, width // 8, 3), dtype=np.uint8), (width, height))
    tracks = []
    paths = ((0.2, 0.8), (0.8, 0.2), (0.45, 0.55))  # two walk across each other, past a third in the middle
    for i in range(count):
        start, end = paths[i]
        xs = np.linspace(start, end, frames) * width
        feet = height * (0.78 + 0.07 * i)
        figure_h = height * (0.55 + 0.06 * i)
        tracks.append([(x - figure_h * 0.2, feet - figure_h, x + figure_h * 0.2, feet) for x in xs])
    keypoints = np.zeros((count, frames, 133, 3), np.float32)
    state = np.ones((count, frames), np.uint8)
    if late is not None:
        state[late, :3] = 0
    boxes = np.zeros((count, frames, 4), np.float32)
    labels = np.zeros((frames, height, width), np.uint8)
    video = np.zeros((frames, height, width, 3), np.uint8)
    for t in range(frames):
        canvas = base.copy()
        for i in range(count):  # far to near
            if not state[i, t]:
                continue
            box = tracks[i][t]
            keypoints[i, t] = figure_keypoints(box)
            boxes[i, t] = box
            alpha = figure_alpha(keypoints[i, t], size, width=(box[2] - box[0]) * 0.18) > 0.5
            labels[t][alpha] = i + 1
            canvas[alpha] = COLOURS[i]
        video[t] = canvas
    faces = boxes.copy()
    faces[..., 3] = faces[..., 1] + (faces[..., 3] - faces[..., 1]) * 0.15
    people = [TruthPerson(i, keypoints[i], boxes[i], state[i], faces[i]) for i in range(count)]
    return CrossingScene(TruthPeople(frames, 10.0, (width, height), people, labels), video)


def character(index: int, folder: Path, size: tuple[int, int] = (160, 96)) -> CastCharacter:
    """A figure image to cast (written to ``folder``): a standing body in a colour of its own, on white."""
    height, width = size
    kp = figure_keypoints((width * 0.2, height * 0.08, width * 0.8, height * 0.96))
    alpha = figure_alpha(kp, size, width=width * 0.1)
    pixels = np.full((height, width, 3), 255, np.uint8)
    pixels[alpha > 0.5] = CHARACTER_COLOURS[index]
    path = folder / f"character_{index}.png"
    cv2.imwrite(str(path), pixels[..., ::-1])
    return CastCharacter(path, pixels, alpha, kp)
