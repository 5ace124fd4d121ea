"""Carry a stretch of the driving video's audio into the video being written.

The audio is pulled alongside the video (up to the time of the last video frame
written), so the output is interleaved like any player expects and no more than
one audio packet is ever held. Output audio starts at t=0 with the first video
frame and never runs past the last one.

Tracks MP4 can hold as they are (AAC, MP3, ALAC, AC-3) are copied packet by
packet, which keeps the original quality but cuts on packet boundaries (a 1024-
sample AAC packet is 21 ms at 48 kHz; each cut lands on the nearest boundary).
Anything else (PCM, Opus, Vorbis, FLAC...) is decoded, cut to the sample, and
encoded as AAC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from wanimate.video.source import is_attached_picture

if TYPE_CHECKING:  # materials imports wanimate.video, so only the type is imported here
    from wanimate.materials.folder import AudioSource

COPYABLE = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})
AAC_BIT_RATE = 192_000


class AudioUnavailable(Exception):
    """The audio source cannot be used; the video is written without audio."""


def audio_to_carry(source: AudioSource | None) -> AudioSource | None:
    """``source`` when its file is still there with an audio track; otherwise ``None``, with a warning now.

    Checked before a video is made, so a moved driving video is said at the start of a long run,
    not discovered at its end.
    """
    if source is None:
        return None
    path = Path(source.path)
    reason = None
    if not path.is_file():
        reason = f"{path} is no longer there"
    else:
        try:
            with av.open(str(path), metadata_errors="replace") as container:
                if not [s for s in container.streams.audio if not is_attached_picture(s)]:
                    reason = f"{path} has no audio track"
        except av.error.FFmpegError as exc:
            reason = f"{path} cannot be read ({exc})"
    if reason is None:
        return source
    logging.getLogger("wanimate").warning("the output is written without the driving video's audio: %s", reason)
    return None


class AudioFeed:
    """One audio track being copied or transcoded into an output container."""

    def __init__(self, source: AudioSource, output: av.container.OutputContainer) -> None:
        path = Path(source.path)
        if not path.is_file():
            raise AudioUnavailable(f"audio source {path} not found")
        try:
            self._input = av.open(str(path), metadata_errors="replace")
        except av.error.FFmpegError as exc:
            raise AudioUnavailable(f"audio source {path} is unreadable ({exc})") from exc
        try:
            self._setup(source, path, output)
        except BaseException:
            self._input.close()
            raise

    def _setup(self, source: AudioSource, path: Path, output: av.container.OutputContainer) -> None:
        streams = [s for s in self._input.streams.audio if not is_attached_picture(s)]
        if not streams:
            raise AudioUnavailable(f"{path} has no audio track")
        stream = streams[0]
        if stream.codec_context is None:
            raise AudioUnavailable(f"the audio codec of {path} cannot be decoded by this FFmpeg build")
        self._stream = stream
        videos = [s for s in self._input.streams.video if not is_attached_picture(s)]
        origin = Fraction(0)
        if videos and videos[0].start_time is not None:
            origin = videos[0].start_time * videos[0].time_base
        self._start = origin + Fraction(source.start).limit_denominator(10**6)
        self._limit: Fraction | None = None
        if source.duration is not None:
            self._limit = Fraction(source.duration).limit_denominator(10**6)
        self.copy = stream.codec_context.name in COPYABLE
        self._check_decodable()
        if self.copy:
            self.stream = output.add_stream_from_template(stream)
            self._packets: Iterator[tuple[Fraction, av.Packet]] = self._copied_packets()
            self._pending: tuple[Fraction, av.Packet] | None = None
        else:
            self._rate = stream.sample_rate or 48000
            self._layout = "mono" if stream.channels == 1 else "stereo"  # AAC-safe; surround is mixed down
            self.stream = output.add_stream("aac", rate=self._rate)
            self.stream.layout = self._layout
            self.stream.bit_rate = AAC_BIT_RATE
            self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
            self._samples: Iterator[np.ndarray] = self._decoded_samples()
            self._buffer = np.empty((0, 0), np.float32)
            self._written = 0
        self._output = output
        self.seconds_written = Fraction(0)

    def _check_decodable(self) -> None:
        """Decode the first packets at the start point, so a broken track fails before anything is muxed."""
        self._seek()
        try:
            for index, packet in enumerate(self._input.demux(self._stream)):
                if packet.decode() or index >= 16:  # a decoder may hold a few packets back
                    return
        except av.error.FFmpegError as exc:
            raise AudioUnavailable(f"the audio of {self._input.name} cannot be decoded ({exc})") from exc
        raise AudioUnavailable(f"{self._input.name} has no audio at {float(self._start):.3f} s")

    def _seek(self) -> None:
        target = int(self._start / self._stream.time_base)
        self._input.seek(max(0, target), stream=self._stream, backward=True, any_frame=False)

    def _copied_packets(self) -> Iterator[tuple[Fraction, av.Packet]]:
        """Packets from the start point on, with their output time; cut at the nearest boundary."""
        self._seek()
        time_base = self._stream.time_base
        origin: int | None = None
        for packet in self._input.demux(self._stream):
            if not packet.size or packet.pts is None:
                continue
            middle = (packet.pts + Fraction(packet.duration or 0, 2)) * time_base
            if origin is None:
                if middle < self._start:
                    continue
                origin = packet.pts
            packet.pts = packet.dts = packet.pts - origin
            yield packet.pts * time_base, packet

    def _decoded_samples(self) -> Iterator[np.ndarray]:
        """(channels, n) float32 chunks from exactly the start time on.

        Only the first frame's timestamp places the samples: later ones are counted,
        since containers such as Matroska round timestamps to the millisecond.
        """
        self._seek()
        first = round(self._start * self._rate)  # in samples of the source clock
        position: int | None = None
        for frame in self._input.decode(self._stream):
            if position is None:
                position = round(frame.pts * frame.time_base * self._rate) if frame.pts is not None else first
            for converted in self._resampler.resample(frame):
                chunk = converted.to_ndarray()
                skip = min(max(first - position, 0), chunk.shape[1])
                position += chunk.shape[1]
                if skip < chunk.shape[1]:
                    yield chunk[:, skip:]

    def write_until(self, seconds: Fraction) -> None:
        """Mux the audio that plays before ``seconds`` of output time (and within the source's duration)."""
        end = seconds if self._limit is None else min(seconds, self._limit)
        if self.copy:
            self._copy_until(end)
        else:
            self._encode_until(end)

    def _copy_until(self, end: Fraction) -> None:
        while True:
            if self._pending is None:
                self._pending = next(self._packets, None)
                if self._pending is None:
                    return
            start, packet = self._pending
            length = (packet.duration or 0) * self._stream.time_base
            if start + length / 2 > end:
                return
            packet.stream = self.stream
            self._output.mux(packet)
            self.seconds_written = start + length
            self._pending = None

    def _encode_until(self, end: Fraction) -> None:
        target = round(end * self._rate)
        while self._written < target:
            if self._buffer.shape[1] == 0:
                chunk = next(self._samples, None)
                if chunk is None:
                    return
                self._buffer = chunk
            take = min(self._buffer.shape[1], target - self._written)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(self._buffer[:, :take]), format="fltp", layout=self._layout
            )
            frame.sample_rate = self._rate
            frame.pts = self._written
            frame.time_base = Fraction(1, self._rate)
            self._buffer = self._buffer[:, take:]
            self._written += take
            for packet in self.stream.encode(frame):
                self._output.mux(packet)
        self.seconds_written = Fraction(self._written, self._rate)

    def finish(self, seconds: Fraction) -> None:
        """Write the audio up to the video's end and flush the encoder."""
        self.write_until(seconds)
        if not self.copy:
            for packet in self.stream.encode(None):
                self._output.mux(packet)

    def close(self) -> None:
        self._input.close()
