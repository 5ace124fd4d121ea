"""Per-frame posing of the rig: bone transforms, linear blend skinning, and layer order.

A limb bone gets rotation plus a stretch along the bone (so a forearm pointing at the
camera shortens without thinning) and the body's overall scale across it; torso and head
get a least-squares similarity over the points both poses share. A bone the driver does
not show follows its parent, and a frame with no detection keeps the last pose, so the
puppet never collapses when the pose estimator blinks.
"""

from __future__ import annotations

import numpy as np

from wanimate.preprocess import keypoints as K
from wanimate.preview.rig import BoneSpec, Rig, visible

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
# Back-to-front order of the parts for a person facing the camera; arms go in front of the
# torso (an arm crossing the chest covers it) unless the pose says they are behind it.
_PART_DEPTH = {"l_leg": 1, "r_leg": 1, "torso": 2, "head": 3, "l_arm": 4, "r_arm": 4}
_BEHIND = 0


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation (Umeyama), never a reflection."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    var = float((s**2).sum())
    if var < 1e-9:
        return _translation(mu_d - mu_s)
    # For 2D, the optimal rotation and scale come straight from the complex inner product.
    a = float((s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()) / var
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    lin = np.array([[a, -b], [b, a]])
    return np.hstack([lin, (mu_d - lin @ mu_s)[:, None]]).astype(np.float32)


def _translation(t: np.ndarray) -> np.ndarray:
    m = IDENTITY.copy()
    m[:, 2] = t
    return m


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def limb_transform(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray, across: float) -> np.ndarray:
    """Map segment a→b onto a2→b2: rotate, stretch along the bone, scale by ``across`` across it."""
    r, d = b - a, b2 - a2
    length_r, length_d = np.linalg.norm(r), np.linalg.norm(d)
    if length_r < 1e-6 or length_d < 1e-6:
        return _translation(a2 - a)
    along = float(np.clip(length_d / length_r, 0.3 * across, 1.6 * across))
    phi_r, phi_d = np.arctan2(r[1], r[0]), np.arctan2(d[1], d[0])
    lin = _rotation(phi_d) @ np.diag([along, across]) @ _rotation(-phi_r)
    return np.hstack([lin, (a2 - lin @ a)[:, None]]).astype(np.float32)


def _scale_of(m: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(m[:, :2].astype(np.float64)))))


class Poser:
    """Turns driving keypoints into bone transforms, remembering the last good pose."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.last = np.repeat(IDENTITY[None], len(rig.bones), axis=0)

    def transforms(self, kp: np.ndarray) -> np.ndarray:
        """``(B, 2, 3)`` affine maps from reference pixels to output pixels, one per rig bone."""
        if not visible(kp, (K.L_SHOULDER, K.R_SHOULDER)):
            return self.last
        ref = self.rig.reference
        out = np.empty_like(self.last)
        done: dict[str, np.ndarray] = {}
        for j, bone in enumerate(self.rig.bones):
            out[j] = self._bone(bone, ref, kp, done)
            done[bone.name] = out[j]
        self.last = out
        return out

    def _bone(self, bone: BoneSpec, ref: np.ndarray, kp: np.ndarray, done: dict[str, np.ndarray]) -> np.ndarray:
        parent = done.get(bone.parent or "", done.get("torso"))
        shared = [i for i in bone.points if visible(ref, i) and visible(kp, i)]
        if bone.name == "torso":
            return similarity(ref[shared, :2], kp[shared, :2])
        assert parent is not None
        if bone.name == "head":
            return similarity(ref[shared, :2], kp[shared, :2]) if len(shared) >= 3 else parent
        if len(shared) < 2:
            return parent
        a, b = bone.points
        return limb_transform(ref[a, :2], ref[b, :2], kp[a, :2], kp[b, :2], _scale_of(done["torso"]))


def skin(rig: Rig, transforms: np.ndarray) -> np.ndarray:
    """Linear blend skinning: each vertex moves by the weighted mix of its bones' affine maps."""
    blended = rig.weights @ transforms.reshape(len(transforms), 6)  # (V, 6)
    x, y = rig.vertices[:, 0], rig.vertices[:, 1]
    return np.stack(
        [blended[:, 0] * x + blended[:, 1] * y + blended[:, 2], blended[:, 3] * x + blended[:, 4] * y + blended[:, 5]],
        axis=1,
    )


def part_depths(rig: Rig, kp: np.ndarray) -> dict[str, int]:
    """Back-to-front rank of each part for this frame's pose.

    Seen from behind (the shoulders swap sides relative to the reference) both arms go
    behind the torso. Turned towards profile (the shoulders narrow to under 60 % of the
    reference width, scaled by the body's size), the arm on the side the nose points to is
    the far one and goes behind.
    """
    depth = dict(_PART_DEPTH)
    ref = rig.reference
    if not visible(kp, (K.L_SHOULDER, K.R_SHOULDER)):
        return depth
    across_ref = ref[K.L_SHOULDER, :2] - ref[K.R_SHOULDER, :2]
    across = kp[K.L_SHOULDER, :2] - kp[K.R_SHOULDER, :2]
    if across_ref[0] * across[0] < 0:
        depth["l_arm"] = depth["r_arm"] = _BEHIND
        return depth
    size = _body_size(kp) / _body_size(ref)
    if np.linalg.norm(across) < 0.6 * np.linalg.norm(across_ref) * size and visible(kp, K.NOSE):
        mid = (kp[K.L_SHOULDER, :2] + kp[K.R_SHOULDER, :2]) / 2
        far = "l_arm" if float(np.dot(kp[K.NOSE, :2] - mid, across)) > 0 else "r_arm"
        depth[far] = _BEHIND
    return depth


def _body_size(kp: np.ndarray) -> float:
    """Neck-to-nose distance: a size cue that does not shrink when the shoulders turn."""
    neck = (kp[K.L_SHOULDER, :2] + kp[K.R_SHOULDER, :2]) / 2
    if visible(kp, K.NOSE):
        return float(np.linalg.norm(kp[K.NOSE, :2] - neck)) + 1e-6
    return float(np.linalg.norm(kp[K.L_SHOULDER, :2] - kp[K.R_SHOULDER, :2])) + 1e-6


def draw_order(rig: Rig, kp: np.ndarray) -> np.ndarray:
    """Triangle indices back to front: by part depth, then by bone depth within the part."""
    depth = part_depths(rig, kp)
    bone_key = np.array([depth[b.part] * 10 + b.depth for b in rig.bones])
    return np.argsort(bone_key[rig.triangle_bone], kind="stable")
