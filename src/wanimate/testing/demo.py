"""Demo materials for the preview's tests and benchmark, made without the preprocessing stage.

Two kinds: a character driven by a scripted motion of its own pose (arm raised and bent,
head tilted, a blink, the mouth opening), and a character replacing the person of a real
clip. Both write the same folder layout preprocessing does (docs/materials.md), posed by
the mediapipe estimator in :mod:`wanimate.testing.quality`. Test and benchmark scaffolding.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from wanimate.materials import Materials, MaterialsMeta, load_materials, write_meta
from wanimate.materials.layout import KEYPOINTS_NAME
from wanimate.preprocess import keypoints as K
from wanimate.preprocess.masks import PersonSegmenter
from wanimate.testing.quality import PoseEstimator
from wanimate.video import VideoWriter

_F = K.FACE.start
_LIMBS = ((1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
          (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))  # fmt: skip


def place(image: np.ndarray, width: int, height: int, fill: float = 1.0) -> tuple[np.ndarray, float, np.ndarray]:
    """Put ``image`` on a width x height canvas: scaled to ``fill`` of the largest fit, centred
    horizontally, standing on the bottom edge; returns canvas, scale and offset.

    The margins repeat the image's edge pixels rather than being black: mediapipe's pose
    model misplaces the shoulders of a half-length portrait between black bars, which
    would make the quality checks measure the estimator instead of the renderer.
    """
    h, w = image.shape[:2]
    scale = fill * min(width / w, height / h)
    nw, nh = round(w * scale), round(h * scale)
    ox, oy = (width - nw) // 2, height - nh
    small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = cv2.copyMakeBorder(small, oy, 0, ox, width - nw - ox, cv2.BORDER_REPLICATE)
    return canvas, scale, np.array([ox, oy], np.float32)


def _rotate(kp: np.ndarray, idx: list[int], pivot: np.ndarray, angle: float) -> None:
    c, s = np.cos(angle), np.sin(angle)
    d = kp[idx, :2] - pivot
    kp[idx, :2] = pivot + np.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1]], axis=1)


def scripted_motion(reference: np.ndarray, num_frames: int, arm_swing: float = 110.0, sway: float = 0.3) -> np.ndarray:
    """The reference pose put through a short performance, ``(T, 133, 3)``.

    The subject's right arm swings by ``arm_swing`` degrees at the middle of the clip
    (positive: out and up; negative: across the body) with the elbow bending, the head tilts
    one way then the other, the eyes blink at 20-30 % of the clip, the mouth opens during
    55-85 %, and the whole body sways sideways by up to ``sway`` shoulder widths.
    """
    out = np.repeat(reference[None].astype(np.float32), num_frames, axis=0)
    outward = 1.0 if reference[K.R_SHOULDER, 0] < reference[K.L_SHOULDER, 0] else -1.0
    hand = list(range(K.RIGHT_HAND.start, K.RIGHT_HAND.stop))
    head = [*range(0, 5), *range(K.FACE.start, K.FACE.stop)]
    mouth_width = float(np.linalg.norm(reference[_F + 54, :2] - reference[_F + 48, :2]))
    shoulders = float(np.linalg.norm(reference[K.L_SHOULDER, :2] - reference[K.R_SHOULDER, :2]))
    for t in range(num_frames):
        u = t / max(num_frames - 1, 1)
        kp = out[t]
        if 0.2 <= u <= 0.3:
            for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
                kp[_F + upper, 1] = kp[_F + lower, 1] - 0.3 * (kp[_F + lower, 1] - kp[_F + upper, 1])
        if 0.55 <= u <= 0.85:
            drop = 0.35 * mouth_width * np.sin((u - 0.55) / 0.3 * np.pi)
            kp[[_F + i for i in (*range(5, 12), *range(55, 60), 65, 66, 67)], 1] += drop
        neck = (kp[K.L_SHOULDER, :2] + kp[K.R_SHOULDER, :2]) / 2
        _rotate(kp, head, neck, np.deg2rad(12) * np.sin(2 * np.pi * u))
        swing = np.sin(np.pi * u)
        _rotate(kp, [K.R_ELBOW, K.R_WRIST, *hand], kp[K.R_SHOULDER, :2].copy(), outward * np.deg2rad(arm_swing) * swing)
        bend = np.deg2rad(40 if arm_swing >= 0 else -60) * swing
        _rotate(kp, [K.R_WRIST, *hand], kp[K.R_ELBOW, :2].copy(), outward * bend)
        kp[:, 0] += sway * shoulders * np.sin(2 * np.pi * u)
    return out


def draw_skeleton(kp: np.ndarray, width: int, height: int) -> np.ndarray:
    """A plain OpenPose-style skeleton frame (the demo's src_pose.mp4; the preview never reads it)."""
    canvas = np.zeros((height, width, 3), np.uint8)
    body = K.body20(kp)
    for a, b in _LIMBS:
        if min(body[a, 2], body[b, 2]) >= 0.3:
            pa, pb = body[a, :2].astype(int), body[b, :2].astype(int)
            cv2.line(canvas, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), (0, 200, 255), 3)
    return canvas


def _face_crop(frame: np.ndarray, kp: np.ndarray) -> np.ndarray:
    pts = kp[K.FACE][kp[K.FACE, 2] > 0, :2]
    if len(pts) == 0:
        pts = kp[:5][kp[:5, 2] > 0, :2]
    if len(pts) == 0:
        return np.zeros((512, 512, 3), np.uint8)
    c, half = pts.mean(axis=0), max(float(np.ptp(pts, axis=0).max()) * 0.75, 8.0)
    x0, y0 = (c - half).astype(int)
    x1, y1 = (c + half).astype(int)
    h, w = frame.shape[:2]
    crop = frame[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    return cv2.resize(crop, (512, 512)) if crop.size else np.zeros((512, 512, 3), np.uint8)


def write_materials(
    root: str | Path,
    reference_rgb: np.ndarray,
    reference_kp: np.ndarray,
    driving_kp: np.ndarray,
    *,
    fps: float = 30.0,
    scene: Iterable[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Materials:
    """Write a materials folder; ``scene`` (driving frame, bool performer mask) pairs make it replace mode."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    height, width = reference_rgb.shape[:2]
    Image.fromarray(reference_rgb).save(root / "src_ref.png")
    detected = driving_kp[:, K.BODY, 2].max(axis=1) > 0
    np.savez(root / KEYPOINTS_NAME, driving=driving_kp, reference=reference_kp, detected=detected)
    with (
        VideoWriter(root / "src_pose.mp4", fps, lossless=True) as pose,
        VideoWriter(root / "src_face.mp4", fps) as face,
    ):
        for kp in driving_kp:
            pose.write(draw_skeleton(kp, width, height))
            face.write(_face_crop(reference_rgb, kp))
    mode = "animate"
    if scene is not None:
        mode = "replace"
        with VideoWriter(root / "src_bg.mp4", fps) as bg, VideoWriter(root / "src_mask.mp4", fps, lossless=True) as mk:
            for frame, mask in scene:
                bg.write(frame * ~mask[..., None])
                mk.write(np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
    meta = MaterialsMeta(mode, fps, width, height, len(driving_kp), provenance={"tool": "wanimate.testing.demo"})
    write_meta(root, meta)
    return load_materials(root)


def posed_reference(
    image: np.ndarray, width: int, height: int, estimator: PoseEstimator, fill: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``image`` placed on a width x height canvas and its keypoints, posed on the image itself.

    Posing before shrinking matters: on a small padded copy mediapipe invents hips and
    knees below a half-length portrait.
    """
    canvas, scale, offset = place(image, width, height, fill)
    kp = estimator(image)
    kp[:, :2] = kp[:, :2] * scale + offset
    return canvas, kp


def motion_materials(
    root: str | Path,
    image: np.ndarray,
    width: int,
    height: int,
    num_frames: int,
    *,
    arm_swing: float = 110.0,
    sway: float = 0.3,
    fill: float = 1.0,
) -> Materials:
    """Animate-mode materials: ``image`` placed on width x height, driven by its own scripted motion."""
    with PoseEstimator() as estimator:
        reference_rgb, reference_kp = posed_reference(image, width, height, estimator, fill)
    return write_materials(
        root, reference_rgb, reference_kp, scripted_motion(reference_kp, num_frames, arm_swing, sway)
    )


def replace_materials(root: str | Path, image: np.ndarray, frames: Iterable[np.ndarray], fps: float) -> Materials:
    """Replace-mode materials: the person in ``frames`` gives the motion, mask and scene; ``image`` the character."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    with PoseEstimator() as estimator:
        reference_rgb, reference_kp = posed_reference(image, width, height, estimator)
        driving_kp = np.stack([estimator(f) for f in frames])
    with PersonSegmenter(backend="auto") as segmenter:
        masks = [segmenter.segment(f, kp, None) for f, kp in zip(frames, driving_kp, strict=True)]
    return write_materials(
        root, reference_rgb, reference_kp, driving_kp, fps=fps, scene=zip(frames, masks, strict=True)
    )


_PART_COLOURS = {
    "torso": (255, 255, 255),
    "head": (255, 220, 0),
    "l_arm": (0, 220, 0),
    "r_arm": (0, 200, 255),
    "l_leg": (255, 0, 255),
    "r_leg": (255, 128, 0),
}


def rig_picture(materials: Materials, frame: int) -> np.ndarray:
    """The rig over the reference (left) and posed for ``frame`` over its render (right).

    Triangles are coloured by the body part of their dominant bone: the picture in
    docs/preview.md, and a quick way to see why a pose renders the way it does.
    """
    from wanimate.preview.deform import draw_order, skin
    from wanimate.preview.renderer import CharacterRenderer, PoseTrack, render_frames

    reference = np.asarray(Image.open(materials.path("ref")).convert("RGB"))
    track = PoseTrack.load(materials)
    character = CharacterRenderer(reference, track, relight=False)
    rendered = next(itertools.islice(render_frames(materials), frame, None))
    rig = character.rig
    posed = skin(rig, character.poser.transforms(track.driving[frame]))
    panels = []
    for image, vertices, order in (
        (reference, rig.vertices, np.arange(len(rig.triangles))),
        (rendered, posed, draw_order(rig, track.driving[frame])),
    ):
        canvas = (image * 0.6).astype(np.uint8)
        for i in order:
            colour = _PART_COLOURS[rig.bones[rig.triangle_bone[i]].part]
            corners = np.round(vertices[rig.triangles[i]] * 4).astype(np.int32)
            cv2.polylines(canvas, [corners], True, colour, 1, cv2.LINE_AA, 2)
        panels.append(canvas)
    return np.hstack(panels)
