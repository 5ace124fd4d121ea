"""Replace-mode masks: segment the followed person, grow the mask, and blank them out of the background.

Replace mode generates only inside the mask and keeps the background outside it, so
the mask must cover the followed person (and some margin, which ``refine_mask`` adds
like the official code) but not bystanders. The default segmenter is MediaPipe's
selfie segmentation, which ships with the pinned mediapipe and runs offline; it finds
every person, so the followed person's keypoints (or box) pick the connected regions
that are theirs. SAM2, which the official pipeline uses, is used when installed and
given a checkpoint (``--sam2-checkpoint``, or the official ``process_checkpoint/sam2/``
under ``--models-dir``): it is prompted with the same keypoints and box.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import cv2
import numpy as np

from wanimate.errors import WanimateError
from wanimate.native_logs import quiet_native_logs

if TYPE_CHECKING:
    from wanimate.preprocess.settings import PreprocessSettings

SEED_POINTS = slice(0, 23)  # COCO body and feet: hands and face add no new regions
MIN_SEED_SHARE = 0.15  # a region needs this share of the seeds that hit the mask
CROP_MARGIN = 0.5  # segmentation sees the person's extent plus this fraction of its longer side on each side
BOX_MARGIN = 0.1  # the mask may extend this fraction of the box size beyond a given box
# Segmentation and region selection work on the crop subsampled to at most this many pixels a side:
# the model sees 256x256 whatever it is given, and the full-resolution mask it returns (then
# thresholded and labelled) cost more than the model itself at 720p; the chosen regions are
# scaled back up once.
SEGMENT_SIDE = 640
_SAM2_SIZES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l", "t": "t", "s": "s", "b+": "b+", "l": "l"}


class PersonSegmenter:
    """Per-frame mask of one person; ``backend`` is "auto", "mediapipe" or "sam2".

    "auto" uses SAM2 when the ``sam2`` package is importable and ``checkpoint`` is given,
    MediaPipe otherwise. ``model_selection`` picks MediaPipe's general (0) or landscape
    (1) model; see docs/preprocessing-geometry.md for why 0 is the default.
    """

    def __init__(
        self,
        backend: str = "auto",
        *,
        checkpoint: Path | None = None,
        model_selection: int = 0,
        threshold: float = 0.5,
        keypoint_threshold: float = 0.5,
    ) -> None:
        backend = segmenter_backend(backend, checkpoint)
        has_sam2 = importlib.util.find_spec("sam2") is not None
        self.backend = backend
        self.threshold = threshold
        self.keypoint_threshold = keypoint_threshold
        self._model: Any
        self._quiet = ExitStack()
        if backend == "sam2":
            self._model = _Sam2(checkpoint, has_sam2)
        else:
            from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation

            self._quiet = ExitStack()  # MediaPipe's native logs stay off the terminal while it is open
            self._quiet.enter_context(quiet_native_logs())
            self._model = SelfieSegmentation(model_selection=model_selection)

    def segment(self, frame: np.ndarray, keypoints: np.ndarray | None, box: np.ndarray | None) -> np.ndarray:
        """Boolean ``(H, W)`` mask of the person described by ``keypoints`` (133, 3) and/or ``box`` (x0, y0, x1, y1).

        With neither, every person found is kept.
        """
        seeds = _seed_points(keypoints, self.keypoint_threshold, frame.shape[:2])
        if self.backend == "sam2":
            return self._model.segment(frame, seeds, box)
        x0, y0, x1, y1 = person_region(frame.shape[:2], keypoints, box, self.keypoint_threshold)
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        step = max(1, -(-max(x1 - x0, y1 - y0) // SEGMENT_SIDE))
        if step > 1:
            small_size = (max(1, round((x1 - x0) / step)), max(1, round((y1 - y0) / step)))
            crop = cv2.resize(crop, small_size, interpolation=cv2.INTER_AREA)
        result = self._model.process(crop)
        if result.segmentation_mask is None:
            return np.zeros(frame.shape[:2], bool)
        scale = np.array([crop.shape[1] / (x1 - x0), crop.shape[0] / (y1 - y0)])
        corner = np.array([x0, y0], np.float64)
        local_box = None if box is None else ((np.asarray(box, np.float64).reshape(2, 2) - corner) * scale).ravel()
        small = result.segmentation_mask > self.threshold
        chosen = select_person(small, ((seeds - corner) * scale).astype(np.float32), local_box)
        mask = np.zeros(frame.shape[:2], bool)
        if step == 1:
            mask[y0:y1, x0:x1] = chosen
        else:
            full = cv2.resize(chosen.view(np.uint8), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            mask[y0:y1, x0:x1] = full > 0
        return mask if box is None else _inside_box(mask, box)

    def close(self) -> None:
        """Release the model; calling it again does nothing."""
        if self._model is not None:
            self._model.close()
            self._model = None
            self._quiet.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def segmenter_backend(backend: str, checkpoint: Path | None) -> str:
    """What ``backend`` means here: "auto" is SAM2 when the package imports and a checkpoint is given."""
    if backend not in ("auto", "mediapipe", "sam2"):
        raise WanimateError(f"Unknown segmentation backend {backend!r}: use auto, mediapipe or sam2.")
    if backend != "auto":
        return backend
    return "sam2" if checkpoint is not None and importlib.util.find_spec("sam2") is not None else "mediapipe"


def sam2_checkpoint(settings: PreprocessSettings) -> Path | None:
    """The SAM2 checkpoint to use: ``--sam2-checkpoint``, else the official one under ``--models-dir``.

    The official ``process_checkpoint`` folder keeps it at ``sam2/sam2_hiera_large.pt``; any
    ``sam2*_hiera_*.pt`` there is found (the largest name first: large, then base_plus, small, tiny).
    """
    if settings.sam2_checkpoint is not None:
        path = Path(settings.sam2_checkpoint).expanduser()
        if not path.is_file():
            raise WanimateError(f"--sam2-checkpoint {path} is not a file (e.g. sam2.1_hiera_large.pt)")
        return path
    if settings.models_dir is None:
        return None
    found = sorted(Path(settings.models_dir).expanduser().glob("sam2/sam2*_hiera_*.pt"), key=_sam2_size_rank)
    return found[0] if found else None


def _sam2_size_rank(path: Path) -> tuple[int, str]:
    order = ("large", "l.", "base_plus", "b+", "small", "s.", "tiny", "t.")
    name = path.name.split("_hiera_")[-1]
    return next((i for i, size in enumerate(order) if name.startswith(size)), len(order)), path.name


def person_region(
    shape: tuple[int, int], keypoints: np.ndarray | None, box: np.ndarray | None, threshold: float = 0.5
) -> tuple[int, int, int, int]:
    """Frame region ``(x0, y0, x1, y1)`` to segment: the person's box and points, grown by ``CROP_MARGIN``.

    MediaPipe squeezes its whole input into 256×256 (model 0), so a person filling a
    tenth of a 720p frame is lost; cropping to the person first keeps them large. The
    margin is generous because keypoints stop at the eyebrows and finger joints, well
    inside the silhouette. Without points or box, the whole frame.
    """
    height, width = shape
    corners = []
    if box is not None:
        corners.append(np.asarray(box, np.float64).reshape(2, 2))
    if keypoints is not None:
        ok = (keypoints[:, 2] >= threshold) & np.isfinite(keypoints[:, :2]).all(axis=1)
        if ok.any():
            corners.append(keypoints[ok, :2].astype(np.float64))
    if not corners:
        return 0, 0, width, height
    points = np.concatenate(corners)
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    grow = CROP_MARGIN * max(x1 - x0, y1 - y0, 16.0)
    return _box_pixels(np.array([x0 - grow, y0 - grow, x1 + grow, y1 + grow]), shape, 0.0)


def _seed_points(keypoints: np.ndarray | None, threshold: float, shape: tuple[int, int]) -> np.ndarray:
    """Confident body points inside the frame, ``(N, 2)`` float pixels."""
    if keypoints is None:
        return np.zeros((0, 2), np.float32)
    body = keypoints[SEED_POINTS]
    height, width = shape
    ok = (body[:, 2] >= threshold) & np.isfinite(body[:, :2]).all(axis=1)
    ok &= (body[:, 0] >= 0) & (body[:, 0] < width) & (body[:, 1] >= 0) & (body[:, 1] < height)
    return body[ok, :2].astype(np.float32)


def select_person(foreground: np.ndarray, seeds: np.ndarray, box: np.ndarray | None) -> np.ndarray:
    """Keep the connected regions of ``foreground`` that belong to the person at ``seeds``/``box``.

    A region is kept when at least ``MIN_SEED_SHARE`` of the seeds that land on the mask
    land on it (a stray wrist over a neighbour does not pull the neighbour in); a point a
    few pixels outside the mask counts for the region it is nearest to. Without seeds on
    the mask, the region overlapping ``box`` most is kept. A given box, grown by
    ``BOX_MARGIN``, also bounds the result, which separates people whose silhouettes touch.
    """
    fg = foreground.astype(np.uint8)
    count, labels = cv2.connectedComponents(fg, connectivity=8)
    if count <= 1:
        return np.zeros(fg.shape, bool)
    keep = np.zeros(count, bool)
    hits = _seed_labels(labels, seeds, max(min(fg.shape) // 100, 2))
    if hits.size:
        votes = np.bincount(hits, minlength=count)
        keep = votes >= max(1, MIN_SEED_SHARE * hits.size)
        keep[0] = False
    elif box is not None:
        x0, y0, x1, y1 = _box_pixels(box, fg.shape, 0.0)
        overlap = np.bincount(labels[y0:y1, x0:x1].ravel(), minlength=count)
        overlap[0] = 0
        if overlap.max() > 0:
            keep[int(np.argmax(overlap))] = True
    elif seeds.size == 0:
        keep[1:] = True
    if keep[1:].all():
        mask = fg > 0
    else:
        mask = np.zeros(fg.shape, bool)
        for label in np.flatnonzero(keep):  # at most one label per seed
            mask |= labels == label
    return mask if box is None else _inside_box(mask, box)


def _seed_labels(labels: np.ndarray, seeds: np.ndarray, radius: int) -> np.ndarray:
    """Region label under each seed, or the most common one within ``radius``; seeds off the mask are dropped."""
    found = []
    for x, y in seeds.astype(int):
        label = labels[y, x]
        if label == 0:
            window = labels[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
            near = window[window > 0]
            if near.size == 0:
                continue
            label = np.bincount(near).argmax()
        found.append(int(label))
    return np.array(found, np.int64)


def _inside_box(mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    """``mask`` with everything outside ``box`` grown by ``BOX_MARGIN`` cleared (a new array)."""
    x0, y0, x1, y1 = _box_pixels(box, mask.shape, BOX_MARGIN)
    bounded = np.zeros_like(mask)
    bounded[y0:y1, x0:x1] = mask[y0:y1, x0:x1]
    return bounded


def _box_pixels(box: np.ndarray, shape: tuple[int, ...], margin: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (float(v) for v in box)
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    height, width = shape[:2]
    return (
        int(np.clip(np.floor(x0 - mx), 0, width)),
        int(np.clip(np.floor(y0 - my), 0, height)),
        int(np.clip(np.ceil(x1 + mx), 0, width)),
        int(np.clip(np.ceil(y1 + my), 0, height)),
    )


class _Sam2:
    """SAM2 image predictor prompted with the person's body points and box, one frame at a time."""

    def __init__(self, checkpoint: Path | None, available: bool) -> None:
        if not available:
            raise WanimateError(
                "SAM2 masks need the `sam2` package (pip install sam2, which also needs torchvision) "
                "and a checkpoint such as sam2.1_hiera_large.pt; or use the mediapipe backend."
            )
        if checkpoint is None or not Path(checkpoint).is_file():
            raise WanimateError(f"SAM2 masks need a checkpoint file (e.g. sam2.1_hiera_large.pt); got {checkpoint}.")
        import torch
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self._device = "cuda" if torch.cuda.is_available() else "cpu"
        model = build_sam2(sam2_config_for(Path(checkpoint)), str(checkpoint), device=self._device)
        self._predictor = SAM2ImagePredictor(model)

    def segment(self, frame: np.ndarray, seeds: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        if seeds.size == 0 and box is None:
            return np.zeros(frame.shape[:2], bool)
        import torch

        with torch.inference_mode(), torch.autocast(self._device, torch.bfloat16, enabled=self._device == "cuda"):
            self._predictor.set_image(frame)
            masks, _, _ = self._predictor.predict(
                point_coords=seeds if seeds.size else None,
                point_labels=np.ones(len(seeds), np.int32) if seeds.size else None,
                box=None if box is None else np.asarray(box, np.float32),
                multimask_output=False,
            )
        return np.asarray(masks[0]) > 0.5

    def close(self) -> None:
        self._predictor = None


def sam2_config_for(checkpoint: Path) -> str:
    """The config SAM2 ships for a checkpoint named like Meta's releases (``sam2[.1]_hiera_<size>.pt``)."""
    match = re.search(r"(sam2(?:\.1)?)_hiera_(tiny|small|base_plus|large|t|s|b\+|l)", checkpoint.name)
    if match is None:
        raise WanimateError(
            f"Cannot tell the SAM2 model from {checkpoint.name}: keep Meta's file name (e.g. sam2.1_hiera_large.pt)."
        )
    version, size = match.group(1), _SAM2_SIZES[match.group(2)]
    return f"configs/{version}/{version}_hiera_{size}.yaml"


def refine_mask(mask: np.ndarray, *, iterations: int = 3, k: int = 7, w_len: int = 1, h_len: int = 1) -> np.ndarray:
    """Grow a person mask the official way: dilate, then fill its bounding box on a grid.

    Dilation uses a ``k``×``k`` square ``iterations`` times. The mask's bounding box is
    then cut into ``w_len``×``h_len`` cells and every cell the mask touches is filled:
    1×1 gives the whole rectangle, finer grids follow the outline. ``w_len`` or ``h_len``
    of 0 skips the grid. Unlike the official code, an empty mask stays empty, a box smaller
    than the grid uses one-pixel cells, and the bounding box's last row and column are
    included.
    """
    out = (np.asarray(mask) > 0).astype(np.uint8)
    if iterations > 0 and k > 0:
        out = cv2.dilate(out, np.ones((k, k), np.uint8), iterations=iterations)
    if not out.any() or w_len <= 0 or h_len <= 0:
        return out.astype(bool)
    box_x, box_y, box_w, box_h = cv2.boundingRect(out)
    x_edges = _grid_edges(box_x, box_x + box_w, w_len)
    y_edges = _grid_edges(box_y, box_y + box_h, h_len)
    filled = out.copy()
    for top, bottom in itertools.pairwise(y_edges):
        for left, right in itertools.pairwise(x_edges):
            if out[top:bottom, left:right].any():
                filled[top:bottom, left:right] = 1
    return filled.astype(bool)


def _grid_edges(start: int, stop: int, cells: int) -> np.ndarray:
    return np.unique(np.linspace(start, stop, min(cells, stop - start) + 1).round().astype(int))


def background(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The frame with the masked person blacked out: ``frame * (1 - mask)``."""
    keep = (~np.asarray(mask, bool)).view(np.uint8)
    return cv2.bitwise_and(frame, frame, mask=keep)
