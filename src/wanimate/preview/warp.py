"""Piecewise-affine warp of the character texture through the posed mesh.

Instead of one ``warpAffine`` per triangle, every triangle is rasterised once, back to
front, into a label image (``fillConvexPoly`` is a few microseconds each), the inverse
affine of each pixel's triangle gives a source coordinate, and a single ``remap`` samples
the texture. Later triangles overwrite earlier ones, which is how layer order is applied;
neighbouring triangles share edges, so the map is continuous and shows no seams.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SUBPIXEL_BITS = 4


@dataclass(frozen=True)
class Patch:
    """A warped premultiplied-RGBA patch placed at ``(x0, y0)`` in the output frame."""

    rgba: np.ndarray  # (h, w, 4) uint8, colour premultiplied by alpha
    x0: int
    y0: int


def inverse_affines(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle maps from output to texture pixels, ``(T, 2, 3)``, and which are usable.

    ``src``/``dst`` are ``(T, 3, 2)`` corner coordinates. The 2x2 edge matrices are inverted
    in closed form (batched LAPACK is far slower for thousands of tiny matrices). A triangle
    squashed to a line has no inverse; it is flagged unusable and never drawn.
    """
    e1, e2 = dst[:, 1] - dst[:, 0], dst[:, 2] - dst[:, 0]
    f1, f2 = src[:, 1] - src[:, 0], src[:, 2] - src[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-3
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # A = F @ inv(E) with E = [e1 e2] as columns; inv(E) = [[e2y, -e2x], [-e1y, e1x]] / det.
    a00 = (f1[:, 0] * e2[:, 1] - f2[:, 0] * e1[:, 1]) * inv_det
    a01 = (f2[:, 0] * e1[:, 0] - f1[:, 0] * e2[:, 0]) * inv_det
    a10 = (f1[:, 1] * e2[:, 1] - f2[:, 1] * e1[:, 1]) * inv_det
    a11 = (f2[:, 1] * e1[:, 0] - f1[:, 1] * e2[:, 0]) * inv_det
    b0 = src[:, 0, 0] - a00 * dst[:, 0, 0] - a01 * dst[:, 0, 1]
    b1 = src[:, 0, 1] - a10 * dst[:, 0, 0] - a11 * dst[:, 0, 1]
    maps = np.stack([a00, a01, b0, a10, a11, b1], axis=1).reshape(-1, 2, 3)
    return maps.astype(np.float32), ok


def warp_mesh(
    texture: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    triangles: np.ndarray,
    order: np.ndarray,
    frame_size: tuple[int, int],
) -> Patch | None:
    """Render ``texture`` (premultiplied RGBA) through the mesh moved from ``src`` to ``dst``.

    ``src`` is in texture pixels, ``dst`` in output pixels, ``order`` lists triangles back to
    front, ``frame_size`` is (width, height). Returns None when the mesh is off screen.
    """
    width, height = frame_size
    x0, y0 = np.floor(dst.min(axis=0)).astype(int)
    x1, y1 = np.ceil(dst.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return None
    local = dst - np.array([x0, y0], np.float32)
    corners_dst = local[triangles]
    maps, ok = inverse_affines(src[triangles], corners_dst)
    label = np.full((y1 - y0, x1 - x0), len(triangles), np.int32)
    fixed = np.round(corners_dst * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    for i in order[ok[order]].tolist():
        cv2.fillConvexPoly(label, fixed[i], i, cv2.LINE_8, _SUBPIXEL_BITS)
    # Pixels no triangle covers get the extra entry, which maps far outside the texture.
    # One ``take`` per coefficient is several times faster than gathering (h, w, 6) rows.
    columns = np.concatenate([maps.reshape(-1, 6), np.array([[0, 0, -1e4, 0, 0, -1e4]], np.float32)]).T.copy()
    gx = np.arange(x1 - x0, dtype=np.float32)[None, :]
    gy = np.arange(y1 - y0, dtype=np.float32)[:, None]
    map_x = np.take(columns[0], label)
    map_x *= gx
    map_x += np.take(columns[1], label) * gy
    map_x += np.take(columns[2], label)
    map_y = np.take(columns[3], label)
    map_y *= gx
    map_y += np.take(columns[4], label) * gy
    map_y += np.take(columns[5], label)
    rgba = cv2.remap(texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return Patch(rgba, int(x0), int(y0))
