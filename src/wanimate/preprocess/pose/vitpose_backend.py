"""The official detector + pose models: YOLOv10m then ViTPose-H whole-body, through onnxruntime.

Pre- and post-processing follow the official ``pose2d.py`` / ``pose2d_utils.py`` (detector: plain
resize to 640x640, /255, confidence 0.05, NMS IoU 0.5, class 0; ViTPose: 256x192 crop of the box
grown 1.25x at the model's aspect ratio, ImageNet normalisation, DARK decoding) with two of its
problems left out: frames go in as RGB to both models (the official code swaps channels once
more before ViTPose, feeding it BGR), and every person is returned rather than only the largest
box, so the tracker can choose and follow one. When nobody is detected the official code runs
ViTPose on the whole frame; here the frame simply has no people.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from wanimate.errors import WanimateError
from wanimate.models.hub import DEFAULT_REPO
from wanimate.preprocess.pose.base import PersonPose, check_frame, drop_outside

DET_PATH = Path("det") / "yolov10m.onnx"
POSE_PATH = Path("pose2d") / "vitpose_h_wholebody.onnx"
DOWNLOAD_HINT = f'huggingface-cli download {DEFAULT_REPO} --include "process_checkpoint/*" --local-dir DIR'
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def find_models(models_dir: Path | None) -> tuple[Path, Path]:
    """The detector and pose ONNX files under ``process_checkpoint`` (or a folder holding it)."""
    if models_dir is None:
        raise WanimateError(
            "the vitpose backend needs the official process_checkpoint folder: pass --models-dir, "
            f"after {DOWNLOAD_HINT}"
        )
    root = Path(models_dir)
    if (root / "process_checkpoint").is_dir():
        root = root / "process_checkpoint"
    det, pose = root / DET_PATH, root / POSE_PATH
    if pose.is_dir():  # mmdeploy exports are a folder holding end2end.onnx
        pose = pose / "end2end.onnx"
    missing = [str(p) for p in (det, pose) if not p.is_file()]
    if missing:
        raise WanimateError(f"pose models not found: {', '.join(missing)}; get them with {DOWNLOAD_HINT}")
    return det, pose


def _session(path: Path, device: str) -> Any:
    import onnxruntime as ort

    providers: list = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        index = device.split(":", 1)[1] if ":" in device else "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
    return ort.InferenceSession(str(path), providers=providers)


def _static_hw(shape: list, default: tuple[int, int]) -> tuple[int, int]:
    h, w = shape[2:4]
    return (h, w) if isinstance(h, int) and isinstance(w, int) else default


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression over x0, y0, x1, y1 boxes; indices by falling score."""
    order = list(np.argsort(-scores, kind="stable"))
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = np.array(order, np.int64)
        if not len(rest):
            break
        ix = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = ix * iy
        overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = [int(j) for j, o in zip(rest, overlap, strict=True) if o <= iou]
    return keep


def decode_detections(
    output: np.ndarray, frame_hw: tuple[int, int], input_hw: tuple[int, int], conf: float, iou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes (x0, y0, x1, y1 in frame pixels) and scores from a YOLO output.

    Accepts both layouts the official code handles: YOLOv10's ``(1, N, 6)`` rows of
    x0, y0, x1, y1, score, class, and the YOLOv8-style ``(1, 84, N)`` centre/size + 80 class scores.
    """
    rows = np.squeeze(np.asarray(output, np.float32), 0)
    if rows.shape[-1] == 6:
        boxes, scores, classes = rows[:, :4].copy(), rows[:, 4], rows[:, 5]
    else:
        rows = rows.T if rows.shape[0] == 84 else rows
        cx, cy, bw, bh = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        scores, classes = rows[:, 4:].max(1), rows[:, 4:].argmax(1)
    ok = (scores >= conf) & (np.round(classes) == 0)
    boxes, scores = boxes[ok], scores[ok]
    boxes[:, [0, 2]] *= frame_hw[1] / input_hw[1]
    boxes[:, [1, 3]] *= frame_hw[0] / input_hw[0]
    keep = nms(boxes, scores, iou)
    return boxes[keep], scores[keep]


def box_center_scale(box: np.ndarray, input_hw: tuple[int, int], rescale: float = 1.25) -> tuple:
    """Centre and size (pixels, w, h) of the crop: the box at the model's aspect ratio, grown."""
    aspect = input_hw[0] / input_hw[1]
    center = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2], np.float64)
    side = max((box[2] - box[0]) * aspect, box[3] - box[1])
    return center, np.array([side / aspect, side], np.float64) * rescale


def crop_person(frame: np.ndarray, center: np.ndarray, size: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """The official crop: the rounded pixel window, zero outside the frame, resized to the input."""
    x0, y0 = np.round(center - size / 2).astype(int)
    x1, y1 = np.round(center + size / 2).astype(int)
    h, w = frame.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return cv2.resize(out, (input_hw[1], input_hw[0]))


def pose_input(
    frame: np.ndarray, box: np.ndarray, input_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ViTPose's CHW float32 input for one RGB frame and box, with the crop's centre and size."""
    center, size = box_center_scale(box, input_hw)
    crop = crop_person(frame, center, size, input_hw)
    blob = ((crop / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).astype(np.float32)
    return blob, center, size


def _blur_like_dark(heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """Gaussian modulation from DARK: blur with zero padding, keep each map's maximum."""
    border = (kernel - 1) // 2
    out = np.empty_like(heatmaps)
    for n, k in np.ndindex(heatmaps.shape[:2]):
        hm = heatmaps[n, k]
        padded = cv2.copyMakeBorder(hm, border, border, border, border, cv2.BORDER_CONSTANT, value=0)
        blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
        peak = blurred.max()
        out[n, k] = blurred * (hm.max() / peak) if peak > 0 else blurred
    return out


def decode_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel peaks (N, K, 2) in heatmap pixels and their values (N, K), by DARK decoding.

    The argmax is refined by one Newton step on the log of the Gaussian-modulated heatmap
    (Zhang et al., CVPR 2020); peaks too close to the border keep their integer position.
    """
    heatmaps = np.asarray(heatmaps, np.float32)
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(-1)
    maxvals = flat.max(-1)
    px, py = (idx % w).astype(np.int64), (idx // w).astype(np.int64)
    coords = np.stack([px, py], -1).astype(np.float64)
    logs = np.log(np.maximum(_blur_like_dark(heatmaps), 1e-10)).astype(np.float64)
    inner = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    ni, ki = np.nonzero(inner)
    x, y = px[ni, ki], py[ni, ki]

    def at(dy: int, dx: int) -> np.ndarray:
        return logs[ni, ki, y + dy, x + dx]

    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * at(0, 0) + at(0, -2))
    dyy = 0.25 * (at(2, 0) - 2 * at(0, 0) + at(-2, 0))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    ok = det != 0
    safe = np.where(ok, det, 1.0)
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + dxx * dy) / safe
    coords[ni[ok], ki[ok], 0] += off_x[ok]
    coords[ni[ok], ki[ok], 1] += off_y[ok]
    coords[maxvals <= 0] = -1
    return coords, maxvals


class VitPoseBackend:
    """YOLOv10m person boxes, then ViTPose-H whole-body keypoints for each box."""

    name = "vitpose"

    def __init__(
        self,
        models_dir: Path | None,
        *,
        device: str = "cpu",
        det_conf: float = 0.05,
        det_iou: float = 0.5,
        extra_person_conf: float = 0.3,
        max_people: int = 8,
    ) -> None:
        det_path, pose_path = find_models(models_dir)
        self._det = _session(det_path, device)
        self._pose = _session(pose_path, device)
        det_in, pose_in = self._det.get_inputs()[0], self._pose.get_inputs()[0]
        self._det_hw = _static_hw(det_in.shape, (640, 640))
        self._pose_hw = _static_hw(pose_in.shape, (256, 192))
        self._pose_batch_fixed = isinstance(pose_in.shape[0], int)
        self.det_conf, self.det_iou = det_conf, det_iou
        self.extra_person_conf, self.max_people = extra_person_conf, max_people

    def person_boxes(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boxes worth a pose: the largest (as the official picks) plus confident others.

        The official 0.05 threshold keeps the main performer even when the detector hesitates,
        but at that level it also returns clutter; other people must pass ``extra_person_conf``
        and be at least a tenth of the main box's area (the official multi-person rule).
        """
        image = cv2.resize(frame, (self._det_hw[1], self._det_hw[0])).astype(np.float32) / 255.0
        blob = image.transpose(2, 0, 1)[None]
        out = self._det.run(None, {self._det.get_inputs()[0].name: blob})[0]
        boxes, scores = decode_detections(out, frame.shape[:2], self._det_hw, self.det_conf, self.det_iou)
        # the official code swaps boxes under 10 px for the whole frame; such a box is no usable person
        usable = (boxes[:, 2] - boxes[:, 0] >= 10) & (boxes[:, 3] - boxes[:, 1] >= 10)
        boxes, scores = boxes[usable], scores[usable]
        if not len(boxes):
            return boxes, scores
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        main = int(area.argmax())
        keep = [main] + [
            i
            for i in np.argsort(-scores)
            if i != main and scores[i] >= self.extra_person_conf and area[i] >= 0.1 * area[main]
        ]
        keep = keep[: self.max_people]
        return boxes[keep], scores[keep]

    def detect(self, frame: np.ndarray) -> list[PersonPose]:
        frame = check_frame(frame)
        h, w = frame.shape[:2]
        boxes, scores = self.person_boxes(frame)
        if not len(boxes):
            return []
        crops, frames = [], []
        for box in boxes:
            blob, center, size = pose_input(frame, box, self._pose_hw)
            crops.append(blob)
            frames.append((center, size))
        name = self._pose.get_inputs()[0].name
        if self._pose_batch_fixed:
            heatmaps = np.concatenate([self._pose.run(None, {name: c[None]})[0] for c in crops])
        else:
            heatmaps = self._pose.run(None, {name: np.stack(crops)})[0]
        coords, maxvals = decode_heatmaps(heatmaps)
        hm_h, hm_w = heatmaps.shape[2:]
        people = []
        for i, (center, size) in enumerate(frames):
            kp = np.zeros((coords.shape[1], 3), np.float32)
            kp[:, 0] = coords[i, :, 0] * size[0] / hm_w + center[0] - size[0] / 2
            kp[:, 1] = coords[i, :, 1] * size[1] / hm_h + center[1] - size[1] / 2
            kp[:, 2] = np.clip(maxvals[i], 0, None)
            kp[coords[i, :, 0] < 0] = 0
            people.append(PersonPose(drop_outside(kp, w, h), boxes[i], float(scores[i])))
        return people

    def close(self) -> None:
        self._det = self._pose = None  # onnxruntime frees a session when it is dropped
