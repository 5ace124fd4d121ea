"""Find people at every size: BlazePose's own person detector, run on a pyramid of tiles.

mediapipe's Pose graph keeps only the single best detection and squeezes the whole frame into
the detector's 224x224 input, so a person whose face is under ~14 px *in that input* is never
seen (a face of 50 px in a 720p frame). The detector model itself (``pose_detection.tflite``,
bundled with mediapipe 0.10.21) scores all 2254 anchors; this module runs it through mediapipe's
own calculators (tensor conversion, inference, SSD anchors, decoding, weighted NMS) with every
detection kept, and feeds it square tiles of several sizes, so small people are large enough
for it somewhere in the pyramid. Measured on composites of real people pasted on a real street
(docs/pose.md): the detector finds a face of 14 px in its input every time and one of 10 px
about half the time, so the finest tiles are sized for the smallest face asked for.

Each detection carries the detector's box (head and shoulders) and its four keypoints: hip
centre, a point on the full-body circle, shoulder centre and a point on the upper-body circle.
The full-body circle (centre hip, radius to the second point) is what mediapipe crops for its
landmark model; :attr:`Detection.body` is that circle's square, joined with the head box.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# Window = (x0, y0, x1, y1) integer pixels of the frame.
Window = tuple[int, int, int, int]

DETECTOR_INPUT = 224
RELIABLE_FACE = 14.0  # px in the detector input: found in every trial (9-10 px: about half)
SMALLEST_FACE = 8.0  # px in the frame; see finest_side
MAX_TILES = 120  # the whole pyramid's passes at most (81 at 1280x720, 62 at 768x576)
TILE_OVERLAP = 0.25  # neighbouring tiles share this fraction of their side, so no head is cut in all of them

_GRAPH = r"""
input_stream: "image"
output_stream: "detections"
node {
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input_tensors"
  output_stream: "LETTERBOX_PADDING:letterbox_padding"
  options: {
    [mediapipe.ImageToTensorCalculatorOptions.ext] {
      output_tensor_width: 224
      output_tensor_height: 224
      keep_aspect_ratio: true
      output_tensor_float_range { min: -1.0 max: 1.0 }
      border_mode: BORDER_ZERO
    }
  }
}
node {
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:detection_tensors"
  options: {
    [mediapipe.InferenceCalculatorOptions.ext] {
      model_path: "mediapipe/modules/pose_detection/pose_detection.tflite"
      delegate { xnnpack {} }
    }
  }
}
node {
  calculator: "SsdAnchorsCalculator"
  output_side_packet: "anchors"
  options: {
    [mediapipe.SsdAnchorsCalculatorOptions.ext] {
      num_layers: 5
      min_scale: 0.1484375
      max_scale: 0.75
      input_size_height: 224
      input_size_width: 224
      anchor_offset_x: 0.5
      anchor_offset_y: 0.5
      strides: 8
      strides: 16
      strides: 32
      strides: 32
      strides: 32
      aspect_ratios: 1.0
      fixed_anchor_size: true
    }
  }
}
node {
  calculator: "TensorsToDetectionsCalculator"
  input_stream: "TENSORS:detection_tensors"
  input_side_packet: "ANCHORS:anchors"
  output_stream: "DETECTIONS:unfiltered_detections"
  options: {
    [mediapipe.TensorsToDetectionsCalculatorOptions.ext] {
      num_classes: 1
      num_boxes: 2254
      num_coords: 12
      box_coord_offset: 0
      keypoint_coord_offset: 4
      num_keypoints: 4
      num_values_per_keypoint: 2
      sigmoid_score: true
      score_clipping_thresh: 100.0
      reverse_output_order: true
      x_scale: 224.0
      y_scale: 224.0
      h_scale: 224.0
      w_scale: 224.0
      min_score_thresh: MIN_SCORE
    }
  }
}
node {
  calculator: "NonMaxSuppressionCalculator"
  input_stream: "unfiltered_detections"
  output_stream: "filtered_detections"
  options: {
    [mediapipe.NonMaxSuppressionCalculatorOptions.ext] {
      min_suppression_threshold: 0.3
      overlap_type: INTERSECTION_OVER_UNION
      algorithm: WEIGHTED
    }
  }
}
node {
  calculator: "DetectionLetterboxRemovalCalculator"
  input_stream: "DETECTIONS:filtered_detections"
  input_stream: "LETTERBOX_PADDING:letterbox_padding"
  output_stream: "DETECTIONS:detections"
}
"""


@dataclass(eq=False)
class Detection:
    """One person found by the detector, in frame pixels."""

    head: np.ndarray  # (4,) x0, y0, x1, y1: the detector's box (head and shoulders)
    body: np.ndarray  # (4,) the full-body square (see module docstring), clipped to the frame
    score: float
    window: Window  # the tile it was found in
    hip: np.ndarray  # (2,) centre of the full-body circle
    edge: np.ndarray  # (2,) a point on that circle, above the hip for an upright person


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _axis_starts(length: int, side: int) -> list[int]:
    if side >= length:
        return [0]
    step = max(1, int(side * (1 - TILE_OVERLAP)))
    starts = list(range(0, length - side + 1, step))
    if starts[-1] + side < length:
        starts.append(length - side)
    return starts


def tiles(height: int, width: int, side: int) -> list[Window]:
    """Square ``side`` tiles covering the frame with ``TILE_OVERLAP``, the last ones flush with the border."""
    return [
        (x, y, min(x + side, width), min(y + side, height))
        for y in _axis_starts(height, side)
        for x in _axis_starts(width, side)
    ]


def finest_side(min_face: float) -> int:
    """The tile side at which a ``min_face`` px face is ``RELIABLE_FACE`` px in the detector's input.

    Faces under ``SMALLEST_FACE`` px are not looked for: the detector finds one of 8 px a quarter
    of the time, and the pose of such a person is a few pixels.
    """
    return int(DETECTOR_INPUT * max(min_face, SMALLEST_FACE) / RELIABLE_FACE)


def pyramid(height: int, width: int, min_face: float) -> list[list[Window]]:
    """Tile levels from the whole frame down to tiles where a ``min_face`` px face is reliably found.

    Level 0 is the whole frame (letterboxed by the detector); each next level's tiles are 1.6x
    smaller than the last, and the finest level is sized by :func:`finest_side`. Levels that would
    take the pyramid over ``MAX_TILES`` passes (a 4K frame, a panorama) are left out, finest first.
    """
    finest = finest_side(min_face)
    short = min(height, width)
    levels: list[list[Window]] = [[(0, 0, width, height)]]
    # A frame no wider than 4:3 is already about one square tile.
    side = int(short / 1.6) if 3 * max(height, width) <= 4 * short else short
    while side > 1.25 * finest:
        levels.append(tiles(height, width, side))
        side = int(side / 1.6)
    if finest < short:
        levels.append(tiles(height, width, finest))
    elif len(levels) == 1 and 3 * max(height, width) > 4 * short:
        levels.append(tiles(height, width, short))  # a panorama: at least squares of its height
    while len(levels) > 1 and sum(len(level) for level in levels) > MAX_TILES:
        levels.pop()  # a very wide or very large frame: the finest levels go first
    return levels


class PersonDetector:
    """BlazePose's person detector with every detection kept; ``detect`` takes a frame and its tiles."""

    def __init__(self, min_score: float = 0.6) -> None:
        import mediapipe as mp
        from google.protobuf import text_format
        from mediapipe.framework import calculator_pb2
        from mediapipe.python._framework_bindings import resource_util

        # mediapipe resolves model paths against this root, as its own solutions do.
        resource_util.set_resource_dir(os.path.dirname(os.path.dirname(mp.__file__)))
        config = text_format.Parse(
            _GRAPH.replace("MIN_SCORE", f"{min_score:.3f}"), calculator_pb2.CalculatorGraphConfig()
        )
        self._mp = mp
        self._graph = mp.CalculatorGraph(graph_config=config)
        self._results: dict[int, list] = {}
        self._graph.observe_output_stream("detections", self._collect)
        self._graph.start_run()
        self._time = 0
        self._pending: list[tuple[int, Window]] = []
        self._frame_size: tuple[int, int] = (0, 0)
        self.runs = 0  # detector passes so far (for the benchmark and the docs' cost figures)

    def _collect(self, stream: str, packet: object) -> None:
        self._results[packet.timestamp.value] = self._mp.packet_getter.get_proto_list(packet)  # type: ignore[attr-defined]

    def submit(self, frame: np.ndarray, windows: list[Window]) -> None:
        """Queue ``windows`` of the RGB ``frame``; the graph works on them while the caller goes on."""
        self._frame_size = frame.shape[:2]
        for x0, y0, x1, y1 in windows:
            self._time += 1
            view = np.ascontiguousarray(frame[y0:y1, x0:x1])
            image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=view)
            self._graph.add_packet_to_input_stream("image", self._mp.packet_creator.create_image(image).at(self._time))
            self._pending.append((self._time, (x0, y0, x1, y1)))
        self.runs += len(windows)

    def collect(self) -> list[Detection]:
        """Everyone found in the submitted windows, duplicates across tiles merged."""
        if not self._pending:
            return []
        self._graph.wait_until_idle()
        height, width = self._frame_size
        found = []
        for stamp, window in self._pending:
            for proto in self._results.pop(stamp, []):
                found.append(_to_frame(proto, window, width, height))
        self._pending = []
        return merge(found)

    def detect(self, frame: np.ndarray, windows: list[Window]) -> list[Detection]:
        """Everyone found in any of ``windows`` of the RGB ``frame``, duplicates across tiles merged."""
        self.submit(frame, windows)
        return self.collect()

    def close(self) -> None:
        if self._graph is not None:
            self._graph.close()
            self._graph = None


def _to_frame(proto: object, window: Window, width: int, height: int) -> Detection:
    x0, y0, x1, y1 = window
    ww, wh = x1 - x0, y1 - y0
    data = proto.location_data  # type: ignore[attr-defined]
    rel = data.relative_bounding_box
    head = np.array(
        [x0 + rel.xmin * ww, y0 + rel.ymin * wh, x0 + (rel.xmin + rel.width) * ww, y0 + (rel.ymin + rel.height) * wh],
        np.float32,
    )
    points = np.array([(x0 + k.x * ww, y0 + k.y * wh) for k in data.relative_keypoints], np.float32)
    hip, edge = points[0], points[1]
    radius = float(np.linalg.norm(edge - hip))
    body = np.array(
        [
            min(head[0], hip[0] - radius),
            min(head[1], hip[1] - radius),
            max(head[2], hip[0] + radius),
            max(head[3], hip[1] + radius),
        ],
        np.float32,
    )
    body = np.clip(body, 0, [width, height, width, height]).astype(np.float32)
    score = float(proto.score[0])  # type: ignore[attr-defined]
    return Detection(head=head, body=body, score=score, window=window, hip=hip, edge=edge)


def merge(found: list[Detection]) -> list[Detection]:
    """One detection per person: a head box near a better one (centres closer than 3/4 of the larger box) is dropped.

    The same head seen in two tiles of different sizes gives boxes that differ in size and
    shift, so overlap alone (IoU) does not catch every duplicate.
    """
    kept: list[Detection] = []
    for det in sorted(found, key=lambda d: -d.score):
        centre = (det.head[:2] + det.head[2:]) / 2
        if any(
            box_iou(det.head, k.head) > 0.3
            or np.linalg.norm(centre - (k.head[:2] + k.head[2:]) / 2)
            < 0.75 * max(det.head[2] - det.head[0], k.head[2] - k.head[0])
            for k in kept
        ):
            continue
        kept.append(det)
    return kept
