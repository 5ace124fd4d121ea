"""``wanimate people VIDEO``: who is in a video, and a contact sheet to choose the performer from.

The sheet shows the frame with the most people, each person's box and id drawn on them, and
below it one thumbnail per person cut from the first frame they appear in (the frame
``--person-at`` refers to), labelled with their id, frames and size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from wanimate.preprocess.sizing import MAX_SIDE
from wanimate.preprocess.tracking import PersonTrack
from wanimate.video import iter_frames

SHEET_WIDTH = 960
THUMB_HEIGHT = 160
_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180)]


def colour(person_id: int) -> tuple[int, int, int]:
    return _COLOURS[person_id % len(_COLOURS)]


def describe(people: list[PersonTrack], fps: float) -> list[str]:
    """One line per person: id, frames present, seconds, size."""
    lines = [f"{'id':>3}  {'frames':>11}  {'present':>7}  {'detected':>8}  {'height':>6}"]
    for p in people:
        present = int(p.present.sum())
        lines.append(
            f"{p.id:>3}  {p.first_frame:>5}-{p.last_frame:<5}  {present / fps:>6.1f}s  "
            f"{int(p.detected.sum()):>8}  {p.height:>4.0f}px"
        )
    return lines


def _label(image: np.ndarray, text: str, x: int, y: int, rgb: tuple[int, int, int], scale: float = 0.6) -> None:
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    y = max(h + 4, y)
    cv2.rectangle(image, (x, y - h - 4), (x + w + 6, y + base), rgb, -1)
    cv2.putText(image, text, (x + 3, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)


def sheet_frames(people: list[PersonTrack]) -> set[int]:
    """The frames the sheet is drawn from: the one with the most people and each person's first."""
    return {busiest_frame(people), *(p.first_frame for p in people)}


def busiest_frame(people: list[PersonTrack]) -> int:
    counts = np.sum([p.present for p in people], axis=0) if people else np.zeros(1)
    return int(np.argmax(counts))


def contact_sheet(video: Path, people: list[PersonTrack], fps: float | None = None) -> np.ndarray:
    """The sheet of ``video`` as an RGB array (see the module docstring), decoding only up to the frames it needs."""
    wanted = sheet_frames(people)
    frames: dict[int, np.ndarray] = {}
    for index, frame in enumerate(iter_frames(video, fps=fps, max_side=MAX_SIDE)):
        if index in wanted:
            frames[index] = frame
        if index >= max(wanted):
            break
    return draw_sheet(frames, people)


def draw_sheet(frames: dict[int, np.ndarray], people: list[PersonTrack]) -> np.ndarray:
    """The sheet from ``frames`` (at least those of :func:`sheet_frames`) as an RGB array."""
    busiest = busiest_frame(people)
    scene = frames[busiest].copy()
    thick = max(2, scene.shape[1] // 400)
    for p in people:
        if p.present[busiest]:
            x0, y0, x1, y1 = (int(v) for v in p.boxes[busiest])
            cv2.rectangle(scene, (x0, y0), (x1, y1), colour(p.id), thick)
    scale = SHEET_WIDTH / scene.shape[1]
    top = cv2.resize(scene, (SHEET_WIDTH, round(scene.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    for p in people:
        if p.present[busiest]:
            x0, y0 = (int(v * scale) for v in p.boxes[busiest][:2])
            _label(top, str(p.id), x0, y0, colour(p.id), 0.8)
    _label(top, f"frame {busiest}", 4, 24, (255, 255, 255))
    thumbs = []
    for p in people:
        x0, y0, x1, y1 = p.boxes[p.first_frame]
        grow = 0.1 * max(x1 - x0, y1 - y0)
        source = frames[p.first_frame]
        h, w = source.shape[:2]
        crop = source[max(0, int(y0 - grow)) : min(h, int(y1 + grow)), max(0, int(x0 - grow)) : min(w, int(x1 + grow))]
        width = max(1, round(crop.shape[1] * (THUMB_HEIGHT - 24) / max(crop.shape[0], 1)))
        thumb = np.zeros((THUMB_HEIGHT, max(width, 120), 3), np.uint8)
        thumb[24:, :width] = cv2.resize(crop, (width, THUMB_HEIGHT - 24), interpolation=cv2.INTER_AREA)
        _label(thumb, f"{p.id}: {p.first_frame}-{p.last_frame}, {p.height:.0f}px", 0, 20, colour(p.id), 0.45)
        thumbs.append(thumb)
    rows, row, used = [], [], 0
    for thumb in thumbs:
        if row and used + thumb.shape[1] > SHEET_WIDTH:
            rows.append(row)
            row, used = [], 0
        row.append(thumb)
        used += thumb.shape[1] + 4
    if row:
        rows.append(row)
    strips = [top]
    for row in rows:
        strip = np.zeros((THUMB_HEIGHT + 4, SHEET_WIDTH, 3), np.uint8)
        x = 0
        for thumb in row:
            strip[4:, x : x + min(thumb.shape[1], SHEET_WIDTH - x)] = thumb[:, : SHEET_WIDTH - x]
            x += thumb.shape[1] + 4
        strips.append(strip)
    return np.concatenate(strips, axis=0)


@dataclass(frozen=True)
class PeopleListing:
    """Everyone in a video as ``wanimate people`` (and the server's ``POST /people``) shows them."""

    video: Path
    people: list[PersonTrack]
    fps: float
    frame_size: tuple[int, int]  # (H, W) of the decoded frames
    num_frames: int
    sheet: np.ndarray  # the contact sheet, RGB

    def lines(self) -> list[str]:
        h, w = self.frame_size
        head = f"{len(self.people)} people in {self.video.name} ({w}x{h}, {self.num_frames} frames)"
        return [head, *describe(self.people, self.fps)]

    def tracks(self) -> list[dict[str, object]]:
        """Per person: id, frames, size and the box in their first frame (source pixels), as JSON values."""
        return [
            {
                "id": int(p.id),
                "first_frame": p.first_frame,
                "last_frame": p.last_frame,
                "frames_present": int(p.present.sum()),
                "frames_detected": int(p.detected.sum()),
                "height_px": round(p.height, 1),
                "first_box": [round(float(v), 1) for v in p.boxes[p.first_frame]],
            }
            for p in self.people
        ]


def list_people(
    video: Path, *, fps: float | None = None, max_people: int = 8, finder: str = "tiles", progress: bool = True
) -> PeopleListing:
    """Everyone in ``video``, tracked by preprocessing's own first pass (so a cast's ids are these), and the sheet."""
    from wanimate.preprocess.passes import first_pass, source_info
    from wanimate.preprocess.progress import Reporter
    from wanimate.preprocess.settings import PreprocessSettings, StageTimer

    settings = PreprocessSettings(fps=fps, max_people=max_people, finder=finder, smooth=False)
    video = Path(video).resolve()
    info = source_info(video)
    reporter = Reporter(enabled=progress)
    try:
        motion = first_pass(video, settings, fps or info.fps, info, StageTimer(), reporter)
    finally:
        reporter.close()
    sheet = contact_sheet(video, motion.people, fps)
    return PeopleListing(video, motion.people, fps or info.fps, motion.frame_size, len(motion.keypoints), sheet)


def write_people_sheet(
    video: Path,
    sheet: Path,
    *,
    fps: float | None = None,
    max_people: int = 8,
    finder: str = "tiles",
    progress: bool = True,
) -> list[str]:
    """Track everyone in ``video`` (pass 1 of preprocessing), write the sheet PNG, return the table lines."""
    from PIL import Image

    from wanimate.errors import WanimateError

    if sheet.suffix.lower() != ".png":
        raise WanimateError(f"--sheet must be a .png file, not {sheet}")
    if sheet.exists():
        raise WanimateError(f"{sheet} already exists; choose another --sheet path")
    listing = list_people(video, fps=fps, max_people=max_people, finder=finder, progress=progress)
    sheet.parent.mkdir(parents=True, exist_ok=True)
    partial = sheet.with_name(f".{sheet.name}.partial")
    Image.fromarray(listing.sheet).save(partial, format="PNG")
    partial.replace(sheet)
    return listing.lines()
