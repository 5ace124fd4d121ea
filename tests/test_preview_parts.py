"""Unit tests of the preview renderer's parts on synthetic inputs (no models, no media)."""

from __future__ import annotations

import numpy as np
import pytest

from wanimate.errors import WanimateError
from wanimate.preprocess import keypoints as K
from wanimate.preview.color import ColourMatcher, to_lab
from wanimate.preview.compose import composite
from wanimate.preview.deform import Poser, draw_order, limb_transform, part_depths, similarity, skin
from wanimate.preview.face import FaceAnimator, _squash, face_state
from wanimate.preview.inpaint import TemporalBackground, push_pull_fill
from wanimate.preview.rig import build_mesh, build_rig
from wanimate.preview.warp import Patch, inverse_affines, warp_mesh


def _apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:, :2].T + m[:, 2]


def _figure() -> tuple[np.ndarray, np.ndarray]:
    """A stick figure's keypoints and a blocky silhouette around them, 240x200."""
    kp = K.empty_pose()
    pts = {
        K.NOSE: (100, 40), K.L_EYE: (108, 34), K.R_EYE: (92, 34), K.L_EAR: (116, 38), K.R_EAR: (84, 38),
        K.L_SHOULDER: (130, 80), K.R_SHOULDER: (70, 80), K.L_ELBOW: (170, 90), K.R_ELBOW: (30, 90),
        K.L_WRIST: (190, 130), K.R_WRIST: (10, 130), K.L_HIP: (120, 170), K.R_HIP: (80, 170),
    }  # fmt: skip
    for i, (x, y) in pts.items():
        kp[i] = (x, y, 1.0)
    mask = np.zeros((240, 200), bool)
    mask[20:60, 82:118] = True  # head
    mask[60:180, 70:130] = True  # torso
    mask[72:98, 20:180] = True  # upper arms
    mask[90:140, 4:40] = True  # right forearm
    mask[90:140, 160:196] = True  # left forearm
    return kp, mask


def test_similarity_recovers_rotation_scale_translation() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (6, 2))
    angle, scale, shift = 0.4, 1.3, np.array([5.0, -7.0])
    lin = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ lin.T + shift
    m = similarity(src, dst)
    np.testing.assert_allclose(_apply(m, src), dst, atol=1e-3)


def test_limb_transform_maps_the_bone_and_keeps_width_scale() -> None:
    a, b = np.array([0.0, 0.0]), np.array([10.0, 0.0])
    a2, b2 = np.array([5.0, 5.0]), np.array([5.0, 13.0])  # rotated 90 degrees, shortened
    m = limb_transform(a, b, a2, b2, across=1.0)
    np.testing.assert_allclose(_apply(m, np.stack([a, b])), np.stack([a2, b2]), atol=1e-4)
    side = _apply(m, np.array([[0.0, 3.0]]))[0] - a2
    assert np.linalg.norm(side) == pytest.approx(3.0, abs=1e-4)  # the limb does not thin when it shortens


def test_inverse_affines_invert_and_flag_degenerate_triangles() -> None:
    src = np.array([[[0, 0], [10, 0], [0, 10]], [[0, 0], [1, 1], [2, 2]]], np.float32)
    dst = np.array([[[5, 5], [25, 5], [5, 15]], [[0, 0], [1, 1], [2, 2]]], np.float32)
    maps, ok = inverse_affines(src, dst)
    assert ok.tolist() == [True, False]
    np.testing.assert_allclose(dst[0] @ maps[0][:, :2].T + maps[0][:, 2], src[0], atol=1e-4)


def test_warp_mesh_moves_the_texture_and_draws_later_triangles_on_top() -> None:
    texture = np.zeros((20, 40, 4), np.uint8)
    texture[:, :20, 0] = np.arange(20, dtype=np.uint8)[None, :] * 10
    texture[:, 20:, 1] = 255  # the right half is green
    texture[..., 3] = 255
    square = np.array([[0, 0], [19, 0], [19, 19], [0, 19]], np.float32)
    tris = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    shift = np.array([30, 10], np.float32)
    patch = warp_mesh(texture, square, square + shift, tris, np.array([0, 1]), (64, 48))
    assert patch is not None and (patch.x0, patch.y0) == (30, 10)
    np.testing.assert_array_equal(patch.rgba[2:18, 2:18, 0], texture[2:18, 2:18, 0])
    assert warp_mesh(texture, square, square + np.float32(500), tris, np.array([0, 1]), (64, 48)) is None
    # Two triangles over the same spot, one textured red, one green: the one drawn last wins.
    src = np.vstack([square[:3], square[:3] + np.array([20, 0], np.float32)])
    dst = np.vstack([square[:3], square[:3]])
    pair = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    green_last = warp_mesh(texture, src, dst, pair, np.array([0, 1]), (20, 20))
    red_last = warp_mesh(texture, src, dst, pair, np.array([1, 0]), (20, 20))
    assert green_last is not None and red_last is not None
    assert green_last.rgba[3:6, 12:16, 1].min() == 255 and red_last.rgba[3:6, 12:16, 1].max() == 0


def test_composite_blends_premultiplied_colour() -> None:
    bg = np.full((10, 10, 3), 200, np.uint8)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 128
    rgba[..., :3] = 50  # premultiplied
    out = composite(bg, Patch(rgba, 2, 3))
    assert out[0, 0].tolist() == [200, 200, 200]
    assert abs(int(out[4, 3, 0]) - (50 + 200 * 127 // 255)) <= 1


def test_mesh_covers_the_silhouette_and_keeps_gaps_open() -> None:
    mask = np.zeros((120, 160), bool)
    mask[10:110, 10:50] = True
    mask[10:110, 110:150] = True  # two legs of a "U" with a 60-pixel gap between them
    mask[90:110, 10:150] = True
    verts, tris = build_mesh(mask, 10.0)
    centroids = verts[tris].mean(axis=1)
    inside_gap = (centroids[:, 0] > 55) & (centroids[:, 0] < 105) & (centroids[:, 1] < 85)
    assert not inside_gap.any()
    covered = np.zeros_like(mask, np.uint8)
    import cv2

    for t in tris:
        cv2.fillConvexPoly(covered, np.round(verts[t]).astype(np.int32), 1)
    assert covered[mask].mean() > 0.97


def test_rig_weights_follow_the_nearest_bone() -> None:
    kp, mask = _figure()
    rig = build_rig(mask, kp, spacing=8.0)
    np.testing.assert_allclose(rig.weights.sum(axis=1), 1.0, atol=1e-5)
    names = [b.name for b in rig.bones]
    assert "l_forearm" in names and "r_forearm" in names and "l_thigh" not in names
    near = np.argmin(np.linalg.norm(rig.vertices - [180, 110], axis=1))
    assert names[int(rig.weights[near].argmax())] == "l_forearm"
    near_torso = np.argmin(np.linalg.norm(rig.vertices - [100, 140], axis=1))
    assert names[int(rig.weights[near_torso].argmax())] == "torso"


def test_rig_rejects_a_figure_without_shoulders() -> None:
    kp, mask = _figure()
    kp[K.L_SHOULDER, 2] = 0
    with pytest.raises(WanimateError, match="clearer"):
        build_rig(mask, kp)
    with pytest.raises(WanimateError, match="no person"):
        build_rig(np.zeros_like(mask), _figure()[0])


def test_poser_moves_an_arm_and_falls_back_to_parents() -> None:
    kp, mask = _figure()
    rig = build_rig(mask, kp, spacing=8.0)
    poser = Poser(rig)
    rest = skin(rig, poser.transforms(kp))
    np.testing.assert_allclose(rest, rig.vertices, atol=1e-3)
    raised = kp.copy()
    raised[K.L_ELBOW, :2] = (150, 40)  # upper arm swung up
    raised[K.L_WRIST, 2] = 0.0  # the driver's wrist is not seen: the forearm follows the upper arm
    moved = skin(rig, poser.transforms(raised))
    hand = np.argmin(np.linalg.norm(rig.vertices - [185, 125], axis=1))
    hip = np.argmin(np.linalg.norm(rig.vertices - [100, 170], axis=1))
    assert moved[hand, 1] < rig.vertices[hand, 1] - 40
    assert np.linalg.norm(moved[hip] - rig.vertices[hip]) < 1.0
    lost = kp.copy()
    lost[K.L_SHOULDER, 2] = 0.0
    np.testing.assert_allclose(skin(rig, poser.transforms(lost)), moved)  # keeps the last pose


def test_layer_order_front_back_and_profile() -> None:
    kp, mask = _figure()
    rig = build_rig(mask, kp, spacing=8.0)
    front = part_depths(rig, kp)
    assert front["l_arm"] > front["torso"] and front["r_arm"] > front["torso"]
    back = kp.copy()
    back[[K.L_SHOULDER, K.R_SHOULDER], 0] = back[[K.R_SHOULDER, K.L_SHOULDER], 0]
    depth = part_depths(rig, back)
    assert depth["l_arm"] < depth["torso"] and depth["r_arm"] < depth["torso"]
    profile = kp.copy()
    profile[K.L_SHOULDER, 0], profile[K.R_SHOULDER, 0] = 110, 90  # turned: shoulders narrow
    profile[K.NOSE, 0] = 80  # nose towards the subject's right
    depth = part_depths(rig, profile)
    assert depth["r_arm"] < depth["torso"] < depth["l_arm"]
    order = draw_order(rig, back)
    arm_bones = [i for i, b in enumerate(rig.bones) if b.part.endswith("arm")]
    arm_positions = np.nonzero(np.isin(rig.triangle_bone[order], arm_bones))[0]
    torso_positions = np.nonzero(rig.triangle_bone[order] == rig.bone_index("torso"))[0]
    assert arm_positions.max() < torso_positions.min()


def test_push_pull_fill_is_smooth_and_keeps_known_pixels() -> None:
    yy, xx = np.mgrid[0:64, 0:96]
    image = np.dstack([xx * 2, yy * 3, np.full_like(xx, 90)]).astype(np.uint8)
    hole = np.zeros((64, 96), bool)
    hole[20:44, 30:60] = True
    damaged = image.copy()
    damaged[hole] = 0
    filled = push_pull_fill(damaged, hole)
    np.testing.assert_array_equal(filled[~hole], image[~hole])
    assert np.abs(filled[hole].astype(int) - image[hole]).mean() < 12


def test_temporal_background_recovers_what_the_performer_hid() -> None:
    rng = np.random.default_rng(1)
    scene = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    samples = []
    for x in range(0, 50, 5):  # a performer walking across a static scene
        hole = np.zeros((40, 60), bool)
        hole[5:35, x : x + 10] = True
        frame = scene.copy()
        frame[hole] = 0
        samples.append((frame, hole))
    bg = TemporalBackground(samples)
    assert bg.static
    hole = samples[3][1]
    np.testing.assert_array_equal(bg.fill(samples[3][0], hole)[hole], scene[hole])
    panning = [(np.roll(scene, 7 * i, axis=1), np.zeros((40, 60), bool)) for i in range(6)]
    assert not TemporalBackground(panning).static


def test_colour_matcher_moves_light_not_identity() -> None:
    texture = np.zeros((20, 20, 3), np.uint8)
    texture[...] = (230, 110, 40)  # an orange suit
    alpha = np.ones((20, 20), np.float32)
    matcher = ColourMatcher(texture, alpha)
    dark_scene = np.full((60, 60, 3), 40, np.uint8)
    performer = np.zeros((60, 60), bool)
    performer[20:40, 20:40] = True
    matcher.observe(dark_scene, performer)
    relit = matcher.apply()
    before, after = to_lab(texture)[0, 0], to_lab(relit)[0, 0]
    assert after[0] < before[0] - 15  # darker in a dark scene
    assert np.sign(after[1]) == np.sign(before[1]) and abs(after[2]) > 0.6 * abs(before[2])  # still orange


def _face_points(kp: np.ndarray, eye_open: float = 4.0, mouth_gap: float = 0.0) -> np.ndarray:
    f = K.FACE.start
    for base, cx in ((36, 80), (42, 120)):
        corners = [
            (cx - 10, 60),
            (cx - 4, 60 - eye_open),
            (cx + 4, 60 - eye_open),
            (cx + 10, 60),
            (cx + 4, 60 + eye_open),
            (cx - 4, 60 + eye_open),
        ]
        for i, p in enumerate(corners):
            kp[f + base + i] = (*p, 1.0)
    kp[f + 30] = (100, 80, 1.0)
    kp[f + 48], kp[f + 54] = (85, 100, 1.0), (115, 100, 1.0)
    inner = [(88, 0), (94, -1), (100, -1), (106, -1), (112, 0), (106, 1), (100, 1), (94, 1)]  # iBUG 60..67
    for i, (x, side) in enumerate(inner):
        kp[f + 60 + i] = (x, 100 + side * mouth_gap / 2, 1.0)
    kp[f + 8] = (100, 125, 1.0)
    for i in range(68):
        if kp[f + i, 2] == 0:
            kp[f + i] = (70 + (i % 17) * 4, 40 + (i // 17) * 25, 1.0)
    return kp


def test_squash_is_monotonic_and_scales_the_inside() -> None:
    offsets = np.linspace(-30, 30, 601)
    for factor in (0.1, 0.5, 1.5):
        src = _squash(offsets, 5.0, 12.0, factor)
        assert np.all(np.diff(src) >= 0)
        np.testing.assert_allclose(src[np.abs(offsets) > 12], offsets[np.abs(offsets) > 12])
    np.testing.assert_allclose(_squash(np.array([1.0]), 5.0, 12.0, 0.5), [2.0])


def test_face_follows_eyes_and_mouth() -> None:
    ref = _face_points(K.empty_pose())
    state = face_state(ref)
    assert state is not None and state.mouth == pytest.approx(0.0, abs=1e-6)
    assert face_state(_face_points(K.empty_pose(), mouth_gap=9.0)).mouth == pytest.approx(0.3, abs=1e-3)
    texture = np.full((160, 200, 3), 200, np.uint8)
    texture[55:66, 72:89] = 20  # a dark eye under the right-eye landmarks
    animator = FaceAnimator(ref, (0, 0), texture.shape[:2])
    from wanimate.preview.face import DriverNeutral

    neutral = DriverNeutral((state.eyes[0], state.eyes[1]), 0.0)
    closed = face_state(_face_points(K.empty_pose(), eye_open=1.0))
    out = animator.apply(texture, closed, neutral)
    assert (out[40:80, 60:100] < 100).sum() < 0.5 * (texture[40:80, 60:100] < 100).sum()
    opened = face_state(_face_points(K.empty_pose(), mouth_gap=9.0))
    out = animator.apply(texture, opened, neutral)
    assert (out[100:112, 90:110] < 80).sum() > 20  # a dark mouth interior below the lip line
    assert (texture[100:112, 90:110] < 80).sum() == 0
    np.testing.assert_array_equal(animator.apply(texture, state, neutral)[:30], texture[:30])


def test_face_without_landmarks_is_left_alone() -> None:
    from wanimate.preview.face import DriverNeutral

    kp, _ = _figure()  # body points only, no face landmarks
    animator = FaceAnimator(kp, (0, 0), (240, 200))
    texture = np.zeros((240, 200, 3), np.uint8)
    driver = face_state(_face_points(K.empty_pose(), mouth_gap=9.0))
    assert not animator.active
    assert animator.apply(texture, driver, DriverNeutral((0.4, 0.4), 0.0)) is texture
