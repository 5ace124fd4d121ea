"""Whole-body landmarks for a given region: mediapipe's Holistic models, fed our own regions of interest.

mediapipe's Holistic graph finds its person itself (one per graph, with its own detector) and
then follows them from its previous landmarks. Here the *region* comes from us: from the
tile-pyramid detector (:mod:`wanimate.preprocess.pose.detector`) for someone new, or from the
person's landmarks in the previous frame (moved along their velocity) for someone followed. One
graph then serves everyone in the frame, each person one timestamp of a batch, built from
mediapipe's own registered subgraphs (the ones its Holistic graph is made of):

* ``PoseLandmarkByRoiCpu``: BlazePose's landmark model (full) on the rotated square, with its
  two auxiliary landmarks (hip centre and a point on the body circle) that place the next
  region. Its presence score (threshold 0.5) is also what rejects the detector's false alarms.
* ``SelfieSegmentationCpu`` (general model) on the region's pixels: the people in it, for each
  person's silhouette (their box and appearance, :mod:`wanimate.preprocess.pose.silhouettes`).
  It is fed the region subsampled to the resolution the silhouette is worked at (``Job.small``):
  the model sees 256x256 anyway, and a mask the size of a large region would only be
  upsampled by mediapipe and subsampled again here.
  The pose model's own segmentation is not used: it paints the hips and legs the pose model
  invents below someone seen from the chest up, where selfie segmentation follows the pixels.
* ``FaceLandmarksFromPoseCpu``: the face mesh on the face region the pose gives.
* ``HandLandmarksLeftAndRightCpu``: the hands from the pose's wrists, behind a gate: a hand of a
  person under :data:`HANDS_MIN_HEIGHT` px is a few pixels wide, where the hand model only adds cost
  (the caller also closes it for someone whose hands it has not been finding, ``Job.hands``).

Regions follow mediapipe's own convention (``AlignmentPointsRectsCalculator`` then
``RectTransformationCalculator``): centred on the hip centre, rotated so the hip-to-circle axis
points up, a square of side 2.5 x the circle radius.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

ROI_SCALE = 1.25  # mediapipe's RectTransformation scale around the body circle's square
HANDS_MIN_HEIGHT = 200.0  # px of person height below which hand landmarks are not computed

_GRAPH = r"""
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
input_stream: "HANDS:hands"
input_stream: "SEG_IMAGE:seg_image"
output_stream: "POSE:pose_landmarks"
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_side_packet: "ENABLE_SEGMENTATION:pose_segmentation"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:pose_landmarks"
  output_stream: "AUXILIARY_LANDMARKS:aux_landmarks"
}
node {
  calculator: "SelfieSegmentationCpu"
  input_side_packet: "MODEL_SELECTION:selfie_model"
  input_stream: "IMAGE:seg_image"
  output_stream: "SEGMENTATION_MASK:segmentation_mask"
}
node {
  calculator: "SplitNormalizedLandmarkListCalculator"
  input_stream: "pose_landmarks"
  output_stream: "face_from_pose"
  options {
    [mediapipe.SplitVectorCalculatorOptions.ext] { ranges { begin: 0 end: 11 } }
  }
}
node {
  calculator: "FaceLandmarksFromPoseCpu"
  input_stream: "IMAGE:image"
  input_stream: "FACE_LANDMARKS_FROM_POSE:face_from_pose"
  output_stream: "FACE_LANDMARKS:face_landmarks"
}
node {
  calculator: "GateCalculator"
  input_stream: "ALLOW:hands"
  input_stream: "pose_landmarks"
  output_stream: "hand_pose_landmarks"
}
node {
  calculator: "HandLandmarksLeftAndRightCpu"
  input_stream: "IMAGE:image"
  input_stream: "POSE_LANDMARKS:hand_pose_landmarks"
  output_stream: "LEFT_HAND_LANDMARKS:left_hand_landmarks"
  output_stream: "RIGHT_HAND_LANDMARKS:right_hand_landmarks"
}
"""
_OUTPUTS = (
    "pose_landmarks",
    "aux_landmarks",
    "segmentation_mask",
    "face_landmarks",
    "left_hand_landmarks",
    "right_hand_landmarks",
)


@dataclass(frozen=True)
class Roi:
    """A rotated square of the frame: centre and side in pixels, rotation in radians (mediapipe's sign)."""

    cx: float
    cy: float
    side: float
    rotation: float = 0.0

    @classmethod
    def from_axis(cls, hip: np.ndarray, edge: np.ndarray) -> Roi:
        """mediapipe's region for a body circle centred at ``hip`` through ``edge`` (pixels)."""
        dx, dy = float(edge[0] - hip[0]), float(edge[1] - hip[1])
        radius = math.hypot(dx, dy)
        rotation = math.pi / 2 - math.atan2(-dy, dx)
        rotation = rotation - 2 * math.pi * math.floor((rotation + math.pi) / (2 * math.pi))
        return cls(float(hip[0]), float(hip[1]), 2 * radius * ROI_SCALE, rotation)

    @classmethod
    def around_box(cls, box: np.ndarray, side: float | None = None) -> Roi:
        """An upright square centred on ``box``: ``side`` px, or ROI_SCALE x the box's longer side."""
        x0, y0, x1, y1 = (float(v) for v in box)
        if side is None:
            side = max(x1 - x0, y1 - y0, 16.0) * ROI_SCALE
        return cls((x0 + x1) / 2, (y0 + y1) / 2, side)

    def moved(self, shift: np.ndarray) -> Roi:
        return Roi(self.cx + float(shift[0]), self.cy + float(shift[1]), self.side, self.rotation)

    def bounds(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The frame pixels the rotated square touches (x0, y0, x1, y1), clipped to the frame."""
        half = self.side / 2 * (abs(math.cos(self.rotation)) + abs(math.sin(self.rotation)))
        x0, y0 = max(0, int(self.cx - half)), max(0, int(self.cy - half))
        x1, y1 = min(width, math.ceil(self.cx + half)), min(height, math.ceil(self.cy + half))
        return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


@dataclass
class Job:
    """One person to look at: the image they are in (often a crop) placed at ``offset`` in the frame."""

    image: np.ndarray  # RGB uint8, contiguous
    offset: tuple[int, int]  # frame pixel of image[0, 0]
    roi: Roi  # frame pixels
    hands: bool
    small: np.ndarray  # image[::scale, ::scale], contiguous: what segmentation sees
    scale: int = 1


@dataclass
class Landmarks:
    """The graph's answer for one job, in the job's image (see :meth:`Landmarker.run`)."""

    result: SimpleNamespace  # pose_landmarks, face_landmarks, left/right_hand_landmarks (protos or None)
    aux: np.ndarray  # (2, 2) hip centre and body-circle point, frame pixels
    mask: np.ndarray | None  # float32 silhouette over the job's ``small`` image


class Landmarker:
    """One mediapipe graph that returns whole-body landmarks for a batch of regions."""

    def __init__(self) -> None:
        import mediapipe as mp
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python._framework_bindings import resource_util

        # mediapipe resolves model paths against this root, as its own solutions do.
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
        self._mp = mp
        self._rect = rect_pb2.NormalizedRect
        config = text_format.Parse(_GRAPH, calculator_pb2.CalculatorGraphConfig())
        self._graph: Any = mp.CalculatorGraph(graph_config=config)
        self._results: dict[int, dict[str, Any]] = {}
        for stream in _OUTPUTS:
            self._graph.observe_output_stream(stream, self._collector(stream))
        self._graph.start_run(
            {
                "model_complexity": mp.packet_creator.create_int(1),
                "pose_segmentation": mp.packet_creator.create_bool(False),
                "selfie_model": mp.packet_creator.create_int(0),
            }
        )
        self._time = 0
        self._pending: list[tuple[int, Job]] = []
        self.runs = 0

    def _collector(self, stream: str) -> Any:
        def collect(_: str, packet: Any) -> None:
            self._results.setdefault(packet.timestamp.value, {})[stream] = packet

        return collect

    def submit(self, jobs: list[Job]) -> None:
        """Queue ``jobs`` in the graph; it works on them while the caller does something else."""
        mp = self._mp
        for job in jobs:
            self._time += 1
            h, w = job.image.shape[:2]
            ox, oy = job.offset
            rect = self._rect(
                x_center=(job.roi.cx - ox) / w,
                y_center=(job.roi.cy - oy) / h,
                width=job.roi.side / w,
                height=job.roi.side / h,
                rotation=job.roi.rotation,
            )
            frame = mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=job.image)
            self._graph.add_packet_to_input_stream("image", frame.at(self._time))
            self._graph.add_packet_to_input_stream("roi", mp.packet_creator.create_proto(rect).at(self._time))
            self._graph.add_packet_to_input_stream("hands", mp.packet_creator.create_bool(job.hands).at(self._time))
            small = mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=job.small)
            self._graph.add_packet_to_input_stream("seg_image", small.at(self._time))
            self._pending.append((self._time, job))
        self.runs += len(jobs)

    def collect(self) -> list[Landmarks | None]:
        """Answers for every submitted job, in order; None where the model saw no person."""
        self._graph.wait_until_idle()
        getter = self._mp.packet_getter
        answers: list[Landmarks | None] = []
        for stamp, job in self._pending:
            found = self._results.pop(stamp, {})
            if "pose_landmarks" not in found or "aux_landmarks" not in found:
                answers.append(None)
                continue
            protos = {name: getter.get_proto(p) for name, p in found.items() if name != "segmentation_mask"}
            h, w = job.image.shape[:2]
            aux = np.array([(p.x * w, p.y * h) for p in protos["aux_landmarks"].landmark[:2]], np.float32)
            mask = found.get("segmentation_mask")
            answers.append(
                Landmarks(
                    result=SimpleNamespace(
                        pose_landmarks=protos["pose_landmarks"],
                        face_landmarks=protos.get("face_landmarks"),
                        left_hand_landmarks=protos.get("left_hand_landmarks"),
                        right_hand_landmarks=protos.get("right_hand_landmarks"),
                    ),
                    aux=aux + np.asarray(job.offset, np.float32),
                    mask=None if mask is None else np.array(getter.get_image_frame(mask).numpy_view()).squeeze(),
                )
            )
        self._pending = []
        self._results.clear()
        return answers

    def run(self, jobs: list[Job]) -> list[Landmarks | None]:
        self.submit(jobs)
        return self.collect()

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None
