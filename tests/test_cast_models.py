"""The model paths of a cast on tiny random weights: what reaches each MultiAnimate segment and each
Wan2.2-Animate replace pass, the paste-back that leaves everyone else untouched, and per-pass resume.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cast_fixtures import character, crossing_scene

from wanimate.cast.build import CastInputs, write_cast
from wanimate.cast.replace import (
    GENERATED,
    composite_scenes,
    generate_cast_replace,
    model_mask,
    pass_dir,
    paste_region,
)
from wanimate.cast.spec import CastMember
from wanimate.generate.settings import GenerateSettings
from wanimate.preprocess.skeleton import draw_skeleton
from wanimate.video import iter_frames
from wanimate.workdir import PASSES

SIZE = (48, 64)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """13 frames (two 9-frame segments), persons 0 and 1 cast; person 2 a bystander."""
    root = tmp_path_factory.mktemp("cast-models")
    scene = crossing_scene(3, frames=13, size=SIZE)
    video = scene.write(root / "scene.mp4")
    chars = [character(i, root, size=(80, 48)) for i in range(2)]
    members = [CastMember(i, c.image) for i, c in enumerate(chars)]
    kw = dict(members=members, characters=chars, people=scene.people, video=video, area=(64, 48))
    return root, scene, kw


def test_multianimate_segments_get_the_cast_reference_labels_and_poses(small, one_thread):
    from wanimate.generate.engine import SegmentGenerator
    from wanimate.materials.characters import load_character_materials
    from wanimate.multianimate import segments as seg
    from wanimate.multianimate.loading import load_multianimate
    from wanimate.multianimate.settings import MultiAnimateSettings

    root, scene, kw = small
    cast = write_cast(root / "animate", CastInputs(mode="animate", background="neutral", **kw))
    materials = load_character_materials(cast.root)
    model = load_multianimate("random:tiny", "random:3", dtype=torch.float32, progress=False)
    settings = MultiAnimateSettings(steps=1, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    seen: list[tuple[list[int], np.ndarray, torch.Tensor]] = []
    start, labels_of = seg.MultiAnimateSegments.start_segment, seg.label_indices

    def spy(self, segment, indices, tail, generator):
        seen.append((list(indices), None, self.reference.clone()))
        return start(self, segment, indices, tail, generator)

    def labels_spy(masks):
        out = labels_of(masks)
        seen[-1] = (seen[-1][0], np.asarray(out), seen[-1][2])
        return out

    seg.MultiAnimateSegments.start_segment, seg.label_indices = spy, labels_spy  # type: ignore[method-assign]
    try:
        outputs = list(SegmentGenerator(model, materials, settings, torch.device("cpu")).run())
    finally:
        seg.MultiAnimateSegments.start_segment, seg.label_indices = start, labels_of  # type: ignore[method-assign]
    assert len(outputs) == 2
    reference = materials.reference()
    for indices, labels, ref in seen:
        assert np.allclose((ref[0].permute(1, 2, 0).numpy() + 1) * 127.5, reference, atol=0.6)
        for row, t in zip(labels, indices, strict=True):
            truth = scene.people.labels[t]
            expected = np.where(truth == 1, 1, np.where(truth == 2, 2, 0))  # cast ids 0, 1 -> labels 1, 2; bystander 0
            assert np.array_equal(row, expected)


def _frames(path):
    return np.stack(list(iter_frames(path))).astype(int)


def test_replace_passes_masks_poses_references_and_paste_back(small, tmp_path, one_thread):
    from wanimate.models.loading import load_model

    root, scene, kw = small
    cast = write_cast(root / "replace", CastInputs(mode="replace", **kw))
    model = load_model("random:tiny", device="cpu")
    settings = GenerateSettings(steps=1, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    work = tmp_path / "work"
    out = generate_cast_replace(
        cast, tmp_path / "out.mp4", settings=settings, model=model, work_dir=work, keep_work=True
    )
    arrays = cast.arrays()
    labels = scene.people.labels
    original = _frames(cast.root / "src_scene.mp4")
    final = _frames(out)
    generated = {}
    for k, person in enumerate(cast.order):
        folder = pass_dir(work / PASSES, k, person)
        mats = folder / "materials"
        masks = _frames(mats / "src_mask.mp4")[..., 0] > 127
        assert all(np.array_equal(masks[t], model_mask(labels[t], person)) for t in range(len(labels)))
        pose = _frames(mats / "src_pose.mp4")

        def drawn(who: int) -> np.ndarray:
            return np.stack([draw_skeleton(arrays.driving[arrays.index(who), t], *SIZE) for t in range(len(labels))])

        other = next(p for p in cast.order if p != person)
        assert np.abs(pose - drawn(person)).mean() < 0.3 * np.abs(pose - drawn(other)).mean()
        assert (mats / "src_ref.png").read_bytes() == (cast.root / f"src_ref_{person}.png").read_bytes()
        generated[person] = _frames(folder / GENERATED)
    first, second = cast.order
    # pass 2's scene holds pass 1's output inside pass 1's region (outside pass 2's mask)
    bg2 = _frames(pass_dir(work / PASSES, 1, second) / "materials" / "src_bg.mp4")
    inside = np.stack([paste_region(lab, first) & ~model_mask(lab, second) for lab in labels])
    from_pass = np.abs(bg2[inside] - generated[first][inside]).mean()  # random weights: noise, kept roughly by H.264
    assert from_pass < 0.3 * np.abs(bg2[inside] - original[inside]).mean()
    # the final video: every pass in its own region, everything else (the bystander included) as the scene
    touched = np.zeros(labels.shape, bool)
    for person in cast.order:
        touched |= np.stack([paste_region(lab, person) for lab in labels])
    composed = np.stack([scene for scene, _ in composite_scenes(cast, work / PASSES, [0, 1])]).astype(int)
    assert np.array_equal(composed[~touched], original[~touched])  # exactly the scene, before the one encode
    assert np.abs(final[~touched] - original[~touched]).mean() < 5
    assert not (touched & (labels == 3)).any()
    last = np.stack([paste_region(lab, second) for lab in labels])
    assert np.abs(final[last] - generated[second][last]).mean() < 0.5 * np.abs(final[last] - original[last]).mean()


def test_killed_replace_cast_resumes_in_the_current_pass(small, tmp_path, one_thread):
    from wanimate.models.loading import load_model

    root, _, kw = small
    cast = write_cast(root / "replace-resume", CastInputs(mode="replace", **kw))
    model = load_model("random:tiny", device="cpu")
    settings = GenerateSettings(steps=1, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    whole = generate_cast_replace(cast, tmp_path / "whole.mp4", settings=settings, model=model, work_dir=tmp_path / "a")
    assert not (tmp_path / "a").exists()  # the passes go once the video is written, and the folder it made
    passes: list[int] = []

    class Killed(Exception):
        pass

    def kill_in_pass_two(event):
        if event.stage == "saved" and event.segment == 0 and passes[-1] == 1:
            raise Killed

    with pytest.raises(Killed):
        generate_cast_replace(
            cast,
            tmp_path / "b.mp4",
            settings=settings,
            model=model,
            work_dir=tmp_path / "b",
            progress=kill_in_pass_two,
            on_pass=lambda index, count, person: passes.append(index),
        )
    assert passes == [0, 1] and not (tmp_path / "b.mp4").exists()
    stamp = (pass_dir(tmp_path / "b" / PASSES, 0, cast.order[0]) / GENERATED).stat().st_mtime_ns
    events = []
    passes.clear()
    resumed = generate_cast_replace(
        cast,
        tmp_path / "b.mp4",
        settings=settings,
        model=model,
        work_dir=tmp_path / "b",
        keep_work=True,
        progress=lambda e: events.append((e.stage, e.segment)),
        on_pass=lambda index, count, person: passes.append(index),
    )
    assert passes == [1]  # the finished pass is not run again
    assert ("resume", 1) in events  # the current pass continues at its second segment
    assert (pass_dir(tmp_path / "b" / PASSES, 0, cast.order[0]) / GENERATED).stat().st_mtime_ns == stamp
    assert np.array_equal(_frames(whole), _frames(resumed))
