"""Frame-rate arithmetic: exact rates and nearest-timestamp resampling.

Everything here works on :class:`fractions.Fraction` seconds so that resampling
decisions never depend on float rounding (a 29.97 fps clip is 30000/1001, and
"frame k of the output" lands exactly where it should).
"""

from __future__ import annotations

import math
from fractions import Fraction

_NTSC = Fraction(1001, 1000)


def fps_fraction(fps: float | Fraction) -> Fraction:
    """The exact rate a float stands for: 29.97 is 30000/1001, 12.5 is 25/2.

    Broadcast rates (23.976, 29.97, 59.94, ...) are written as rounded decimals
    everywhere, so a rate within 0.001 of N*1000/1001 is taken to be that rate.
    """
    if isinstance(fps, Fraction):
        rate = fps
    else:
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, not {fps}")
        ntsc = round(fps * 1.001)
        if ntsc and abs(fps - ntsc / 1.001) < 1e-3 and abs(fps - round(fps)) > 1e-3:
            rate = Fraction(ntsc) / _NTSC
        else:
            rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    return rate


def resampled_count(duration: Fraction, fps: Fraction) -> int:
    """Frames that cover ``duration`` seconds at ``fps``: round(duration * fps), at least 1.

    Rounding (not ceiling) keeps a 120-frame 29.97 fps clip (4.004 s) at 60
    frames for 15 fps instead of adding a 61st frame for the last 0.004 s.
    """
    return max(1, math.floor(duration * fps + Fraction(1, 2)))


class NearestTimestamp:
    """Decide, one source frame at a time, how often each frame appears in the output.

    Output frame ``k`` shows the source frame whose presentation time is nearest to
    ``k / fps`` (times relative to the first source frame; a tie goes to the
    earlier frame). Source frames arrive in presentation order; :meth:`push`
    returns how many output frames the *previous* source frame fills, which is
    known once the next frame's time is seen. :meth:`finish` gives the last
    frame's share so that exactly ``total`` frames come out.
    """

    def __init__(self, fps: Fraction, total: int) -> None:
        self.fps = fps
        self.total = total
        self.emitted = 0
        self._previous: Fraction | None = None

    @property
    def done(self) -> bool:
        return self.emitted >= self.total

    def push(self, time: Fraction) -> int:
        """Take the next source frame's time; return copies owed to the previous frame."""
        previous, self._previous = self._previous, time
        if previous is None:
            return 0
        midpoint = (previous + time) / 2
        copies = 0
        while self.emitted < self.total and Fraction(self.emitted) / self.fps <= midpoint:
            self.emitted += 1
            copies += 1
        return copies

    def finish(self) -> int:
        """Copies owed to the last frame pushed (every output time left is nearest to it)."""
        if self._previous is None:
            return 0
        copies = self.total - self.emitted
        self.emitted = self.total
        return copies
