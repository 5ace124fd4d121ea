"""The preview renderer: a materials folder in, a moving-character mp4 out, on a CPU.

Everything costly (segmentation, meshing, skinning weights, the inpainted plate or the
temporal background) happens once; a frame is then a handful of vectorised steps on
the character's bounding box: pose the bones, skin the mesh, touch up the face, warp,
composite. See docs/preview.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.materials import Materials, load_materials
from wanimate.materials.layout import KEYPOINTS_NAME, MASK_THRESHOLD
from wanimate.native_logs import quiet_native_logs
from wanimate.paths import check_apart, os_faults, output_file
from wanimate.preprocess.keypoints import NUM_KEYPOINTS
from wanimate.preview.color import ColourMatcher
from wanimate.preview.compose import composite
from wanimate.preview.cutout import character_matte
from wanimate.preview.deform import Poser, draw_order, skin
from wanimate.preview.face import DriverNeutral, FaceAnimator, face_state
from wanimate.preview.inpaint import TemporalBackground, reference_plate
from wanimate.preview.rig import Rig, build_rig
from wanimate.preview.warp import Patch, warp_mesh
from wanimate.video import VideoWriter, audio_to_carry, iter_frames

BACKGROUND_SAMPLES = 16
# x264's "medium" would take longer per 480p frame than rendering it; "veryfast" keeps the
# preview faster than real time at a slightly larger file for the same quality (crf).
ENCODER_PRESET = "veryfast"


@dataclass(frozen=True)
class PoseTrack:
    """The keypoints a preview needs, from ``keypoints.npz``.

    ``detected`` is not needed: frames where the person was interpolated still carry usable
    points, and a frame without shoulders simply keeps the previous pose.
    """

    driving: np.ndarray  # (T, 133, 3)
    reference: np.ndarray  # (133, 3)

    @classmethod
    def load(cls, materials: Materials) -> PoseTrack:
        path = materials.root / KEYPOINTS_NAME
        if not path.is_file():
            raise WanimateError(
                f"{path} is missing; the preview needs the keypoints wanimate preprocessing writes "
                "(re-run `wanimate preprocess`)"
            )
        with np.load(path) as data:
            try:
                driving = data["driving"].astype(np.float32)
                reference = data["reference"].astype(np.float32)
            except KeyError as exc:
                raise WanimateError(f"{path} has no {exc} array; re-run `wanimate preprocess`") from exc
        if driving.shape != (materials.num_frames, NUM_KEYPOINTS, 3) or reference.shape != (NUM_KEYPOINTS, 3):
            raise WanimateError(
                f"{path} holds driving {driving.shape} and reference {reference.shape}; expected "
                f"({materials.num_frames}, {NUM_KEYPOINTS}, 3) and ({NUM_KEYPOINTS}, 3): re-run `wanimate preprocess`"
            )
        return cls(driving, reference)


class Timer:
    """Accumulates seconds per stage, wall clock and process CPU, for the benchmark.

    CPU time is what a stage costs this process whatever else the machine is doing; on a
    busy machine the wall clock also counts waiting for a core.
    """

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - cpu


class CharacterRenderer:
    """The rigged character: poses, relights and warps it for one frame at a time."""

    def __init__(
        self, reference_rgb: np.ndarray, track: PoseTrack, *, relight: bool, alpha: np.ndarray | None = None
    ) -> None:
        """``alpha`` is the character's matte when already known (a cast's placed layer); else it is cut out."""
        alpha = character_matte(reference_rgb, track.reference) if alpha is None else alpha
        self.alpha = alpha
        self.rig: Rig = build_rig(alpha > 0.5, track.reference)
        ys, xs = np.nonzero(alpha > 0.01)
        h, w = alpha.shape
        self.offset = (max(int(xs.min()) - 2, 0), max(int(ys.min()) - 2, 0))
        x1, y1 = min(int(xs.max()) + 3, w), min(int(ys.max()) + 3, h)
        x0, y0 = self.offset
        self.rgb = np.ascontiguousarray(reference_rgb[y0:y1, x0:x1])
        crop_alpha = alpha[y0:y1, x0:x1]
        self.alpha8 = np.round(crop_alpha * 255).astype(np.uint8)
        self.alpha3 = cv2.merge([self.alpha8] * 3)
        self.src = self.rig.vertices - np.array(self.offset, np.float32)
        self.poser = Poser(self.rig)
        self.track = track
        self.face = FaceAnimator(track.reference, self.offset, self.rgb.shape[:2])
        self.face_states = [face_state(kp) for kp in track.driving]
        self.neutral = DriverNeutral.from_clip(self.face_states)
        self.colour = ColourMatcher(self.rgb, crop_alpha) if relight else None

    def patch(self, index: int, frame_size: tuple[int, int]) -> Patch | None:
        kp = self.track.driving[index]
        dst = skin(self.rig, self.poser.transforms(kp))
        order = draw_order(self.rig, kp)
        rgb = self.colour.apply() if self.colour is not None else self.rgb
        rgb = self.face.apply(rgb, self.face_states[index], self.neutral)
        premultiplied = cv2.multiply(rgb, self.alpha3, scale=1.0 / 255.0)
        texture = cv2.merge([*cv2.split(premultiplied), self.alpha8])
        return warp_mesh(texture, self.src, dst, self.rig.triangles, order, frame_size)


def _holes(mask_frame: np.ndarray) -> np.ndarray:
    """Performer pixels, grown by two pixels to swallow the lossy edge of the blacked-out region."""
    hard = (mask_frame[..., 0] >= MASK_THRESHOLD).astype(np.uint8)
    return cv2.dilate(hard, np.ones((5, 5), np.uint8)) > 0


def _sampled(materials: Materials, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    step = max(1, materials.num_frames // count)
    pairs = zip(iter_frames(materials.path("bg")), iter_frames(materials.path("mask")), strict=False)
    for i, (bg, mask) in enumerate(pairs):
        if i % step == 0:
            yield bg, _holes(mask)


def _scene(materials: Materials) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Replace mode's driving frames (performer blacked out) with the performer's hole."""
    pairs = zip(iter_frames(materials.path("bg")), iter_frames(materials.path("mask")), strict=False)
    for bg, mask in pairs:
        yield bg, _holes(mask)


def _load_reference(materials: Materials) -> np.ndarray:
    with Image.open(materials.path("ref")) as img:
        ref = np.asarray(img.convert("RGB"))
    if ref.shape[:2] != (materials.height, materials.width):
        raise WanimateError(
            f"{materials.path('ref')} is {ref.shape[1]}x{ref.shape[0]} but the materials are "
            f"{materials.width}x{materials.height}; re-run `wanimate preprocess`"
        )
    return ref


def render_frames(materials: Materials, timer: Timer | None = None) -> Iterator[np.ndarray]:
    """Yield the preview's RGB frames one at a time (nothing is held for the whole clip)."""
    return _frames(materials, PoseTrack.load(materials), _load_reference(materials), timer or Timer())


def _frames(materials: Materials, track: PoseTrack, reference: np.ndarray, timer: Timer) -> Iterator[np.ndarray]:
    replace = materials.mode == "replace"
    with timer.stage("rig"), quiet_native_logs():  # the cut-out runs MediaPipe's segmenter
        character = CharacterRenderer(reference, track, relight=replace)
    with timer.stage("background"):
        plate = None if replace else reference_plate(reference, character.alpha)
        scene = TemporalBackground(_sampled(materials, BACKGROUND_SAMPLES)) if replace else None
    size = (materials.width, materials.height)
    scene_frames = _scene(materials) if scene is not None else None
    for index in range(materials.num_frames):
        if scene is None or scene_frames is None:
            assert plate is not None
            background = plate
        else:
            with timer.stage("decode"):
                background, hole = next(scene_frames)
            with timer.stage("inpaint"):
                background = scene.fill(background, hole)
            with timer.stage("relight"):
                assert character.colour is not None
                character.colour.observe(background, hole)
        with timer.stage("warp"):
            patch = character.patch(index, size)
        with timer.stage("composite"):
            # A decoded frame is ours to draw on; the animate plate is reused, so it is copied.
            frame = composite(background, patch, in_place=scene is not None)
        yield frame


def render_preview(
    materials: Materials | str | Path,
    output: str | Path,
    *,
    progress: bool = True,
    timer: Timer | None = None,
    audio: bool = True,
    overwrite: bool = False,
    on_frame: Callable[[int, int], None] | None = None,
) -> Path:
    """Render the preview of a materials folder to an H.264 mp4 at the materials' frame rate.

    The video carries the driving video's audio (as the materials record it), cut to its length,
    unless ``audio`` is off; an existing ``output`` is replaced only with ``overwrite``.
    ``timer``, when given, collects the time spent per stage (rig, background, decode,
    inpaint, relight, warp, composite, encode): what ``wanimate bench preview`` reports.
    ``on_frame(done, total)`` is called after each frame, for progress reports.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    output = output_file(output, "-o", overwrite=overwrite)
    if not isinstance(materials, Materials):
        materials = load_materials(materials)
    check_apart(_inputs(materials, audio), {"-o": output})
    frames = render_frames(materials, timer := timer or Timer())  # reads the keypoints now: errors come first
    columns = (TextColumn("preview"), BarColumn(), MofNCompleteColumn())
    source_audio = audio_to_carry(materials.meta.audio) if audio else None
    total = materials.num_frames
    with (
        os_faults(),
        quiet_native_logs(),
        Progress(*columns, TimeRemainingColumn(), disable=not progress, transient=True) as bar,
        VideoWriter(output, materials.meta.fps, preset=ENCODER_PRESET, audio=source_audio) as writer,
    ):
        task = bar.add_task("preview", total=total)
        for index, frame in enumerate(frames):
            with timer.stage("encode"):
                writer.write(frame)
            bar.advance(task)
            if on_frame is not None:
                on_frame(index + 1, total)
    return output


def _inputs(materials: Materials, audio: bool) -> dict[str, Path | None]:
    """What a video made from ``materials`` reads: the folder, and the driving video its audio comes from."""
    source = materials.meta.audio
    return {"materials folder": materials.root, "driving video": Path(source.path) if audio and source else None}
