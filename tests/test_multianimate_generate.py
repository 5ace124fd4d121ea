"""MultiAnimate end to end on tiny random weights: long video, resume after kill -9, bad input, demo layout."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from multianimate_fixtures import write_demo_layout
from PIL import Image

from wanimate.cli import main
from wanimate.generate import generate
from wanimate.generate.engine import ProgressEvent
from wanimate.materials.characters import load_character_materials, mask_file
from wanimate.models.session import ModelSession
from wanimate.multianimate.loading import load_multianimate
from wanimate.multianimate.settings import MultiAnimateSettings
from wanimate.testing.synthetic import write_character_materials
from wanimate.video import VideoWriter, iter_frames, probe_video

SHORT = ["--steps", "1", "--segment-frames", "9", "--dtype", "fp32", "--device", "cpu", "--prompt", "w1"]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


@pytest.fixture(scope="module")
def model(one_thread):
    return load_multianimate("random:tiny", "random:3", dtype=torch.float32, progress=False)


def test_long_video_resumes_after_kill_bit_identical(tmp_path, model):
    """33 frames in 4 segments of 9 (each continuing from the last frame of the one before)."""
    materials = write_character_materials(tmp_path / "m", characters=2, num_frames=33, height=32, width=48)
    settings = MultiAnimateSettings(
        weights="random:tiny", adapter="random:3", steps=8, segment_frames=9, dtype="fp32", device="cpu",
        prompt="w1 w2", seed=4,
    )  # fmt: skip
    started: list[int] = []

    def record(event: ProgressEvent) -> None:
        if event.stage == "segment":
            started.append(event.segment)

    session = ModelSession.wrap(model, dtype="fp32", device="cpu")
    generate(materials, tmp_path / "full.mp4", settings, session=session, save_frames=tmp_path / "full",
             progress=record)  # fmt: skip
    assert started == [0, 1, 2, 3]

    out, work = tmp_path / "resumed.mp4", tmp_path / "resumed.work" / "segments"
    args = ["--weights", "random:tiny", "--adapter", "random:3", "--steps", "8", "--segment-frames", "9",
            "--dtype", "fp32", "--device", "cpu", "--prompt", "w1 w2", "--seed", "4"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # the same single thread as this process
    proc = subprocess.Popen(
        [sys.executable, "-m", "wanimate", "generate", str(materials), "-o", str(out), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not list(work.glob("*.safetensors")):
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    finished = sorted(work.glob("*.safetensors"))
    assert 1 <= len(finished) < 4
    stamps = {p.name: p.stat().st_mtime_ns for p in finished}

    started.clear()
    generate(materials, out, settings, session=session, save_frames=tmp_path / "resumed", keep_work=True,
             progress=record)  # fmt: skip
    assert started == list(range(len(finished), 4))  # finished segments were reused, not recomputed
    assert all((work / name).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    assert np.array_equal(_pngs(tmp_path / "full"), _pngs(tmp_path / "resumed"))


def test_each_segment_starts_from_the_previous_last_frame(tmp_path, model):
    """The seam plumbing: segment k's I2V first frame is exactly segment k-1's last decoded frame."""
    from wanimate.generate.engine import SegmentGenerator
    from wanimate.multianimate.segments import MultiAnimateSegments

    materials = load_character_materials(
        write_character_materials(tmp_path / "m", characters=2, num_frames=17, height=32, width=48)
    )
    settings = MultiAnimateSettings(steps=1, segment_frames=9, dtype="fp32", device="cpu", prompt="w1")
    firsts: list[torch.Tensor] = []
    original = MultiAnimateSegments.start_segment

    def spy(self, segment, indices, tail, generator):
        firsts.append(self.reference if tail is None else tail[:, :, -1].clone())
        return original(self, segment, indices, tail, generator)

    MultiAnimateSegments.start_segment = spy  # type: ignore[method-assign]
    try:
        outputs = list(SegmentGenerator(model, materials, settings, torch.device("cpu")).run())
    finally:
        MultiAnimateSegments.start_segment = original  # type: ignore[method-assign]
    assert [o.frames.shape[0] for o in outputs] == [9, 8]  # the conditioning frame is not repeated
    assert torch.equal(firsts[1], outputs[0].tail[:, :, -1])


def _bad(materials: Path, args: list[str], capsys, tmp_path: Path) -> str:
    out = tmp_path / "bad.mp4"
    code, err = run_cli(["generate", str(materials), "-o", str(out), *args, *SHORT], capsys)
    assert code == 2, err
    assert not out.exists() and not (tmp_path / "bad.work").exists()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def _rewrite_mask(materials: Path, index: int, edit) -> None:
    frames = list(iter_frames(materials / mask_file(index)))
    with VideoWriter(materials / mask_file(index), 15.0, lossless=True) as writer:
        for frame in edit(frames):
            writer.write(frame)


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    tiny = ["--weights", "random:tiny"]
    four = write_character_materials(tmp_path / "four", characters=4, num_frames=9, height=32, width=64)
    err = _bad(four, [*tiny, "--adapter", "random:3"], capsys, tmp_path)
    assert "4 characters" in err and "up to 3" in err and "multianimate-7 (up to 7)" in err

    empty = write_character_materials(tmp_path / "empty", characters=2, num_frames=9, height=32, width=48)
    _rewrite_mask(empty, 2, lambda frames: [np.zeros_like(frames[0]), *frames[1:]])
    assert "character 2's mask (src_mask_2.mp4) is empty at frame 0" in _bad(empty, tiny, capsys, tmp_path)

    moved = write_character_materials(tmp_path / "moved", characters=2, num_frames=9, height=32, width=48)
    Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(moved / "src_ref_pose.png")
    assert "shows no skeleton" in _bad(moved, tiny, capsys, tmp_path)
    swapped = write_character_materials(tmp_path / "swapped", characters=2, num_frames=9, height=32, width=48)
    pose = np.asarray(Image.open(swapped / "src_ref_pose.png")).copy()
    pose[:, 24:] = 0  # only the left character stands in the reference
    Image.fromarray(pose).save(swapped / "src_ref_pose.png")
    assert "character 2's frame-0 mask (src_mask_2.mp4) does not match the reference" in _bad(
        swapped, tiny, capsys, tmp_path
    )

    short = write_character_materials(tmp_path / "short", characters=2, num_frames=9, height=32, width=48)
    _rewrite_mask(short, 1, lambda frames: frames[:-1])
    assert "src_mask_1.mp4 has 8 frames but src_pose.mp4 has 9" in _bad(short, tiny, capsys, tmp_path)

    animate = tmp_path / "animate-weights"
    from wanimate.models.factory import build_pipeline

    build_pipeline("tiny").save_pretrained(animate)
    capsys.readouterr()  # the save's progress bars
    fine = write_character_materials(tmp_path / "fine", characters=2, num_frames=9, height=32, width=48)
    err = _bad(fine, ["--weights", str(animate), "--adapter", "random:3"], capsys, tmp_path)
    assert "holds a WanAnimatePipeline, not Wan2.1-I2V-14B" in err

    # The same folder with an I2V base: --model auto finds MultiAnimate, the video has the materials' frames and fps.
    code, err = run_cli(["generate", str(fine), "-o", str(tmp_path / "ok.mp4"), *tiny, *SHORT], capsys)
    assert code == 0, err
    info = probe_video(tmp_path / "ok.mp4")
    assert (info.num_frames, info.width, info.height, info.fps) == (9, 48, 32, 15.0)


def test_demo_layout_is_read_as_it_is(tmp_path, tiny_character_materials, capsys):
    demo = write_demo_layout(tiny_character_materials, tmp_path / "3people")
    read = load_character_materials(demo, size=(48, 32))
    assert read.layout == "multianimate-demo" and read.characters == 3 and read.num_frames == 9
    assert read.meta.fps == 15.0
    assert np.array_equal(read.reference(), tiny_character_materials.reference())
    for ours, theirs in zip(tiny_character_materials.masks, read.masks, strict=True):
        assert all(np.array_equal(a[..., 0], b[..., 0]) for a, b in zip(ours.open(), theirs.open(), strict=True))
    assert np.array_equal(next(read.pose.open()), next(tiny_character_materials.pose.open()))
    assert np.abs(read.reference_pose().astype(int) - tiny_character_materials.reference_pose()).mean() < 3  # jpg
    default = load_character_materials(demo)
    assert (default.width, default.height) == (832, 480)  # the reference's size

    (demo / "masks" / "person_b" / "0004.png").unlink()
    err = _bad(demo, ["--weights", "random:tiny"], capsys, tmp_path)
    assert "masks/person_b has 8 masks but pose/ has 9 frames" in err
    shutil.rmtree(demo / "masks")
    (demo / "masks").mkdir()
    assert "holds no per-person folder" in _bad(demo, ["--weights", "random:tiny"], capsys, tmp_path)


def test_memory_and_speed_options_apply(one_thread, tiny_character_materials):
    """Placement options change nothing; int8 weights run with a bounded error; Animate-only options are refused."""
    from engine_runs import prepared_generator

    from wanimate.errors import WanimateError

    base = dict(steps=1, seed=5, segment_frames=9, dtype="fp32", device="cpu", prompt="w1", negative_prompt="w3")

    def frames(**options) -> torch.Tensor:
        model = load_multianimate("random:tiny", "random:3", dtype=torch.float32, progress=False)
        settings = MultiAnimateSettings(**base, **options)
        run = prepared_generator(model, tiny_character_materials, settings).run()
        return torch.cat([o.frames for o in run])

    plain = frames()
    assert torch.equal(frames(offload="group", text_encoder_cpu=True, vae_tiling=True), plain)
    quantized = frames(quantize="int8")
    assert 0 < (quantized - plain).abs().max() < 0.3
    with pytest.raises(WanimateError, match=r"--cache fbc is a Wan2\.2-Animate option"):
        MultiAnimateSettings(cache="fbc")
