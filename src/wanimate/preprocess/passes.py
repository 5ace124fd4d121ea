"""The two streamed passes over the driving video.

Pass 1 runs pose detection and keeps only detections (a few KB per frame), then picks
and smooths one performer over the whole clip. Pass 2 decodes again and turns each
frame into its materials (skeleton, face crop, background and mask), handing them to
encoder threads. No pass ever holds more than a handful of frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.materials.layout import FACE_SIZE, MATERIAL_FILES, MATERIAL_PRESET, STRIP_NAME
from wanimate.materials.people import PEOPLE_FACES, PEOPLE_MASKS, PEOPLE_SHEET
from wanimate.preprocess.face_crop import crop_face
from wanimate.preprocess.instances import label_people, overlapping, present_at
from wanimate.preprocess.masks import PersonSegmenter, background, refine_mask, sam2_checkpoint
from wanimate.preprocess.people_sheet import draw_sheet, sheet_frames
from wanimate.preprocess.pose import make_backend
from wanimate.preprocess.pose_pool import MAX_AUTO_WORKERS, detect_all, machine_cores, split
from wanimate.preprocess.selection import follow_person
from wanimate.preprocess.sizing import MAX_SIDE, Fit
from wanimate.preprocess.skeleton import draw_skeleton
from wanimate.preprocess.smoothing import smooth_keypoints
from wanimate.preprocess.strip import compose_strip
from wanimate.preprocess.tracking import PersonTrack
from wanimate.preprocess.writers import Prefetch, ThreadedWriter
from wanimate.video import VideoInfo, iter_frames, probe_video

if TYPE_CHECKING:
    from wanimate.preprocess.progress import Reporter
    from wanimate.preprocess.settings import PreprocessSettings, StageTimer


_BLACK_FACE = np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)


@dataclass
class Motion:
    """The followed performer over the clip, in source-frame pixels."""

    keypoints: np.ndarray  # (T, 133, 3) tracked and smoothed
    detected: np.ndarray  # (T,) bool: seen by the detector (not interpolated, not missing)
    boxes: np.ndarray  # (T, 4) the performer's box per frame
    frame_size: tuple[int, int]  # (H, W) of the decoded frames
    summary: dict[str, Any]
    people: list[PersonTrack]  # everyone tracked, by id, keypoints smoothed
    chosen: int  # the performer's id


def source_info(video: Path) -> VideoInfo:
    """Probe the driving video; a file FFmpeg cannot decode is a user error, not a crash."""
    info = probe_video(video)
    if info.num_frames == 0:
        raise WanimateError(f"driving video {video} has zero frames")
    return info


def _frames(video: Path, fps: float | None, timer: StageTimer, start: int = 0) -> Prefetch:
    """Frames from ``start`` on, decoded ahead in a thread; the decoder's own time is charged to ``decode``."""
    return Prefetch(timer.timed("decode", iter(iter_frames(video, fps=fps, max_side=MAX_SIDE, start=start))))


def _expected_frames(info: VideoInfo, fps: float | None) -> int | None:
    if fps is None:
        return info.num_frames or None
    return max(1, round(info.duration * fps)) if info.duration else None


def pose_workers(settings: PreprocessSettings) -> int:
    """How many pose backends may run side by side: ``settings.pose_workers``, or automatic.

    Automatic is one per core (at most ``MAX_AUTO_WORKERS``) for the mediapipe backend, each on
    its own stretch of the clip (:mod:`wanimate.preprocess.pose_pool`), and one for ViTPose:
    its onnxruntime session already uses every core, and a second ViTPose-H would double a
    multi-GB model in memory. Stretches are at least ``MIN_SPAN`` frames, so a short clip gets fewer.
    """
    if settings.pose_workers:
        return settings.pose_workers
    return min(machine_cores(), MAX_AUTO_WORKERS) if settings.pose_backend == "mediapipe" else 1


def first_pass(
    video: Path,
    settings: PreprocessSettings,
    out_fps: float,
    info: VideoInfo,
    timer: StageTimer,
    reporter: Reporter,
    *,
    watch: Callable[[], None] | None = None,
) -> Motion:
    """Detect and follow everyone, then choose and smooth the performer.

    ``watch`` is called as frames are done (a few times a second); work running beside this
    pass (the character's pose) raises its error there, so a bad input stops the pass early.
    """
    models_dir = Path(settings.models_dir) if settings.models_dir else None
    expected = _expected_frames(info, settings.fps)
    spans = split(expected, pose_workers(settings))
    bar = reporter.task("pass 1/2: pose", expected)
    backends: list[Any] = []
    try:
        for _ in spans:
            backends.append(
                make_backend(
                    settings.pose_backend,
                    models_dir=models_dir,
                    device="cpu",
                    video=True,
                    max_people=settings.max_people,
                    finder=settings.finder,
                )
            )
        with timer.stage("pose"):
            detections, frame_size = detect_all(
                partial(_frames, video, settings.fps, timer), backends, spans, on_done=_watched(bar.advance, watch)
            )
    finally:
        for backend in backends:
            backend.close()
    if frame_size is None:
        raise WanimateError(f"driving video {video} has zero decodable frames")
    bar.finish(len(detections))
    with_people = sum(1 for people in detections if people)
    if with_people == 0:
        raise WanimateError(
            f"no person found in the driving video {video} ({len(detections)} frames scanned); "
            "use a video where the performer's body is visible"
        )
    with timer.stage("tracking"):
        track = follow_person(detections, frame_size, person=settings.person, person_at=settings.person_at)
        del detections
        for person in track.people:
            person.keypoints = smooth_keypoints(person.keypoints, out_fps, enabled=settings.smooth)
        keypoints = next(p.keypoints for p in track.people if p.id == track.chosen)
    detected = np.asarray(track.detected, bool)
    missing = np.asarray(track.missing, bool)
    summary = {
        **dict(track.summary),
        "frames_scanned": len(detected),
        "frames_with_people": with_people,
        "frames_detected": int(detected.sum()),
        "frames_interpolated": int(np.asarray(track.interpolated, bool).sum()),
        "frames_missing": int(missing.sum()),
        "smoothed": settings.smooth,
        "pose_workers": len(spans),
        "people": [
            {
                "id": p.id,
                "frames_detected": int(p.detected.sum()),
                "frames_interpolated": int(p.interpolated.sum()),
                "frames_missing": int(p.missing.sum()),
            }
            for p in track.people
        ],
    }
    if missing.any():
        reporter.warning(
            f"the performer (person {track.chosen}) was lost in {int(missing.sum())} of {len(missing)} frames "
            f"({frame_ranges(missing)}); those frames have an empty skeleton (see tracking in meta.json)"
        )
    return Motion(
        keypoints=np.asarray(keypoints, np.float32),
        detected=detected,
        boxes=np.asarray(track.boxes, np.float32),
        frame_size=frame_size,
        summary=summary,
        people=track.people,
        chosen=track.chosen,
    )


def _watched(advance: Callable[[int], None], watch: Callable[[], None] | None) -> Callable[[int], None]:
    if watch is None:
        return advance

    def on_done(count: int) -> None:
        advance(count)
        watch()

    return on_done


def frame_ranges(flags: np.ndarray, limit: int = 6) -> str:
    """``"frames 3-9, 40, 52-60"`` for the True runs of ``flags`` (the first ``limit`` runs)."""
    runs: list[str] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(np.int8), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        runs.append(str(start) if stop - start == 1 else f"{start}-{stop - 1}")
    more = f", ... ({len(runs) - limit} more)" if len(runs) > limit else ""
    return "frames " + ", ".join(runs[:limit]) + more


def second_pass(
    staging: Path,
    video: Path,
    settings: PreprocessSettings,
    out_fps: float,
    *,
    driving: np.ndarray,
    face_boxes: np.ndarray,
    motion: Motion,
    people_faces: dict[int, np.ndarray],
    frame_fit: Fit,
    out_size: tuple[int, int],
    timer: StageTimer,
    reporter: Reporter,
) -> None:
    """Write src_pose/src_face (and src_bg/src_mask, strip.mp4, the people media) frame by frame,
    and the contact sheet of everyone tracked (people.png) from the frames it shows.

    ``people_faces`` maps the id of every person who gets their own face video to their face
    boxes; with ``settings.people_media`` everyone's instance masks go to people_masks.mp4.
    """
    height, width = out_size
    total = len(driving)
    writers = {
        "pose": ThreadedWriter(staging / MATERIAL_FILES["pose"], out_fps, preset=MATERIAL_PRESET),
        "face": ThreadedWriter(staging / MATERIAL_FILES["face"], out_fps, preset=MATERIAL_PRESET),
    }
    segmenter: PersonSegmenter | None = None
    frames = _frames(video, settings.fps, timer)
    try:
        if settings.mode == "replace":
            writers["bg"] = ThreadedWriter(staging / MATERIAL_FILES["bg"], out_fps, preset=MATERIAL_PRESET)
            writers["mask"] = ThreadedWriter(staging / MATERIAL_FILES["mask"], out_fps, lossless=True)
        if settings.mode == "replace" or settings.people_media:
            segmenter = PersonSegmenter(backend=settings.mask_backend, checkpoint=sam2_checkpoint(settings))
        if settings.people_media:
            writers["people_masks"] = ThreadedWriter(staging / PEOPLE_MASKS, out_fps, lossless=True)
            (staging / PEOPLE_FACES).mkdir()
        for person_id in people_faces:
            writers[f"face_{person_id}"] = ThreadedWriter(
                staging / PEOPLE_FACES / f"face_{person_id}.mp4", out_fps, preset=MATERIAL_PRESET
            )
        if settings.strip:
            writers["strip"] = ThreadedWriter(staging / STRIP_NAME, out_fps, preset=MATERIAL_PRESET)
        by_id = {person.id: person for person in motion.people}
        for_sheet = sheet_frames(motion.people)
        sheet_source: dict[int, np.ndarray] = {}
        bar = reporter.task("pass 2/2: materials", total)
        index = -1
        for index, frame in enumerate(frames):
            if index >= total:
                raise WanimateError(f"driving video {video} gave more frames on the second read; is it being written?")
            if index in for_sheet:
                sheet_source[index] = frame.copy()
            with timer.stage("skeleton"):
                pose = draw_skeleton(driving[index], height, width)
            writers["pose"].write(pose)
            with timer.stage("face"):
                face = crop_face(frame, face_boxes[index], size=FACE_SIZE)
            writers["face"].write(face)
            tiles = [("driving", frame), ("skeleton", pose), ("face", face)]
            for person_id, boxes in people_faces.items():
                with timer.stage("face"):
                    someone = by_id[person_id]
                    present = bool(someone.detected[index] or someone.interpolated[index])
                    crop = crop_face(frame, boxes[index], size=FACE_SIZE) if present else _BLACK_FACE
                writers[f"face_{person_id}"].write(crop)
            if segmenter is not None:
                with timer.stage("masks"):
                    among = None if settings.people_media else overlapping(motion.people, motion.chosen, index)
                    labels = label_people(segmenter, frame, present_at(motion.people, index, among))
                if settings.people_media:
                    writers["people_masks"].write(cv2.cvtColor(labels, cv2.COLOR_GRAY2RGB))
                if settings.mode == "replace":
                    with timer.stage("masks"):
                        bg, mask_rgb = _cut_out(frame_fit, frame, labels == motion.chosen + 1, settings)
                    writers["bg"].write(bg)
                    writers["mask"].write(mask_rgb)
                    tiles.append(("mask", mask_rgb))
            if settings.strip:
                with timer.stage("strip"):
                    strip = compose_strip(tiles)
                writers["strip"].write(strip)
            bar.advance()
        if index + 1 != total:
            raise WanimateError(
                f"driving video {video} gave {index + 1} frames on the second read but {total} on the first"
            )
        for writer in writers.values():
            writer.close()
        with timer.stage("sheet"):
            Image.fromarray(draw_sheet(sheet_source, motion.people)).save(staging / PEOPLE_SHEET)
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        frames.close()
        if segmenter is not None:
            segmenter.close()
        timer.add("writing", sum(writer.busy_s for writer in writers.values()))


def _cut_out(
    fit: Fit, frame: np.ndarray, person: np.ndarray, settings: PreprocessSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Background and 0/255 RGB mask of the followed person at the output size (replace mode).

    The person's own pixels (``person``, source size) are resized to the output first, so the
    official dilation options mean the same number of output pixels whatever the source
    resolution.
    """
    resized = fit.apply_image(frame)
    mask = fit.apply_image(person.astype(np.uint8) * 255) > 127
    refined = refine_mask(
        mask,
        iterations=settings.mask_iterations,
        k=settings.mask_k,
        w_len=settings.mask_w_len,
        h_len=settings.mask_h_len,
    )
    kept = np.asarray(refined) > 0
    mask_rgb = cv2.cvtColor(kept.astype(np.uint8) * 255, cv2.COLOR_GRAY2RGB)
    return background(resized, kept), mask_rgb
