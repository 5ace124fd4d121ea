"""Instance masks: each tracked person's own pixels, never the union of everyone.

The segmenter (:class:`~wanimate.preprocess.masks.PersonSegmenter`) finds *people* pixels
in a crop around one person and keeps the regions under that person's own keypoints and box.
Where two people's masks overlap, the nearer one wins: in a street or a room, the person whose
feet (box bottom) are lower in the frame stands in front. Masks are therefore disjoint by
construction, and a label map (0 = nobody, id + 1 = that person) holds them all.
"""

from __future__ import annotations

import numpy as np

from wanimate.preprocess.masks import PersonSegmenter


def label_people(
    segmenter: PersonSegmenter, frame: np.ndarray, people: list[tuple[int, np.ndarray, np.ndarray]]
) -> np.ndarray:
    """(H, W) uint8 label map of ``people`` = [(id, keypoints (133, 3), box (4,))] in ``frame``'s pixels."""
    labels = np.zeros(frame.shape[:2], np.uint8)
    for person_id, keypoints, box in sorted(people, key=lambda p: float(p[2][3])):  # far (higher feet) first
        mask = segmenter.segment(frame, keypoints, box)
        labels[mask] = person_id + 1
    return labels


def present_at(tracks: list, t: int, among: set[int] | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(id, keypoints, box) of the tracks present in frame ``t`` (optionally only ids in ``among``)."""
    return [
        (track.id, track.keypoints[t], track.boxes[t])
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
