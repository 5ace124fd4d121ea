"""The CPU preview of a cast: every character rigged on its own and driven by its own performer.

Each character is the one-character preview's puppet (:class:`CharacterRenderer`), built from its
own cut-out (animate mode: the layer the composed reference placed; replace mode: its letterboxed
image) and posed from its own performer's skeleton. A frame is layered back to front by the depth
cue of that frame (the bottom of each person's box: lower on screen is nearer). Replace mode fills
every cast performer's pixels from the scene's temporal background first, then draws the
characters and puts back, in their depth place, the people who are not in the cast, so they stay
untouched and still pass in front of a character.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from wanimate.cast.folder import LABELS, SCENE, CastArrays, CastFolder, load_cast
from wanimate.preview.compose import composite
from wanimate.preview.inpaint import TemporalBackground
from wanimate.preview.renderer import BACKGROUND_SAMPLES, ENCODER_PRESET, CharacterRenderer, PoseTrack, Timer
from wanimate.video import VideoWriter, iter_frames

HOLE_GROW = 5  # px: swallows the lossy edge of a performer's pixels, as for one character


def _renderers(cast: CastFolder, arrays: CastArrays) -> list[CharacterRenderer]:
    out = []
    for i, member in enumerate(cast.members):
        track = PoseTrack(driving=arrays.driving[i], reference=arrays.reference[i])
        rgb, alpha = cast.layer(member.person)
        out.append(CharacterRenderer(rgb, track, relight=cast.mode == "replace", alpha=alpha))
    return out


def _hole(labels: np.ndarray, person: int) -> np.ndarray:
    mine = (labels == person + 1).astype(np.uint8)
    return cv2.dilate(mine, np.ones((HOLE_GROW, HOLE_GROW), np.uint8)) > 0


def _scene(cast: CastFolder) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Replace mode: (driving frame, id-label map) pairs at the output size."""
    labels = (frame[..., 0] for frame in iter_frames(cast.root / LABELS))
    yield from zip(iter_frames(cast.root / SCENE), labels, strict=False)


def _cast_holes(cast: CastFolder, labels: np.ndarray) -> np.ndarray:
    hole = np.zeros(labels.shape, bool)
    for member in cast.members:
        hole |= _hole(labels, member.person)
    return hole


def _layers(cast: CastFolder, arrays: CastArrays, t: int, labels: np.ndarray | None) -> list[tuple[float, int]]:
    """(depth, what) back to front for frame ``t``: ``what`` >= 0 a character, < 0 a bystander ``-(id + 1)``."""
    layers = [(float(arrays.boxes[i, t, 3]), i) for i in range(len(cast.members)) if arrays.present[i, t]]
    if labels is not None:
        cast_ids = {m.person for m in cast.members}
        for value in np.unique(labels):
            if value == 0 or int(value) - 1 in cast_ids:
                continue
            rows = np.flatnonzero((labels == value).any(axis=1))
            layers.append((float(rows[-1] + 1), -int(value)))
    return sorted(layers)


def render_cast_frames(cast: CastFolder, timer: Timer | None = None) -> Iterator[np.ndarray]:
    """Yield the cast preview's RGB frames one at a time."""
    timer = timer or Timer()
    arrays = cast.arrays()
    with timer.stage("rig"):
        characters = _renderers(cast, arrays)
    size = (cast.width, cast.height)
    if cast.mode == "animate":
        plate = cast.plate()
        for t in range(cast.num_frames):
            frame = plate.copy()
            with timer.stage("warp"):
                for _, index in _layers(cast, arrays, t, None):
                    frame = composite(frame, characters[index].patch(t, size), in_place=True)
            yield frame
        return
    with timer.stage("background"):
        step = max(1, cast.num_frames // BACKGROUND_SAMPLES)
        samples = ((f, _cast_holes(cast, lab)) for t, (f, lab) in enumerate(_scene(cast)) if t % step == 0)
        background = TemporalBackground(samples)
    for t, (original, labels) in enumerate(_scene(cast)):
        with timer.stage("inpaint"):
            frame = background.fill(original, _cast_holes(cast, labels))
        with timer.stage("relight"):
            for member, character in zip(cast.members, characters, strict=True):
                if character.colour is not None:
                    character.colour.observe(frame, _hole(labels, member.person))
        with timer.stage("warp"):
            for _, what in _layers(cast, arrays, t, labels):
                if what >= 0:
                    frame = composite(frame, characters[what].patch(t, size), in_place=True)
                else:
                    keep = labels == -what
                    frame[keep] = original[keep]
        yield frame


def render_cast_preview(
    cast: CastFolder | str | Path,
    output: str | Path,
    *,
    progress: bool = True,
    timer: Timer | None = None,
    audio: bool = True,
    overwrite: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
) -> Path:
    """Render a cast folder's preview to an H.264 mp4 at its frame rate (with the driving audio unless off).

    An existing ``output`` is replaced only with ``overwrite``; it may not be or lie in an input.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from wanimate.paths import check_apart, os_faults, output_file
    from wanimate.video import audio_to_carry

    output = output_file(output, "-o", overwrite=overwrite)
    if not isinstance(cast, CastFolder):
        cast = load_cast(cast)
    source_audio = audio_to_carry(cast.audio) if audio else None
    check_apart(
        {"cast folder": cast.root, "driving video (its audio)": Path(source_audio.path) if source_audio else None},
        {"-o": output},
    )
    timer = timer or Timer()
    with (
        os_faults(),
        Progress(TextColumn("cast preview"), BarColumn(), MofNCompleteColumn(), disable=not progress) as bar,
        VideoWriter(output, cast.fps, preset=ENCODER_PRESET, audio=source_audio) as writer,
    ):
        task = bar.add_task("preview", total=cast.num_frames)
        for done, frame in enumerate(render_cast_frames(cast, timer), start=1):
            with timer.stage("encode"):
                writer.write(frame)
            bar.advance(task)
            if on_frame is not None:
                on_frame(done, cast.num_frames)
    return output
