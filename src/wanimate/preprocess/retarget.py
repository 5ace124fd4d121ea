"""Move the driver's motion onto the character's body proportions.

Without retargeting a tall thin driver makes a short character's skeleton video show
limbs the character does not have, and the model follows the skeleton. Like the
official ``retarget_pose.py`` we measure one length ratio per bone (character ÷
driver), rebuild every driving frame from the neck outward with the driver's bone
angles and the character's lengths, and pin the result where the character stands in
its own image. What differs from the official code (see docs/preprocessing-geometry.md):
driver bone lengths come from a robust statistic over the first frames instead of frame 0
alone, missing ratios fall back per body part, foreshortened outliers are rejected, hands
and feet follow their new joints, face points move with the head, and the hand pairing
bug is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wanimate.errors import WanimateError
from wanimate.preprocess.keypoints import FACE, LEFT_HAND, NUM_KEYPOINTS, RIGHT_HAND, body20
from wanimate.preprocess.skeleton import LIMBS

# body20 indices (OpenPose-18 order plus the two toes).
_NOSE, _NECK, _R_SH, _R_WRIST, _L_SH, _L_WRIST = 0, 1, 2, 4, 5, 7
_R_HIP, _R_ANKLE, _L_HIP, _L_ANKLE = 8, 10, 11, 13
# body20 index → COCO-WholeBody index for the points that exist in both (the neck does not).
_TO_COCO = {0: 0, 2: 6, 3: 8, 4: 10, 5: 5, 6: 7, 7: 9, 8: 12, 9: 14, 10: 16, 11: 11, 12: 13, 13: 15}
_TO_COCO |= {14: 2, 15: 1, 16: 4, 17: 3}
_FOOT_POINTS = {_L_ANKLE: slice(17, 20), _R_ANKLE: slice(20, 23)}
_FOOT_LIMB = {_L_ANKLE: 17, _R_ANKLE: 18}
_CALF_OF_FOOT = {17: 11, 18: 8}
_FOOT_CAP = 0.5  # a rebuilt foot is at most half its calf, as in the official code

# Limb-index pairs: left/right twins take the larger ratio; eye and ear pairs are averaged.
_SYMMETRIC = ((0, 1), (2, 4), (3, 5), (6, 9), (7, 10), (8, 11), (17, 18))
_AVERAGED = ((13, 15), (14, 16))
_SHOULDERS = (0, 1)
_HEAD_LIMBS = frozenset(range(12, 17))
# Where a bone with no usable ratio borrows one, nearest relative first; then the shoulder
# average, then the global height scale.
_FALLBACKS: dict[int, tuple[int, ...]] = {
    2: (3,), 3: (2,), 4: (5,), 5: (4,),
    7: (8, 6), 8: (7, 6), 10: (11, 9), 11: (10, 9),
    12: (13, 14), 13: (14, 12), 14: (13, 12), 15: (16, 12), 16: (15, 12),
    17: (11, 10), 18: (8, 7),
}  # fmt: skip
_PALM = ((0, 5), (0, 9), (0, 13), (0, 17))  # wrist → finger bases: hand size without finger bending
_ROOT_ORDER = (_NECK, _R_SH, _L_SH, _NOSE, _R_HIP, _L_HIP, *range(20))
_ADJACENT: list[list[tuple[int, int]]] = [[] for _ in range(20)]
for _limb, (_a, _b) in enumerate(LIMBS):
    _ADJACENT[_a].append((_b, _limb))
    _ADJACENT[_b].append((_a, _limb))


def letterbox(src_size: tuple[int, int], dst_size: tuple[int, int]) -> tuple[float, float, float]:
    """``(scale, x_offset, y_offset)`` that fits an (H, W) image centred inside another, aspect kept.

    This is the geometry the generator uses to place the character image at the output
    size, so character keypoints mapped with it line up with the letterboxed image.
    """
    (sh, sw), (dh, dw) = src_size, dst_size
    scale = min(dh / sh, dw / sw)
    return scale, (dw - sw * scale) / 2, (dh - sh * scale) / 2


def map_points(kp: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]) -> np.ndarray:
    """Keypoints (any leading shape, last axis x, y, score) letterboxed from ``src_size`` to ``dst_size``."""
    scale, ox, oy = letterbox(src_size, dst_size)
    out = np.array(kp, np.float32, copy=True)
    out[..., 0] = out[..., 0] * scale + ox
    out[..., 1] = out[..., 1] * scale + oy
    return out


def retarget(
    reference: np.ndarray,
    driving: np.ndarray,
    *,
    ref_size: tuple[int, int],
    drive_size: tuple[int, int],
    out_size: tuple[int, int],
    threshold: float = 0.5,
    calibration_frames: int = 30,
    outlier_factor: float | None = 3.0,
) -> np.ndarray:
    """Driving poses ``(T, 133, 3)`` rebuilt with the character's proportions, in ``out_size`` pixels.

    ``reference`` is in ``ref_size`` pixels and is letterboxed into ``out_size`` like the
    character image. Driver bone lengths are the 90th percentile over the first
    ``calibration_frames`` frames, so a bone seen foreshortened in frame 0 still gets its
    full length. A measured body-bone ratio more than ``outlier_factor`` times away from the
    median ratio is treated as foreshortening (a side view) and replaced by its fallback.
    Points below ``threshold`` are not rebuilt: they keep their score and follow the global
    scale and offset, so the drawing still skips them.
    """
    if reference.shape != (NUM_KEYPOINTS, 3) or driving.ndim != 3 or driving.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"expected (133, 3) and (T, 133, 3) keypoints, got {reference.shape}, {driving.shape}")
    driving = np.where(np.isfinite(driving).all(axis=-1, keepdims=True), driving, 0.0).astype(np.float32)
    ref = map_points(reference, ref_size, out_size)
    ref20 = body20(ref)
    drv20 = np.stack([body20(frame) for frame in driving]) if len(driving) else np.zeros((0, 20, 3), np.float32)
    ref_valid = ref20[:, 2] >= threshold
    drv_valid = drv20[:, :, 2] >= threshold

    ref_len = _bone_lengths(ref20[None], ref_valid[None])[0]
    if not np.isfinite(ref_len).any():
        raise WanimateError(
            "The character image shows too few body keypoints to measure its proportions: "
            "use a clearer image of the character or pass --no-retarget."
        )
    if not drv_valid.any():
        return map_points(driving, drive_size, out_size)

    window = max(int(calibration_frames), 1)
    drv_len = _calibrated(_bone_lengths(drv20, drv_valid), window)
    measured = _measured_ratios(ref_len, drv_len, outlier_factor)
    scale = _global_scale(ref20, ref_valid, drv20, drv_valid, measured, window, ref_size, drive_size, out_size)
    ratios = _fill_ratios(measured, scale)
    plan = _Plan(ratios, _hand_ratio(ref, driving, threshold, window, ratios), scale, threshold)

    rebuilt = [_rebuild_frame(drv20[t], drv_valid[t], plan) for t in range(len(driving))]
    anchor_frame = int(np.argmax(drv_valid.any(axis=1)))
    offset = _anchor_offset(ref20, ref_valid, rebuilt[anchor_frame][0], drv_valid[anchor_frame])

    out = np.empty_like(driving)
    for t, (new, foot_ratio) in enumerate(rebuilt):
        out[t] = _assemble(driving[t], drv20[t], drv_valid[t], new, foot_ratio, plan)
        out[t, :, :2] += offset
    return out


@dataclass(frozen=True)
class _Plan:
    """What every frame is rebuilt with: one ratio per limb, the hand ratio and the global scale."""

    ratios: np.ndarray
    hand_ratio: float
    scale: float
    threshold: float


def _bone_lengths(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(N, 19)`` limb lengths, NaN where either end is below threshold."""
    a, b = np.array(LIMBS).T
    length = np.linalg.norm(points[:, a, :2] - points[:, b, :2], axis=-1)
    return np.where(valid[:, a] & valid[:, b] & (length > 1e-3), length, np.nan)


def _calibrated(values: np.ndarray, window: int) -> np.ndarray:
    """Per column, the 90th percentile over the first ``window`` frames, else over the whole clip."""
    out = np.full(values.shape[1:], np.nan)
    for col in range(values.shape[1]):
        for span in (values[:window, col], values[:, col]):
            seen = span[np.isfinite(span)]
            if seen.size:
                out[col] = np.percentile(seen, 90)
                break
    return out


def _measured_ratios(ref_len: np.ndarray, drv_len: np.ndarray, outlier_factor: float | None) -> np.ndarray:
    ratios = ref_len / drv_len  # NaN where either is missing
    ratios = np.where(np.isfinite(ratios) & (ratios > 0), ratios, np.nan)
    body = np.array([i not in _HEAD_LIMBS for i in range(len(LIMBS))])
    seen = ratios[body & np.isfinite(ratios)]
    if outlier_factor is not None and seen.size >= 3:
        median = float(np.median(seen))
        far = body & (np.abs(np.log(ratios / median)) > np.log(outlier_factor))
        ratios[far] = np.nan
    return ratios


def _global_scale(
    ref20: np.ndarray,
    ref_valid: np.ndarray,
    drv20: np.ndarray,
    drv_valid: np.ndarray,
    measured: np.ndarray,
    window: int,
    ref_size: tuple[int, int],
    drive_size: tuple[int, int],
    out_size: tuple[int, int],
) -> float:
    """Output pixels per driver pixel for the body as a whole: nose→ankles height, else nose→hips."""
    for low in ((_R_ANKLE, _L_ANKLE), (_R_HIP, _L_HIP)):
        need = [_NOSE, *low]
        if not ref_valid[need].all():
            continue
        ref_h = np.linalg.norm(ref20[_NOSE, :2] - ref20[list(low), :2].mean(axis=0))
        if ref_h <= 1e-3:
            continue
        drv_h = np.linalg.norm(drv20[:, _NOSE, :2] - drv20[:, list(low), :2].mean(axis=1), axis=-1)
        drv_h = _calibrated(np.where(drv_valid[:, need].all(axis=1) & (drv_h > 1e-3), drv_h, np.nan)[:, None], window)
        if np.isfinite(drv_h[0]):
            return float(ref_h / drv_h[0])
    if np.isfinite(measured).any():
        return float(np.nanmedian(measured))
    ref_scale, _, _ = letterbox(ref_size, out_size)
    return float(ref_scale * np.sqrt(ref_size[0] * ref_size[1] / (drive_size[0] * drive_size[1])))


def _fill_ratios(measured: np.ndarray, scale: float) -> np.ndarray:
    """One ratio per limb: twins agree, then nearest relatives, shoulders, and finally the global scale."""
    ratios = measured.copy()
    for a, b in _SYMMETRIC:
        if np.isfinite(ratios[[a, b]]).any():
            ratios[a] = ratios[b] = np.nanmax(ratios[[a, b]])
    for a, b in _AVERAGED:
        if np.isfinite(ratios[[a, b]]).any():
            ratios[a] = ratios[b] = np.nanmean(ratios[[a, b]])
    known = ratios.copy()
    shoulders = known[list(_SHOULDERS)]
    shoulder = float(np.nanmean(shoulders)) if np.isfinite(shoulders).any() else scale
    for limb in range(len(LIMBS)):
        if np.isfinite(ratios[limb]):
            continue
        borrowed = [known[i] for i in _FALLBACKS.get(limb, ()) if np.isfinite(known[i])]
        ratios[limb] = borrowed[0] if borrowed else shoulder
    return ratios


def _hand_ratio(ref: np.ndarray, driving: np.ndarray, threshold: float, window: int, ratios: np.ndarray) -> float:
    """Character ÷ driver palm size, larger of the two hands; the forearm ratio when no palm is measurable."""
    found = []
    for hand in (LEFT_HAND, RIGHT_HAND):
        ref_palm = _palm_size(ref[None, hand], threshold)[0]
        drv_palm = _calibrated(_palm_size(driving[:, hand], threshold)[:, None], window)[0]
        if np.isfinite(ref_palm) and np.isfinite(drv_palm):
            found.append(ref_palm / drv_palm)
    return float(max(found)) if found else float(ratios[3])


def _palm_size(hands: np.ndarray, threshold: float) -> np.ndarray:
    lengths = []
    for a, b in _PALM:
        ok = (hands[:, a, 2] >= threshold) & (hands[:, b, 2] >= threshold)
        lengths.append(np.where(ok, np.linalg.norm(hands[:, a, :2] - hands[:, b, :2], axis=-1), np.nan))
    stacked = np.stack(lengths, axis=1)
    counts = np.isfinite(stacked).sum(axis=1)
    total = np.nansum(stacked, axis=1)
    mean = np.divide(total, counts, out=np.full(len(hands), np.nan), where=counts > 0)
    return np.where(mean > 1e-3, mean, np.nan)


def _rebuild_frame(drv: np.ndarray, valid: np.ndarray, plan: _Plan) -> tuple[np.ndarray, dict[int, float]]:
    """One frame's valid body20 points rebuilt from a root outward, plus each foot's effective ratio.

    The tree walk passes through missing joints: a valid point whose parent is missing is
    placed from its nearest valid ancestor with the mean ratio along the way, so an
    occluded elbow does not orphan a visible wrist.
    """
    new = np.zeros((20, 2), np.float32)
    foot_ratio: dict[int, float] = {}
    root = next((i for i in _ROOT_ORDER if valid[i]), None)
    if root is None:
        return new, foot_ratio
    new[root] = drv[root, :2] * plan.scale
    # (node, nearest valid ancestor, limbs walked since it)
    stack: list[tuple[int, int, list[int]]] = [(root, root, [])]
    seen = {root}
    while stack:
        node, anchor, path = stack.pop()
        for child, limb in _ADJACENT[node]:
            if child in seen:
                continue
            seen.add(child)
            walked = [*path, limb]
            if not valid[child]:
                stack.append((child, anchor, walked))
                continue
            ratio = float(np.mean(plan.ratios[walked]))
            if walked == [limb] and limb in _CALF_OF_FOOT and child == LIMBS[limb][1]:
                ratio = _capped_foot_ratio(drv, valid, plan.ratios, limb, ratio)
                foot_ratio[node] = ratio
            new[child] = new[anchor] + (drv[child, :2] - drv[anchor, :2]) * ratio
            stack.append((child, child, []))
    return new, foot_ratio


def _capped_foot_ratio(drv: np.ndarray, valid: np.ndarray, ratios: np.ndarray, foot: int, ratio: float) -> float:
    calf = _CALF_OF_FOOT[foot]
    (ka, kb), (fa, fb) = LIMBS[calf], LIMBS[foot]
    if not (valid[ka] and valid[kb]):
        return ratio
    calf_len = np.linalg.norm(drv[ka, :2] - drv[kb, :2]) * ratios[calf]
    foot_len = np.linalg.norm(drv[fa, :2] - drv[fb, :2])
    if foot_len * ratio > _FOOT_CAP * calf_len:
        return float(_FOOT_CAP * calf_len / foot_len)
    return ratio


def _anchor_offset(ref20: np.ndarray, ref_valid: np.ndarray, new: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Shift that puts the anchor frame where the character stands: feet for full bodies, else the neck.

    Full body (hips and ankles seen in both): the lower ankle lands on the character's
    lower ankle and the hip midpoint on the character's hip midpoint. Otherwise the neck
    lands on the character's neck, or, when either lacks a neck, the mean of the body
    points both show lands on theirs.
    """
    full = [_R_HIP, _L_HIP, _R_ANKLE, _L_ANKLE]
    if ref_valid[full].all() and valid[full].all():
        dx = ref20[[_R_HIP, _L_HIP], 0].mean() - new[[_R_HIP, _L_HIP], 0].mean()
        dy = ref20[[_R_ANKLE, _L_ANKLE], 1].max() - new[[_R_ANKLE, _L_ANKLE], 1].max()
        return np.array([dx, dy], np.float32)
    if ref_valid[_NECK] and valid[_NECK]:
        return (ref20[_NECK, :2] - new[_NECK]).astype(np.float32)
    both = ref_valid & valid
    if both.any():
        return (ref20[both, :2].mean(axis=0) - new[both].mean(axis=0)).astype(np.float32)
    return (ref20[ref_valid, :2].mean(axis=0) - new[valid].mean(axis=0)).astype(np.float32)


def _assemble(
    frame: np.ndarray,
    drv20: np.ndarray,
    valid: np.ndarray,
    new: np.ndarray,
    foot_ratio: dict[int, float],
    plan: _Plan,
) -> np.ndarray:
    """133 points before the anchor shift: rebuilt body, with feet, hands and face attached to it."""
    out = frame.copy()
    out[:, :2] *= plan.scale  # anything not re-attached below follows the global scale
    for i20, coco in _TO_COCO.items():
        if valid[i20]:
            out[coco, :2] = new[i20]
    for ankle, points in _FOOT_POINTS.items():
        if valid[ankle]:
            ratio = foot_ratio.get(ankle, float(plan.ratios[_FOOT_LIMB[ankle]]))
            out[points, :2] = new[ankle] + (frame[points, :2] - drv20[ankle, :2]) * ratio
    _attach_hands(out, frame, drv20, valid, new, plan)
    head = next((i for i in (_NOSE, _NECK) if valid[i]), None)
    if head is not None:
        out[FACE, :2] = new[head] + (frame[FACE, :2] - drv20[head, :2]) * float(plan.ratios[13])
    return out


def _attach_hands(
    out: np.ndarray, frame: np.ndarray, drv20: np.ndarray, valid: np.ndarray, new: np.ndarray, plan: _Plan
) -> None:
    """Scale each hand about its root and put the root on its new wrist.

    The hand whose root is nearer a wrist goes to that wrist, judged on both pairings
    together (the official code measured the right-hand distance from the left hand's
    root, so its swap test compared the wrong pair).
    """
    hands: Sequence[slice] = (LEFT_HAND, RIGHT_HAND)
    wrists = (_L_WRIST, _R_WRIST)
    roots = [frame[h.start] for h in hands]
    if all(r[2] >= plan.threshold for r in roots) and valid[list(wrists)].all():
        direct = sum(np.linalg.norm(roots[i][:2] - drv20[wrists[i], :2]) for i in range(2))
        swapped = sum(np.linalg.norm(roots[i][:2] - drv20[wrists[1 - i], :2]) for i in range(2))
        if swapped < direct:
            hands = (RIGHT_HAND, LEFT_HAND)
    for target, source, wrist in zip((LEFT_HAND, RIGHT_HAND), hands, wrists, strict=True):
        points = frame[source]
        out[target] = points
        out[target, :2] *= plan.scale
        root_ok = points[0, 2] >= plan.threshold
        if valid[wrist]:
            base, origin = new[wrist], points[0, :2] if root_ok else drv20[wrist, :2]
        elif root_ok:
            base, origin = points[0, :2] * plan.scale, points[0, :2]
        else:
            continue
        out[target, :2] = base + (points[:, :2] - origin) * plan.hand_ratio
