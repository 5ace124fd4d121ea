"""``preprocess``: a character image and a driving video become a materials folder.

Two streamed passes over the driving video keep host memory flat however long it is:
pass 1 keeps only the (small) detections, because choosing and smoothing one performer
needs the whole clip; pass 2 decodes again and writes every material video frame by
frame. Everything is built in a hidden sibling folder and renamed into place at the
end, so a failure never leaves a folder that ``load_materials`` would accept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import wanimate
from wanimate.errors import WanimateError
from wanimate.examples import resolve_input
from wanimate.hashing import file_sha256
from wanimate.materials.folder import Materials, MaterialsMeta, load_materials, write_meta
from wanimate.materials.layout import FACE_SIZE, KEYPOINTS_NAME, MATERIAL_FILES, STRIP_NAME
from wanimate.materials.people import PEOPLE_FACES, write_people
from wanimate.native_logs import quiet_native_logs
from wanimate.options import build
from wanimate.paths import input_file
from wanimate.preprocess.face_crop import face_boxes
from wanimate.preprocess.keypoints import empty_pose
from wanimate.preprocess.masks import sam2_checkpoint, segmenter_backend
from wanimate.preprocess.passes import first_pass, second_pass, source_info
from wanimate.preprocess.pose import make_backend
from wanimate.preprocess.progress import Reporter
from wanimate.preprocess.reference import load_character
from wanimate.preprocess.retarget import retarget as retarget_poses
from wanimate.preprocess.settings import PreprocessSettings, StageTimer
from wanimate.preprocess.sizing import MAX_SIDE, MIN_SIDE, Fit, letterbox, output_size, stretch
from wanimate.preprocess.staging import staged_folder
from wanimate.video import AudioSource

_PORTRAIT_FACE = 24.0  # smallest face looked for in the character image (px): it shows one main person


def _pick_main(people: list[Any]) -> Any | None:
    """The character image's person: the largest confident one (a portrait may show others)."""

    def weight(person: Any) -> float:
        x0, y0, x1, y1 = (float(v) for v in person.bbox)
        return max(0.0, x1 - x0) * max(0.0, y1 - y0) * max(person.score, 1e-3)

    return max(people, key=weight) if people else None


def preprocess(
    image: str | Path,
    video: str | Path,
    output: str | Path,
    settings: PreprocessSettings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> Materials:
    """Write a complete materials folder at ``output`` and return it validated.

    ``settings`` (a :class:`PreprocessSettings`) and/or ``options`` (its field names, e.g.
    ``mode="replace", area=(832, 480)``, applied on top) choose everything; see
    docs/preprocess.md. ``fps=None`` keeps the driving video's rate; ``area`` is a target pixel
    area, not a size (the aspect comes from the character image in animate mode and from the video
    in replace mode). Retargeting applies to animate mode only, as in the official code.
    ``pose_workers`` pose workers share pass 1, each on a stretch of the clip (0 = one per core).
    Everyone in the video is tracked (up to ``max_people`` at once) and written to the
    ``people`` record; ``person`` (an id or "auto") or ``person_at`` (a source pixel on them in
    their first frame) chooses the performer; ``people_media`` also writes every person's
    instance masks and face crops (see docs/materials.md). ``image`` and ``video`` may name the
    bundled examples (``example:astronaut``).
    Raises :class:`WanimateError` for anything the user can fix; nothing is left at
    ``output`` unless the whole folder was written.
    """
    settings = build(PreprocessSettings, options, settings)
    if settings.mode != "animate" and settings.retarget:
        settings = dataclasses.replace(settings, retarget=False)
    if settings.mode == "replace":
        sam2_checkpoint(settings)  # a named checkpoint that is not there fails before any work
    image = input_file(resolve_input(image), "character image").resolve()
    video = input_file(resolve_input(video), "driving video").resolve()
    output = Path(output).absolute()
    inputs = {"character image": image, "driving video": video, "--models-dir": settings.models_dir}
    reporter = Reporter(enabled=progress)
    try:
        with quiet_native_logs(), staged_folder(output, overwrite, inputs) as staging:
            _build(staging, image, video, settings, reporter)
    finally:
        reporter.close()
    return load_materials(output)


def _build(staging: Path, image: Path, video: Path, settings: PreprocessSettings, reporter: Reporter) -> None:
    timer = StageTimer()
    started = time.perf_counter()
    info = source_info(video)
    if min(info.width, info.height) < MIN_SIDE:
        raise WanimateError(
            f"driving video {video} is {info.width}x{info.height}; each side must be at least {MIN_SIDE} px"
        )
    if max(info.width, info.height) > MAX_SIDE:
        reporter.notice(f"driving video is {info.width}x{info.height} (over {MAX_SIDE} px); frames are downscaled")
    out_fps = settings.fps or info.fps

    with timer.stage("reference"):
        character = load_character(image)
    for line in character.notices:
        reporter.notice(line)
    with _character_pose(character.pixels, settings, image, timer) as reference_pose:
        with timer.stage("pass1"):
            motion = first_pass(video, settings, out_fps, info, timer, reporter, watch=reference_pose.check)
        reference_src = reference_pose.result()
    frame_h, frame_w = motion.frame_size
    width, height = output_size(settings.mode, character.original_size, (info.width, info.height), settings.area)
    ref_fit = letterbox(character.pixels.shape[:2], (height, width))
    reference = ref_fit.apply_keypoints(reference_src)
    Image.fromarray(ref_fit.apply_image(character.pixels)).save(staging / MATERIAL_FILES["ref"])

    with timer.stage("tracking"):
        driving, frame_fit = _driving_keypoints(
            motion.keypoints, reference, settings, (frame_h, frame_w), (height, width)
        )
        boxes = face_boxes(motion.keypoints, (frame_h, frame_w))
        everyone_faces = {p.id: _face_boxes_or_zeros(p.keypoints, (frame_h, frame_w)) for p in motion.people}
        everyone_faces[motion.chosen] = np.asarray(boxes, np.float32)
    np.savez(
        staging / KEYPOINTS_NAME,
        driving=driving.astype(np.float32),
        driving_source=motion.keypoints.astype(np.float32),
        reference=reference.astype(np.float32),
        detected=motion.detected.astype(bool),
        face_boxes=np.asarray(boxes, np.float32),
    )

    with timer.stage("pass2"):
        second_pass(
            staging,
            video,
            settings,
            out_fps,
            driving=driving,
            face_boxes=np.asarray(boxes, np.float32),
            motion=motion,
            people_faces={i: b for i, b in everyone_faces.items() if i != motion.chosen}
            if settings.people_media
            else {},
            frame_fit=frame_fit,
            out_size=(height, width),
            timer=timer,
            reporter=reporter,
        )
    num_frames = len(driving)
    face_files = {motion.chosen: MATERIAL_FILES["face"]}
    if settings.people_media:
        face_files.update({p.id: f"{PEOPLE_FACES}/face_{p.id}.mp4" for p in motion.people if p.id != motion.chosen})
    write_people(
        staging,
        fps=float(out_fps),
        source_size=(frame_w, frame_h),
        chosen=motion.chosen,
        tracks=motion.people,
        face_boxes=[everyone_faces[p.id] for p in motion.people],
        face_files=face_files,
        masks=settings.people_media,
    )
    timer.add("total", time.perf_counter() - started)
    provenance = {
        "tool": "wanimate preprocess",
        "wanimate_version": wanimate.__version__,
        "inputs": {
            "image": {"path": str(image), "sha256": file_sha256(image), "size": list(character.original_size)},
            "video": {
                "path": str(video),
                "sha256": file_sha256(video),
                "size": [info.width, info.height],
                "fps": info.fps,
                "codec": info.codec,
            },
        },
        "settings": {
            **dataclasses.asdict(settings),
            "area": list(settings.area),
            "person_at": list(settings.person_at) if settings.person_at else None,
        },
        "backend": settings.pose_backend,
        "tracking": motion.summary,
        "keypoints": KEYPOINTS_NAME,
        "face_size": FACE_SIZE,
        "timings_s": {name: round(value, 4) for name, value in timer.seconds.items()},
    }
    if settings.mode == "replace":
        provenance["mask_backend"] = segmenter_backend(settings.mask_backend, sam2_checkpoint(settings))
    if settings.strip:
        provenance["strip"] = STRIP_NAME
    audio = AudioSource(path=str(video), start=0.0, duration=num_frames / out_fps) if info.has_audio else None
    meta = MaterialsMeta(
        mode=settings.mode,
        fps=float(out_fps),
        width=width,
        height=height,
        num_frames=num_frames,
        audio=audio,
        provenance=provenance,
    )
    write_meta(staging, meta)


def _face_boxes_or_zeros(keypoints: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """A bystander's face boxes; zeros when their face is never seen (only the performer's must be)."""
    try:
        return np.asarray(face_boxes(keypoints, frame_size), np.float32)
    except WanimateError:
        return np.zeros((len(keypoints), 4), np.float32)


class _Pending:
    """The character's pose, computed beside pass 1; its error surfaces at pass 1's next frame."""

    def __init__(self, future: Future[np.ndarray] | None, value: np.ndarray | None = None) -> None:
        self._future = future
        self._value = value

    def check(self) -> None:
        if self._future is not None and self._future.done():
            self._future.result()

    def result(self) -> np.ndarray:
        return self._future.result() if self._future is not None else self._value  # type: ignore[return-value]


@contextlib.contextmanager
def _character_pose(
    pixels: np.ndarray, settings: PreprocessSettings, image: Path, timer: StageTimer
) -> Iterator[_Pending]:
    """The character image's pose, run in a thread while pass 1 starts (mediapipe).

    Pass 1 follows one person from frame to frame and leaves part of the second core idle, so
    the character's detector pyramid and landmarks (about a second) come nearly free. ViTPose
    runs inline: a second session beside pass 1's would hold its multi-GB model twice.
    """

    def pose() -> np.ndarray:
        with timer.stage("reference"):
            return _reference_pose(pixels, settings, image)

    if settings.pose_backend != "mediapipe":
        yield _Pending(None, pose())
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="character-pose") as pool:
        future = pool.submit(pose)
        try:
            yield _Pending(future)
        except WanimateError:
            if future.cancel() or future.exception() is None:
                raise
            future.result()  # the character image's error comes first, as when it ran before pass 1
            raise


def _reference_pose(pixels: np.ndarray, settings: PreprocessSettings, image: Path) -> np.ndarray:
    """The character's keypoints in its own pixels; zeros when not needed and not found."""
    models_dir = Path(settings.models_dir) if settings.models_dir else None
    detector = make_backend(
        settings.pose_backend,
        models_dir=models_dir,
        device="cpu",
        video=False,
        finder=settings.finder,
        min_face=_PORTRAIT_FACE,
    )
    try:
        main = _pick_main(detector.detect(pixels))
    finally:
        detector.close()
    if main is None:
        if settings.retarget:
            raise WanimateError(
                f"no person found in the character image {image}; retargeting needs the character's pose "
                "(use a clearer full-figure image, or pass --no-retarget)"
            )
        return empty_pose()
    return main.keypoints


def _driving_keypoints(
    source: np.ndarray,
    reference: np.ndarray,
    settings: PreprocessSettings,
    frame_size: tuple[int, int],
    out_size: tuple[int, int],
) -> tuple[np.ndarray, Fit]:
    """What the skeleton video draws, in output pixels, and how the frames map there.

    Animate + retarget moves the driver onto the character's proportions; animate
    without retarget letterboxes the driver's pose as the official code does; replace
    mode stretches the frames themselves to the output size, so the pose follows them.
    """
    if settings.mode == "replace":
        fit = stretch(frame_size, out_size)
        return fit.apply_keypoints(source), fit
    fit = letterbox(frame_size, out_size)
    if settings.retarget:
        moved = retarget_poses(reference, source, ref_size=out_size, drive_size=frame_size, out_size=out_size)
        return np.asarray(moved, np.float32), fit
    return fit.apply_keypoints(source), fit
