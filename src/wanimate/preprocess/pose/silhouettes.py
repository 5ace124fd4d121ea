"""Each person's own pixels, from the pose model's segmentation: their box and their appearance.

BlazePose's landmark model returns a silhouette of the person in its region, and it always
returns a *whole* body: below someone seen from the chest up (a bust, a person behind a table)
it invents hips and legs, with a faint silhouette for them, and next to someone else it lights
up the neighbour too. Three rules keep only what is really theirs:

* the silhouette is the confident part of the mask (:data:`SURE_MASK`) connected to their own
  head and shoulder points,
* inside the box of the body points the model is sure of (:data:`SURE_POINT`), grown by
  :data:`SURE_MARGIN`,
* and where two people's silhouettes overlap, each pixel goes to the person with the nearer
  landmark (:func:`separate`), so instance silhouettes are disjoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from wanimate.preprocess.appearance import describe
from wanimate.preprocess.pose.base import PersonPose

SURE_POINT = 0.9  # body landmark visibility that invented limbs mostly stay under
SURE_MASK = 0.5  # person probability of the selfie segmentation
SURE_MARGIN = 0.2  # the silhouette may reach this fraction of the sure points' extent beyond them
WORK_SIDE = 640  # see seen_from
UPPER_BODY = 1.2  # the appearance's lower part: this many shoulder widths under the shoulders
_ANCHOR = 0.5  # landmarks at least this visible (and every face point) claim pixels in `separate`


@dataclass(eq=False)
class Seen:
    """One person as the landmark model saw them in a region: pose, silhouette and the region's pixels."""

    person: PersonPose
    image: np.ndarray  # the region's RGB pixels
    offset: tuple[int, int]  # frame pixel of image[0, 0]
    silhouette: np.ndarray | None  # (h, w) bool over ``image``
    scale: int = 1  # frame pixels per pixel of ``image`` (large regions are looked at reduced)

    def finish(self) -> None:
        """Set the person's box and appearance from the (possibly separated) silhouette."""
        if self.silhouette is None or not self.silhouette.any():
            return
        self.person.bbox = silhouette_box(self.silhouette, self.person, self.offset, self.scale)
        self.person.appearance = describe(self.image, self.silhouette, *self._parts())

    def _parts(self) -> tuple[int | None, int | None]:
        """Image rows of the shoulder line and of the upper body's end (1.2 shoulder widths lower)."""
        shoulders = self.person.keypoints[[5, 6]]
        if (shoulders[:, 2] < 0.5).any():
            return None, None
        line = (float(shoulders[:, 1].mean()) - self.offset[1]) / self.scale
        width = float(np.linalg.norm(shoulders[0, :2] - shoulders[1, :2])) / self.scale
        return int(line), int(line + UPPER_BODY * max(width, 4.0))


def sure_region(keypoints: np.ndarray) -> np.ndarray:
    """Box of the body points the model is sure of, grown by ``SURE_MARGIN`` of its longer side."""
    body = keypoints[:23]
    sure = body[body[:, 2] >= SURE_POINT, :2]
    if len(sure) < 2:
        sure = body[body[:, 2] >= 0.5, :2]
    (x0, y0), (x1, y1) = sure.min(0), sure.max(0)
    grow = SURE_MARGIN * max(x1 - x0, y1 - y0, 8.0)
    return np.array([x0 - grow, y0 - grow, x1 + grow, y1 + grow], np.float32)


def own_silhouette(
    mask: np.ndarray, keypoints: np.ndarray, offset: tuple[int, int], region: np.ndarray | None = None, scale: int = 1
) -> np.ndarray | None:
    """The connected part of ``mask`` (bool, a region at ``offset``) under this person's head and shoulders,
    inside ``region`` (frame pixels)."""
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    points = keypoints[[0, 1, 2, 5, 6]]
    points = (points[points[:, 2] > 0.5, :2] - offset) / scale
    h, w = mask.shape
    votes = [labels[int(y), int(x)] for x, y in points if 0 <= x < w and 0 <= y < h and labels[int(y), int(x)] > 0]
    if not votes:
        return None
    own = labels == np.bincount(votes).argmax()
    if region is not None:
        x0, y0, x1, y1 = (
            int(np.clip((v - o) / scale, 0, n))
            for v, o, n in zip(region, (*offset, *offset), (w, h, w, h), strict=True)
        )
        inside = np.zeros_like(own)
        inside[y0:y1, x0:x1] = own[y0:y1, x0:x1]
        own = inside
    return own if own.any() else None


def silhouette_box(silhouette: np.ndarray, person: PersonPose, offset: tuple[int, int], scale: int = 1) -> np.ndarray:
    """The silhouette's box in frame pixels, grown to hold the confident head points (hair is thin)."""
    ys = np.flatnonzero(silhouette.any(axis=1))
    xs = np.flatnonzero(silhouette.any(axis=0))
    box = np.array([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float32) * scale
    box += np.tile(np.asarray(offset, np.float32), 2)
    head = person.keypoints[:5]
    head = head[head[:, 2] > 0.5, :2]
    if len(head):
        box[:2] = np.minimum(box[:2], head.min(0))
        box[2:] = np.maximum(box[2:], head.max(0))
    return box


def work_scale(shape: tuple[int, ...]) -> int:
    """Frame pixels per pixel a region of ``shape`` is segmented and worked at (see :func:`seen_from`)."""
    return max(1, -(-max(shape[:2]) // WORK_SIDE))


def seen_from(
    person: PersonPose, mask: np.ndarray | None, image: np.ndarray, offset: tuple[int, int], scale: int = 1
) -> Seen:
    """A person and their silhouette in a region, box and appearance set from it.

    ``image`` and ``mask`` are the region looked at every ``scale``-th pixel
    (:func:`work_scale`): a region over ``WORK_SIDE`` px is reduced, since the segmentation is
    computed at 256x256 anyway and the silhouette work in Python is the cost that grows with size.
    """
    region = sure_region(person.keypoints)
    person.bbox = region
    silhouette = None if mask is None else own_silhouette(mask > SURE_MASK, person.keypoints, offset, region, scale)
    seen = Seen(person, image, offset, silhouette, scale)
    seen.finish()
    return seen


def _anchors(keypoints: np.ndarray) -> np.ndarray:
    body = keypoints[:23]
    points = [body[body[:, 2] >= _ANCHOR, :2], keypoints[23:][keypoints[23:, 2] > 0, :2]]
    return np.concatenate(points).astype(np.float32)


def separate(everyone: list[Seen]) -> None:
    """Make the silhouettes disjoint (:func:`give_away`); whoever lost pixels gets box and appearance again."""
    masks = [seen.silhouette for seen in everyone]
    changed = give_away(
        [s.scale for s in everyone],
        masks,
        [s.offset for s in everyone],
        [s.person.keypoints for s in everyone],
        [s.person.bbox.copy() for s in everyone],
    )
    for i in changed:
        seen = everyone[i]
        if seen.silhouette is not None and not seen.silhouette.any():
            seen.silhouette = None
        seen.finish()


def give_away(
    scales: list[int],
    masks: list[np.ndarray | None],
    offsets: list[tuple[int, int]],
    keypoints: list[np.ndarray],
    boxes: list[np.ndarray],
) -> set[int]:
    """Take from each mask the pixels that belong to someone else; returns the indices of the masks changed.

    A pixel of one person's mask (a bool array at ``offsets[i]`` in the frame, one pixel every
    ``scales[i]`` frame pixels) that lies in
    another's box and is nearer to one of that other person's landmarks than to any of their own
    is not theirs. The other person need not claim the pixel themselves (their own mask may stop
    short of it); ties stay with the earlier person. The masks are changed in place.
    """
    anchors = [_anchors(points) for points in keypoints]
    trees = [cKDTree(points) if len(points) else None for points in anchors]
    changed = set()
    for i, mask in enumerate(masks):
        tree = trees[i]
        if mask is None or tree is None:
            continue
        (ox, oy), step = offsets[i], scales[i]
        h, w = mask.shape
        for j, box in enumerate(boxes):
            other = trees[j]
            if j == i or other is None:
                continue
            x0, y0 = max(int(box[0] - ox) // step, 0), max(int(box[1] - oy) // step, 0)
            x1, y1 = min(int(np.ceil((box[2] - ox) / step)), w), min(int(np.ceil((box[3] - oy) / step)), h)
            if x1 <= x0 or y1 <= y0:
                continue
            ys, xs = np.nonzero(mask[y0:y1, x0:x1])
            if not len(ys):
                continue
            pixels = np.stack([(xs + x0) * step + ox, (ys + y0) * step + oy], axis=1).astype(np.float32)
            theirs, ours = other.query(pixels)[0], tree.query(pixels)[0]
            given = theirs < ours if i < j else theirs <= ours
            if given.any():
                mask[ys[given] + y0, xs[given] + x0] = False
                changed.add(i)
    return changed
