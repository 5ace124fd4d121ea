"""`wanimate generate` end to end on a tiny random model: output, fps, audio, frames, and every bad input."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from wanimate.cli import main
from wanimate.materials import load_materials, write_meta
from wanimate.testing.synthetic import write_materials
from wanimate.video import AudioSource, VideoWriter, iter_frames, probe_video

# Everything but the weights: a short fp32 CPU run.
SHORT = ["--steps", "1", "--segment-frames", "9", "--dtype", "fp32", "--device", "cpu", "--prompt", "w1"]
TINY = ["--weights", "random:tiny", *SHORT]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_writes_video_at_materials_fps_with_frames(tmp_path, capsys):
    materials = write_materials(tmp_path / "m", num_frames=13, fps=25.0)
    out = tmp_path / "out.mp4"
    code, err = run_cli(
        ["generate", str(materials), "-o", str(out), "--save-frames", str(tmp_path / "png"), *TINY], capsys
    )
    assert code == 0, err
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height) == (13, 32, 32)
    assert info.fps == pytest.approx(25.0)
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 13
    decoded = np.stack(list(iter_frames(out))).astype(int)
    saved = np.stack([np.asarray(Image.open(p)) for p in pngs]).astype(int)
    assert np.abs(decoded - saved).mean() < 6  # the mp4 is the same frames, H.264-compressed


def _video_with_audio(path: Path, seconds: float, fps: int = 25) -> None:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 5 % 255, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        t = np.arange(int(seconds * 16000)) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = start
            frame.time_base = Fraction(1, 16000)
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)


def test_audio_is_remuxed_unless_disabled(tmp_path, capsys):
    drive = tmp_path / "drive.mp4"
    _video_with_audio(drive, 1.0)
    materials = write_materials(tmp_path / "m", num_frames=13, fps=25.0)
    meta = load_materials(materials).meta
    meta.audio = AudioSource(path=str(drive), start=0.0, duration=13 / 25)
    write_meta(materials, meta)
    with_audio, without = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert run_cli(["generate", str(materials), "-o", str(with_audio), *TINY], capsys)[0] == 0
    assert run_cli(["generate", str(materials), "-o", str(without), "--no-audio", *TINY], capsys)[0] == 0
    assert probe_video(with_audio).has_audio
    assert not probe_video(without).has_audio


def _bad_materials(tmp_path: Path, kind: str) -> Path:
    root = write_materials(tmp_path / "m", num_frames=9, mode="replace" if kind.startswith("replace") else "animate")
    if kind == "missing":
        (root / "src_face.mp4").unlink()
    elif kind == "frame_count":
        with VideoWriter(root / "src_face.mp4", 30) as writer:
            for _ in range(7):
                writer.write(np.zeros((16, 16, 3), np.uint8))
    elif kind == "replace_size":
        with VideoWriter(root / "src_bg.mp4", 30) as writer:
            for _ in range(9):
                writer.write(np.zeros((48, 32, 3), np.uint8))
    elif kind == "not16":
        shutil.rmtree(root)
        root = write_materials(tmp_path / "m", num_frames=9, height=40, width=32)
    elif kind == "unreadable":
        (root / "src_pose.mp4").write_bytes(b"this is not a video")
    elif kind == "truncated":
        data = (root / "src_pose.mp4").read_bytes()
        (root / "src_pose.mp4").write_bytes(data[: len(data) // 3])
    return root


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "src_face.mp4"),
        ("frame_count", "frames"),
        ("replace_size", "must match"),
        ("not16", "multiples of 16"),
        ("unreadable", "src_pose.mp4"),
        ("truncated", "src_pose.mp4"),
    ],
)
def test_bad_materials_fail_cleanly(tmp_path, capsys, kind, message):
    materials = _bad_materials(tmp_path, kind)
    out = tmp_path / "out.mp4"
    code, err = run_cli(["generate", str(materials), "-o", str(out), *TINY], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--overlap", "3"], "--overlap must be 1 or 5"),
        (["--segment-frames", "10"], "4n+1"),
        (["--mode", "replace"], "src_bg.mp4"),
        (["--dtype", "fp8"], "--dtype"),
    ],
)
def test_bad_options_fail_cleanly(tmp_path, capsys, args, message):
    materials = write_materials(tmp_path / "m", num_frames=9)
    out = tmp_path / "out.mp4"
    code, err = run_cli(["generate", str(materials), "-o", str(out), *TINY, *args], capsys)
    assert code == 2, err
    assert message in err
    assert not out.exists()


def test_weights_folder_matching_no_layout(tmp_path, capsys):
    materials = write_materials(tmp_path / "m", num_frames=9)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "readme.txt").write_text("nothing here")
    out = tmp_path / "out.mp4"
    args = ["generate", str(materials), "-o", str(out), "--weights", str(weights), "--device", "cpu"]
    code, err = run_cli(args, capsys)
    assert code == 2
    assert str(weights.name) in err
    assert not out.exists()


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(Exception, match="materials folder not found"):
        main(["--debug", "generate", str(tmp_path / "nope"), "-o", str(tmp_path / "o.mp4"), *TINY])


def test_single_file_transformer_with_base_folder(tmp_path, capsys):
    from safetensors.torch import save_file

    from wanimate.models.factory import build_pipeline

    pipe = build_pipeline("tiny")
    pipe.save_pretrained(tmp_path / "base")
    single = tmp_path / "transformer.safetensors"
    save_file({k: v.contiguous() for k, v in pipe.transformer.state_dict().items()}, str(single))
    materials = write_materials(tmp_path / "m", num_frames=9)
    args = ["generate", str(materials), "-o", str(tmp_path / "o.mp4"), "--weights", str(single)]
    args += ["--base", str(tmp_path / "base"), *SHORT]
    code, err = run_cli(args, capsys)
    assert code == 0, err
    assert probe_video(tmp_path / "o.mp4").num_frames == 9
