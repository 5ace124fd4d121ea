"""The 2D puppet: a triangle mesh over the cut-out character, skinned to the skeleton's bones.

The mesh is built once from the reference image; every frame only moves its vertices
(see :mod:`wanimate.preview.deform`), which is what makes the preview cheap. Weights come
from the distance of each vertex to each bone's shape, sharpened by a power so that a
vertex in the middle of a forearm follows the forearm alone while one at the elbow blends
upper arm and forearm: the same behaviour puppet-warp tools give with hand-placed pins.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from wanimate.errors import WanimateError
from wanimate.preprocess import keypoints as K

MIN_SCORE = 0.3
_LEFT_HAND_MID, _RIGHT_HAND_MID = K.LEFT_HAND.start + 9, K.RIGHT_HAND.start + 9


@dataclass(frozen=True)
class BoneSpec:
    """A bone: the keypoints it is fitted to, its parent, and the body part it is drawn with.

    ``points`` with two entries is a limb segment (rotation, stretch along the bone);
    more entries (torso, head) get a least-squares similarity over the points both poses share.
    ``depth`` orders bones inside one part (a forearm is drawn over its upper arm).
    """

    name: str
    points: tuple[int, ...]
    parent: str | None
    part: str
    depth: int = 0


BONE_SPECS: tuple[BoneSpec, ...] = (
    BoneSpec("torso", (K.L_SHOULDER, K.R_SHOULDER, K.L_HIP, K.R_HIP), None, "torso"),
    BoneSpec("head", (K.NOSE, K.L_EYE, K.R_EYE, K.L_EAR, K.R_EAR), "torso", "head"),
    BoneSpec("l_upper_arm", (K.L_SHOULDER, K.L_ELBOW), "torso", "l_arm", 0),
    BoneSpec("l_forearm", (K.L_ELBOW, K.L_WRIST), "l_upper_arm", "l_arm", 1),
    BoneSpec("l_hand", (K.L_WRIST, _LEFT_HAND_MID), "l_forearm", "l_arm", 2),
    BoneSpec("r_upper_arm", (K.R_SHOULDER, K.R_ELBOW), "torso", "r_arm", 0),
    BoneSpec("r_forearm", (K.R_ELBOW, K.R_WRIST), "r_upper_arm", "r_arm", 1),
    BoneSpec("r_hand", (K.R_WRIST, _RIGHT_HAND_MID), "r_forearm", "r_arm", 2),
    BoneSpec("l_thigh", (K.L_HIP, K.L_KNEE), "torso", "l_leg", 0),
    BoneSpec("l_shin", (K.L_KNEE, K.L_ANKLE), "l_thigh", "l_leg", 1),
    BoneSpec("l_foot", (K.L_ANKLE, K.L_BIG_TOE), "l_shin", "l_leg", 2),
    BoneSpec("r_thigh", (K.R_HIP, K.R_KNEE), "torso", "r_leg", 0),
    BoneSpec("r_shin", (K.R_KNEE, K.R_ANKLE), "r_thigh", "r_leg", 1),
    BoneSpec("r_foot", (K.R_ANKLE, K.R_BIG_TOE), "r_shin", "r_leg", 2),
)
PARTS = ("torso", "head", "l_arm", "r_arm", "l_leg", "r_leg")


@dataclass(frozen=True)
class Rig:
    """Everything the per-frame deformation needs, computed once from the reference.

    Coordinates are pixels of ``src_ref.png``. ``bones`` holds only the bones the reference
    pose shows (an arm hidden behind a prop simply follows its parent).
    """

    vertices: np.ndarray  # (V, 2) float32
    triangles: np.ndarray  # (T, 3) int32
    weights: np.ndarray  # (V, B) float32, rows sum to 1
    bones: tuple[BoneSpec, ...]
    triangle_bone: np.ndarray  # (T,) int32: dominant bone of each triangle
    reference: np.ndarray  # (133, 3) float32
    scale: float  # shoulder width in reference pixels: the rig's unit length

    def bone_index(self, name: str) -> int | None:
        for i, bone in enumerate(self.bones):
            if bone.name == name:
                return i
        return None


def visible(kp: np.ndarray, idx: int | tuple[int, ...]) -> bool:
    """Whether every listed keypoint is confidently seen (score at least MIN_SCORE)."""
    if isinstance(idx, int):
        return bool(kp[idx, 2] >= MIN_SCORE)
    return bool(kp[list(idx), 2].min() >= MIN_SCORE)


def rig_scale(kp: np.ndarray) -> float:
    """Shoulder width, the one length every usable pose shows (hips are often out of frame)."""
    if not visible(kp, (K.L_SHOULDER, K.R_SHOULDER)):
        raise WanimateError(
            "the character image shows no clear shoulders; use a clearer, front-facing image with the "
            "whole upper body (full body is best) in view"
        )
    width = float(np.linalg.norm(kp[K.L_SHOULDER, :2] - kp[K.R_SHOULDER, :2]))
    if width < 4:
        raise WanimateError("the character is too small in its image; use a larger, full-body character image")
    return width


def _torso_polygon(kp: np.ndarray, scale: float) -> np.ndarray:
    """Shoulders and hips; hips out of frame are placed 1.5 shoulder widths below the shoulders."""
    ls, rs = kp[K.L_SHOULDER, :2], kp[K.R_SHOULDER, :2]
    across = ls - rs
    down = np.array([-across[1], across[0]]) / (np.linalg.norm(across) + 1e-6)
    if visible(kp, K.NOSE) and np.dot(kp[K.NOSE, :2] - (ls + rs) / 2, down) > 0:
        down = -down
    lh = kp[K.L_HIP, :2] if visible(kp, K.L_HIP) else ls + down * 1.5 * scale - across * 0.15
    rh = kp[K.R_HIP, :2] if visible(kp, K.R_HIP) else rs + down * 1.5 * scale + across * 0.15
    return np.array([ls, rs, rh, lh], np.float32)


def _bone_segment(bone: BoneSpec, kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The line a bone's flesh surrounds; the last bone of a chain reaches past its end point."""
    if bone.name == "head":
        pts = kp[[i for i in bone.points if visible(kp, i)], :2]
        center = pts.mean(axis=0)
        neck = (kp[K.L_SHOULDER, :2] + kp[K.R_SHOULDER, :2]) / 2
        return neck + 0.4 * (center - neck), center + 0.6 * (center - neck)
    a, b = kp[bone.points[0], :2], kp[bone.points[1], :2]
    has_child = any(s.parent == bone.name and visible(kp, s.points) for s in BONE_SPECS)
    return a, (b if has_child else b + 0.35 * (b - a))


def _distance_to_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab + 1e-9), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _distance_to_polygon(p: np.ndarray, poly: np.ndarray) -> np.ndarray:
    contour = poly.reshape(-1, 1, 2).astype(np.float32)
    signed = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in p])
    return np.maximum(-signed, 0.0)


def skin_weights(
    vertices: np.ndarray, bones: tuple[BoneSpec, ...], kp: np.ndarray, scale: float, power: float = 4.0
) -> np.ndarray:
    """Inverse-distance weights, normalised by the rig scale so they do not depend on image size."""
    dist = np.empty((len(vertices), len(bones)), np.float64)
    for j, bone in enumerate(bones):
        if bone.name == "torso":
            dist[:, j] = _distance_to_polygon(vertices, _torso_polygon(kp, scale))
        else:
            dist[:, j] = _distance_to_segment(vertices, *_bone_segment(bone, kp))
    w = (dist / scale + 0.06) ** -power
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _resample(contour: np.ndarray, step: float) -> np.ndarray:
    pts = contour.reshape(-1, 2).astype(np.float64)
    closed = np.vstack([pts, pts[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(int(arc[-1] / step), 3)
    t = np.linspace(0, arc[-1], n, endpoint=False)
    return np.stack([np.interp(t, arc, closed[:, 0]), np.interp(t, arc, closed[:, 1])], axis=1)


def _keep_inside(points: np.ndarray, tri: np.ndarray, grown: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Triangles whose centroid is inside the grown silhouette, as are most of their pixels.

    Delaunay triangles tile the convex hull without overlap, so one raster of their indices
    gives every triangle's pixel count and inside count in two ``bincount`` calls. The
    centroid test removes the long slivers Delaunay lays along a concave outline, whose few
    pixels may happen to fall inside.
    """
    label = np.full(grown.shape, -1, np.int32)
    for i, corners in enumerate(np.round(points[tri] * 16).astype(np.int32)):
        cv2.fillConvexPoly(label, corners, i, cv2.LINE_8, 4)
    drawn = label >= 0
    total = np.bincount(label[drawn], minlength=len(tri))
    inside = np.bincount(label[drawn & (grown > 0)], minlength=len(tri))
    h, w = grown.shape
    centroid = np.round(points[tri].mean(axis=1)).astype(int)
    central = grown[np.clip(centroid[:, 1], 0, h - 1), np.clip(centroid[:, 0], 0, w - 1)] > 0
    return tri[central & (inside >= share * total)]


def build_mesh(mask: np.ndarray, spacing: float, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay mesh of contour samples, an interior grid and ``extra`` points (the joints).

    Delaunay covers the convex hull, so triangles mostly outside the (slightly grown)
    silhouette are dropped: that keeps the gap between an arm and the body open, so the arm
    can move away without dragging the torso. Judging by area rather than by the centroid
    keeps the triangles of narrow concave spots (armpit, jaw line), so the silhouette has
    no holes; what they cover outside it is transparent in the texture anyway.
    """
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8))
    contours, _ = cv2.findContours(grown, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    biggest = max((cv2.contourArea(c) for c in contours), default=0.0)
    boundary = [_resample(c, spacing * 0.75) for c in contours if cv2.contourArea(c) > 0.02 * biggest]
    inside = cv2.distanceTransform(grown, cv2.DIST_L2, 5)
    h, w = mask.shape
    gy, gx = np.mgrid[spacing / 2 : h : spacing, spacing / 2 : w : spacing]
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    grid = grid[inside[grid[:, 1].astype(int), grid[:, 0].astype(int)] > spacing * 0.45]
    parts = [*boundary, grid]
    if extra is not None and len(extra):
        ex = extra[inside[np.clip(extra[:, 1].astype(int), 0, h - 1), np.clip(extra[:, 0].astype(int), 0, w - 1)] > 0]
        parts.append(ex)
    points = np.unique(np.round(np.vstack(parts), 1), axis=0)
    tri = _keep_inside(points, Delaunay(points).simplices, grown)
    used = np.unique(tri)
    remap = np.full(len(points), -1, np.int64)
    remap[used] = np.arange(len(used))
    return points[used].astype(np.float32), remap[tri].astype(np.int32)


def build_rig(mask: np.ndarray, reference: np.ndarray, spacing: float | None = None) -> Rig:
    """Mesh the character's silhouette and skin it to the bones its reference pose shows."""
    if mask.sum() < 64:
        raise WanimateError("no person found in the character image; use a clearer full-body character image")
    scale = rig_scale(reference)
    bones = tuple(b for b in BONE_SPECS if _bone_present(b, reference))
    spacing = spacing or max(6.0, min(scale / 5.0, max(mask.shape) / 30.0))
    joints = np.array([reference[i, :2] for b in bones for i in b.points if visible(reference, i)], np.float32)
    vertices, triangles = build_mesh(mask, spacing, joints)
    if len(triangles) == 0:
        raise WanimateError("the character's silhouette is too thin to rig; use a clearer full-body character image")
    weights = skin_weights(vertices, bones, reference, scale)
    triangle_bone = weights[triangles].mean(axis=1).argmax(axis=1).astype(np.int32)
    return Rig(vertices, triangles, weights, bones, triangle_bone, reference.astype(np.float32), scale)


def _bone_present(bone: BoneSpec, kp: np.ndarray) -> bool:
    if bone.name == "torso":
        return visible(kp, (K.L_SHOULDER, K.R_SHOULDER))
    if bone.name == "head":
        return sum(visible(kp, i) for i in bone.points) >= 2
    return visible(kp, bone.points)
