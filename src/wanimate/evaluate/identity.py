"""Identity: does the output's character still look like the character image?

The face embedding is dlib's ResNet face-recognition model (128-d, 99.38 % on LFW), whose
weights ship on PyPI in ``face-recognition-models`` and run on a CPU through ``dlib-bin``
(prebuilt wheels). It was chosen because it is the one packaged, offline, well-documented
face embedding with a published decision threshold: two faces closer than 0.6 are the same
person. InsightFace, FaceNet and DeepFace all download their weights at run time.

Faces are located with dlib's HOG detector inside a window around the face the pose
estimator found, so the embedding follows the character rather than anyone else in the
frame. When the character image shows no usable face (a cartoon, a back view), identity
falls back to *appearance*: the correlation of hue-saturation histograms of the person's
region, the measure the preview's colour check uses.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from wanimate.errors import WanimateError
from wanimate.evaluate.colour import colour_correlation
from wanimate.preprocess import keypoints as K

SAME_PERSON = 0.6  # dlib's documented threshold on the Euclidean distance of two embeddings
IdentityMethod = Literal["auto", "face", "appearance"]
_INSTALL = "pip install 'wanimate[eval]' (dlib-bin and face-recognition-models)"


def _model_file(name: str) -> str:
    # Importing face_recognition_models needs pkg_resources; its files are all we need.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WanimateError(f"the face identity metric needs dlib's face models: {_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise WanimateError(f"{path} is missing; reinstall face-recognition-models")
    return str(path)


class FaceEmbedder:
    """dlib HOG face detector + 5-point alignment + ResNet embedding."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise WanimateError(f"the face identity metric needs dlib: {_INSTALL}") from exc
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(_model_file("shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(_model_file("dlib_face_recognition_resnet_model_v1.dat"))

    def embed(self, image: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
        """The embedding of the largest face (inside ``near``, a box x0, y0, x1, y1, grown 2x), or None."""
        x0 = y0 = 0
        view = image
        if near is not None:
            cx, cy = (near[0] + near[2]) / 2, (near[1] + near[3]) / 2
            half = max(near[2] - near[0], near[3] - near[1], 16)
            h, w = image.shape[:2]
            x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
            x1, y1 = int(min(cx + half, w)), int(min(cy + half, h))
            if x1 - x0 < 16 or y1 - y0 < 16:
                return None
            view = np.ascontiguousarray(image[y0:y1, x0:x1])
        upsample = 1 if max(view.shape[:2]) < 400 else 0
        faces = self._detector(view, upsample)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.width() * r.height())
        rect = self._dlib.rectangle(face.left() + x0, face.top() + y0, face.right() + x0, face.bottom() + y0)
        shape = self._shape(image, rect)
        return np.array(self._net.compute_face_descriptor(image, shape), np.float64)


def face_box(kp: np.ndarray | None) -> np.ndarray | None:
    if kp is None:
        return None
    pts = kp[K.FACE][kp[K.FACE, 2] >= 0.5, :2]
    if len(pts) < 10:
        pts = kp[:5][kp[:5, 2] >= 0.5, :2]
        if len(pts) < 3:
            return None
    return np.array([*pts.min(0), *pts.max(0)], np.float64)


def person_mask(shape: tuple[int, ...], kp: np.ndarray | None) -> np.ndarray:
    """The person's region: the box around their confident points, grown by 10 %; everything without points."""
    mask = np.zeros(shape[:2], bool)
    if kp is None or (kp[:, 2] >= 0.3).sum() < 3:
        mask[:] = True
        return mask
    pts = kp[kp[:, 2] >= 0.3, :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    gx, gy = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    h, w = shape[:2]
    mask[int(max(y0 - gy, 0)) : int(min(y1 + gy, h)), int(max(x0 - gx, 0)) : int(min(x1 + gx, w))] = True
    return mask


@dataclass
class Identity:
    """Face distance (or appearance correlation) to the character image, every ``every`` frames."""

    reference: np.ndarray
    reference_pose: np.ndarray | None
    method: IdentityMethod = "auto"
    every: int = 1
    frames: list[int] = field(default_factory=list)
    distance: list[float | None] = field(default_factory=list)
    appearance: list[float] = field(default_factory=list)
    _embedder: Any = None
    _reference_embedding: np.ndarray | None = None
    used: str = "appearance"
    note: str | None = None

    def __post_init__(self) -> None:
        self._reference_mask = person_mask(self.reference.shape, self.reference_pose)
        if self.method == "appearance":
            return
        self._embedder = FaceEmbedder()
        self._reference_embedding = self._embedder.embed(self.reference, face_box(self.reference_pose))
        if self._reference_embedding is None:
            self._reference_embedding = self._embedder.embed(self.reference)
        if self._reference_embedding is not None:
            self.used = "face"
        elif self.method == "face":
            raise WanimateError(
                "no face found in the character image; use --identity appearance, or a character image "
                "where the face is seen from the front"
            )
        else:
            self.note = "no face found in the character image: identity is measured by appearance only"

    def add(self, index: int, frame: np.ndarray, found: np.ndarray | None) -> None:
        if index % self.every:
            return
        self.frames.append(index)
        self.appearance.append(
            colour_correlation(self.reference, self._reference_mask, frame, person_mask(frame.shape, found))
        )
        if self.used != "face":
            return
        assert self._embedder is not None and self._reference_embedding is not None
        box = face_box(found)
        embedding = self._embedder.embed(frame, box) if box is not None else None
        distance = None if embedding is None else float(np.linalg.norm(embedding - self._reference_embedding))
        self.distance.append(distance)

    def result(self) -> dict:
        summary: dict[str, Any] = {"method": self.used, "samples": len(self.frames)}
        app = np.array(self.appearance) if self.appearance else np.zeros(0)
        summary["appearance_mean"] = float(app.mean()) if app.size else None
        drops: list[int] = []
        if self.used == "face":
            known = [(f, d) for f, d in zip(self.frames, self.distance, strict=True) if d is not None]
            dist = np.array([d for _, d in known])
            summary["face_distance_mean"] = float(dist.mean()) if dist.size else None
            summary["face_distance_max"] = float(dist.max()) if dist.size else None
            summary["same_person_share"] = float((dist < SAME_PERSON).mean()) if dist.size else None
            summary["face_not_found_samples"] = len(self.frames) - len(known)
            drops = [f for f, d in known if d >= SAME_PERSON]
        summary["drop_frames"] = len(drops)
        return {
            "summary": summary,
            "frames": self.frames,
            "face_distance": [None if d is None else round(d, 5) for d in self.distance],
            "appearance": [round(a, 5) for a in self.appearance],
            "drop_frames": drops,
            "threshold": SAME_PERSON,
            "note": self.note,
        }
