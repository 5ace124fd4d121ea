"""Instance masks: each tracked person's own pixels, never the union of everyone.

The segmenter (:class:`~wanimate.preprocess.masks.PersonSegmenter`) finds *people* pixels
in a crop around one person and keeps the regions under that person's own keypoints and box.
Two people close together are one region for it. A pixel both masks claim goes to the person
whose colours it fits clearly better (back-projection of their appearance histograms,
:func:`wanimate.preprocess.appearance.likelihood`): landmarks of someone half hidden behind
another lie on the other's body, colours do not. Then the pixels of a mask that lie in another
person's box and are nearer to one of their landmarks go to them
(:func:`wanimate.preprocess.pose.silhouettes.give_away`, the rule pass 1 uses for silhouettes).
What is left contested, the nearer one wins: in a street or a room, the person whose feet (box
bottom) are lower in the frame stands in front. A label map (0 = nobody, id + 1 = that person)
holds them all, so the masks are disjoint.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from wanimate.preprocess.appearance import likelihood
from wanimate.preprocess.masks import PersonSegmenter
from wanimate.preprocess.pose.silhouettes import give_away

Person = tuple[int, np.ndarray, np.ndarray, np.ndarray | None]  # id, keypoints (133, 3), box (4,), appearance
CLEARLY = 2.0  # a pixel's colour must fit one person this many times better than the other to decide


def label_people(segmenter: PersonSegmenter, frame: np.ndarray, people: list[Person]) -> np.ndarray:
    """(H, W) uint8 label map of ``people`` = [(id, keypoints, box, appearance or None)] in ``frame``'s pixels."""
    order = sorted(people, key=lambda p: float(p[2][3]))  # far (higher feet) first
    masks: list[np.ndarray | None] = [segmenter.segment(frame, p[1], p[2]) for p in order]
    if len(order) > 1:
        _by_colour(frame, masks, [p[3] for p in order])
        give_away(
            [1] * len(order), masks, [(0, 0)] * len(order), [p[1] for p in order], [np.asarray(p[2]) for p in order]
        )
    labels = np.zeros(frame.shape[:2], np.uint8)
    for (person_id, _, _, _), mask in zip(order, masks, strict=True):
        labels[mask] = person_id + 1
    return labels


def _by_colour(frame: np.ndarray, masks: list[np.ndarray | None], looks: list[np.ndarray | None]) -> None:
    """Pixels two masks claim leave the mask whose person's colours they fit clearly worse."""
    for i, j in combinations(range(len(masks)), 2):
        a, b, look_a, look_b = masks[i], masks[j], looks[i], looks[j]
        if a is None or b is None or look_a is None or look_b is None:
            continue
        ys, xs = np.nonzero(a & b)
        if not len(ys):
            continue
        pixels = frame[ys, xs]
        fit_a, fit_b = likelihood(look_a, pixels), likelihood(look_b, pixels)
        b[ys[fit_a > CLEARLY * fit_b], xs[fit_a > CLEARLY * fit_b]] = False
        a[ys[fit_b > CLEARLY * fit_a], xs[fit_b > CLEARLY * fit_a]] = False


def present_at(tracks: list, t: int, among: set[int] | None = None) -> list[Person]:
    """(id, keypoints, box, appearance) of the tracks present in frame ``t`` (optionally only ids in ``among``)."""
    return [
        (track.id, track.keypoints[t], track.boxes[t], track.appearance)
        for track in tracks
        if (track.detected[t] or track.interpolated[t]) and (among is None or track.id in among)
    ]


def overlapping(tracks: list, chosen: int, t: int) -> set[int]:
    """Ids whose box touches the chosen person's box in frame ``t`` (they may cover each other)."""
    me = next(track for track in tracks if track.id == chosen)
    if not (me.detected[t] or me.interpolated[t]):
        return set()
    x0, y0, x1, y1 = me.boxes[t]
    out = {chosen}
    for track in tracks:
        if track.id != chosen and (track.detected[t] or track.interpolated[t]):
            a0, b0, a1, b1 = track.boxes[t]
            if a0 < x1 and a1 > x0 and b0 < y1 and b1 > y0:
                out.add(track.id)
    return out
