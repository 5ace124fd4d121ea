"""Bad input, part 3: images and videos that cannot be used, through ``preprocess`` and ``run``.

Broken media fail with one line before any model (or, for ``run``, before torch) is loaded; the
awkward-but-valid ones are in test_bad_input_valid.py.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from bad_input import Case, Env, ids, run_failing_case
from PIL import Image


def pre(env: Env, image: str = "char.png", video: str = "drive.mp4") -> list[str]:
    return [
        "preprocess",
        "--image",
        env.s(image),
        "--video",
        env.s(video),
        "-o",
        env.s("m"),
        "--quiet",
        "--area",
        "64x64",
    ]


def run(env: Env, image: str = "char.png", video: str = "drive.mp4") -> list[str]:
    return [
        "run",
        "--image",
        env.s(image),
        "--video",
        env.s(video),
        "-o",
        env.s("out.mp4"),
        "--backend",
        "preview",
        "--area",
        "64x64",
    ]


def png_header(path: Path, width: int, height: int) -> Path:
    """A valid PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape) but holds 1 row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def truncated_png(env: Env) -> None:
    data = (env / "char.png").read_bytes()
    (env / "cut.png").write_bytes(data[: len(data) // 3])


def tiny_png(env: Env) -> None:
    Image.new("RGB", (40, 40), (200, 120, 80)).save(env / "small.png")


def audio_only(env: Env) -> None:
    with av.open(str(env / "voice.m4a"), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        tone = (0.2 * np.sin(np.arange(44100) / 10)).astype(np.float32)
        for start in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, start : start + 1024], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


IMAGES = [
    ("bomb", lambda e: png_header(e / "bomb.png", 9000, 9000), "bomb.png", ("9000x9000", "81.0 MP", "64.0 MP")),
    ("huge-bomb", lambda e: png_header(e / "bomb.png", 30000, 30000), "bomb.png", ("900.0 MP", "64.0 MP")),
    ("truncated", truncated_png, "cut.png", ("truncated",)),
    ("zero-bytes", lambda e: (e / "empty.png").write_bytes(b""), "empty.png", ("not an image",)),
    ("text", lambda e: (e / "note.png").write_text("<svg></svg>"), "note.png", ("not an image",)),
    ("a-video", None, "drive.mp4", ("not an image",)),
    ("too-small", tiny_png, "small.png", ("40x40", "64 px")),
]

VIDEOS = [
    ("zero-bytes", None, "zero.mp4", ("empty (0 bytes)",)),
    ("junk", None, "junk.mp4", ("not a video",)),
    ("text", None, "notes.mp4", ("text file",)),
    ("truncated", None, "cut.mp4", ("truncated",)),
    ("still-image", None, "still.mp4", ("still image",)),
    ("too-small", None, "tiny.mp4", ("32x32", "64 px")),
    ("audio-only", audio_only, "voice.m4a", ("no video stream", "only audio")),
    ("an-image", None, "char.png", ("still image",)),
]
BROKEN_VIDEOS = ("image", "video", "zero", "junk", "text", "truncated", "still", "tiny_video")


def _image_cases(command) -> list[Case]:
    return [
        Case(f"{command.__name__}-image-{name}", lambda e, f=file, c=command: c(e, image=f), needles, setup=setup)
        for name, setup, file, needles in IMAGES
    ]


def _video_cases(command) -> list[Case]:
    return [
        Case(
            f"{command.__name__}-video-{name}",
            lambda e, f=file, c=command: c(e, video=f),
            needles,
            setup=setup,
            needs=BROKEN_VIDEOS,
        )
        for name, setup, file, needles in VIDEOS
    ]


CASES = _image_cases(pre) + _image_cases(run) + _video_cases(pre) + _video_cases(run)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_bad_media(case: Case, bad_input_library, tmp_path, capsys, monkeypatch) -> None:
    run_failing_case(case, Env(tmp_path, bad_input_library), capsys, monkeypatch)


def test_run_rejects_an_empty_video_before_importing_torch(bad_input_library, tmp_path) -> None:
    """`run` must reject as fast as `preprocess`: its checks come before torch and the weights."""
    code = (
        "import sys\n"
        "from wanimate.cli import main\n"
        "try:\n"
        f"    main(['run', '--image', {str(bad_input_library['image'])!r}, '--video', "
        f"{str(bad_input_library['zero'])!r}, '-o', {str(tmp_path / 'o.mp4')!r}])\n"
        "except SystemExit as exc:\n"
        "    print(exc.code, 'torch' in sys.modules, 'mediapipe' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert result.stderr.count("\n") == 1 and "empty (0 bytes)" in result.stderr
    assert list(tmp_path.iterdir()) == []
