"""Turn stored frames upright the way players do, from the display matrix or a ``rotate`` tag.

Phones record the sensor's landscape image and store how to show it: MP4/MOV
carry a display matrix (FFmpeg hands it to us as frame side data), older files
and some Matroska writers a ``rotate`` tag in clockwise degrees. Without applying
it a portrait clip comes out lying on its side, and pose estimation fails.
Rotations are snapped to quarter turns, as FFmpeg's own auto-rotation does for
every orientation a camera writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType


@dataclass(frozen=True)
class Orientation:
    """How to map a stored frame to the upright one: transpose first, then flips."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    rotation: int = 0  # clockwise degrees a player turns the stored frame (0, 90, 180, 270)

    @classmethod
    def from_matrix(cls, a: float, b: float, c: float, d: float) -> Orientation:
        """From the 2x2 part of an FFmpeg display matrix (``x' = a x + c y``, ``y' = b x + d y``)."""
        rotation = round(math.degrees(math.atan2(b, a)) / 90) % 4 * 90
        if abs(b) > abs(a):
            return cls(transpose=True, flip_rows=b < 0, flip_cols=c < 0, rotation=rotation)
        return cls(flip_rows=d < 0, flip_cols=a < 0, rotation=rotation)

    @classmethod
    def from_clockwise(cls, degrees: float) -> Orientation:
        """From a ``rotate`` tag: the picture is to be turned this far clockwise."""
        theta = math.radians(round(degrees / 90) * 90)
        cos, sin = round(math.cos(theta)), round(math.sin(theta))
        return cls.from_matrix(cos, sin, -sin, cos)

    def upright_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the upright picture for a stored ``width`` x ``height``."""
        return (height, width) if self.transpose else (width, height)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Upright view of an (H, W, C) image; a copy only when the layout changes."""
        if self.transpose:
            image = image.transpose(1, 0, 2)
        if self.flip_rows:
            image = image[::-1]
        if self.flip_cols:
            image = image[:, ::-1]
        if self.transpose or self.flip_rows or self.flip_cols:
            return np.ascontiguousarray(image)
        return image


def frame_orientation(frame: av.VideoFrame, metadata: dict[str, str]) -> Orientation:
    """The orientation of a decoded frame: its display matrix, else the stream's ``rotate`` tag."""
    for side_data in frame.side_data:
        if side_data.type == SideDataType.DISPLAYMATRIX:
            m = np.frombuffer(bytes(side_data), dtype="<i4")
            return Orientation.from_matrix(float(m[0]), float(m[1]), float(m[3]), float(m[4]))
    for key, value in metadata.items():
        if key.lower() == "rotate":
            try:
                return Orientation.from_clockwise(float(value))
            except ValueError:
                break
    return Orientation()
