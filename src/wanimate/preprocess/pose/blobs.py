"""Looking for a lost person by their silhouette and their look, where the person detector is blind.

BlazePose's detector keys on the face: someone whose face is hidden (a camera held up to the
eye, a turned head, a hat) is found by it only now and then, so once such a person is lost they
may stay lost. Selfie segmentation needs no face. Over the window where a lost person should
reappear, it finds person-shaped regions; a region of about their height whose colours match
their appearance (:mod:`wanimate.preprocess.appearance`) becomes a candidate, which the landmark
model must then confirm (see :meth:`Candidate.is_who`).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from wanimate.preprocess.appearance import describe, distance
from wanimate.preprocess.pose.base import PersonPose
from wanimate.preprocess.pose.detector import Window
from wanimate.preprocess.pose.finders import Candidate
from wanimate.preprocess.pose.landmarker import Roi

BLOB_LOOK = 0.45  # a region's appearance distance to the lost person's look below which it may be them
BLOB_SIDE = 2.0  # the landmark region around a matching region, in sides of its box
_HEIGHTS = (0.5, 2.5)  # a matching region's height, in heights of the lost person's last box (a sure part)


class BlobSearch:
    """Selfie segmentation over windows, for lost people whose look is known."""

    def __init__(self) -> None:
        from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

        self._model: Any = SelfieSegmentation(model_selection=0)
        self.runs = 0

    def find(
        self, frame: np.ndarray, searches: list[tuple[Window, np.ndarray, np.ndarray]], people: list[PersonPose]
    ) -> list[Candidate]:
        """Candidates for ``searches`` = [(window, lost person's look, their last box)] not among ``people``."""
        found = []
        for (x0, y0, x1, y1), look, box in searches:
            crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
            self.runs += 1
            result = self._model.process(crop)
            if result.segmentation_mask is None:
                continue
            mask = (result.segmentation_mask > 0.5).astype(np.uint8)
            count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            height = float(box[3] - box[1])
            for label in range(1, count):
                bx, by, bw, bh = (int(v) for v in stats[label, :4])
                if not _HEIGHTS[0] * height <= bh <= _HEIGHTS[1] * height:
                    continue
                blob = np.array([bx + x0, by + y0, bx + bw + x0, by + bh + y0], np.float32)
                if _taken(blob, people):
                    continue
                own = describe(crop, labels == label)
                if own is None or distance(own, look) >= BLOB_LOOK:
                    continue
                roi = Roi.around_box(blob, side=BLOB_SIDE * max(bw, bh))
                found.append(Candidate(roi=roi, body=blob, look=look, score=1.0 - distance(own, look)))
        return found

    def close(self) -> None:
        self._model.close()


def _taken(blob: np.ndarray, people: list[PersonPose]) -> bool:
    """Whether the region's centre lies in the box of someone already followed."""
    cx, cy = (blob[0] + blob[2]) / 2, (blob[1] + blob[3]) / 2
    return any(p.bbox[0] <= cx <= p.bbox[2] and p.bbox[1] <= cy <= p.bbox[3] for p in people)
