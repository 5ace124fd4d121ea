"""What an evaluation compares the output with, gathered and checked before any frame is read.

Two ways in. ``--materials DIR`` is exact: ``keypoints.npz`` holds the skeleton the model was
given, already in output pixels (retargeted in animate mode), and the driver's face landmarks.
``--video DRIVER --image CHARACTER`` works for any output (the official code's, another
tool's): the driver's pose is estimated during the pass and fitted into the output frame the
way an unretargeted skeleton is (scaled to fit, centred), which is an approximation of what
the model was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from wanimate.errors import WanimateError
from wanimate.materials import load_materials
from wanimate.materials.layout import KEYPOINTS_NAME
from wanimate.video import probe_video


@dataclass
class EvalInputs:
    output: Path
    num_frames: int
    fps: float
    width: int
    height: int
    character: np.ndarray  # RGB uint8
    given: np.ndarray | None = None  # (N, 133, 3) skeleton given to the model, output pixels
    driver_video: Path | None = None  # pose estimated during the pass when ``given`` is None
    driver_size: tuple[int, int] = (0, 0)  # (H, W) of the frames the driver's keypoints live in
    ground_truth: Path | None = None
    boundaries: list[int] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


def read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise WanimateError(f"character image not found: {path}") from None
    except Exception as exc:
        raise WanimateError(f"{path} is not a readable image ({exc})") from exc


def plan_boundaries(num_frames: int, segment_frames: int, overlap: int) -> list[int]:
    """First output frame of every segment after the first (segment k keeps frames from k(L-r)+r)."""
    if segment_frames <= overlap:
        raise WanimateError(f"--segment-frames ({segment_frames}) must exceed --overlap ({overlap})")
    step = segment_frames - overlap
    return [b for b in range(segment_frames, num_frames, step)]


def work_boundaries(work_dir: Path) -> list[int]:
    """Boundaries from a generation work folder: the frame count of each saved segment."""
    from safetensors import safe_open

    files = sorted((work_dir / "segments").glob("*.safetensors"))
    if not files:
        raise WanimateError(f"{work_dir} holds no saved segments (run generate with --keep-work)")
    edges, total = [], 0
    for path in files:
        with safe_open(str(path), "pt") as handle:
            total += handle.get_slice("frames").get_shape()[0]
        edges.append(total)
    return edges[:-1]


def fitted_pose(kp: np.ndarray, source: tuple[int, int], target: tuple[int, int]) -> np.ndarray:
    """Keypoints of a ``source`` (H, W) frame scaled to fit and centred in a ``target`` frame."""
    (sh, sw), (th, tw) = source, target
    scale = min(tw / sw, th / sh)
    out = kp.copy()
    out[..., 0] = kp[..., 0] * scale + (tw - sw * scale) / 2
    out[..., 1] = kp[..., 1] * scale + (th - sh * scale) / 2
    return out


def gather_inputs(
    output: Path,
    *,
    materials: Path | None = None,
    video: Path | None = None,
    image: Path | None = None,
    ground_truth: Path | None = None,
    segment_frames: int | None = None,
    overlap: int = 1,
    work_dir: Path | None = None,
) -> EvalInputs:
    """Check every input and the lengths agree; each problem is one line that says what to fix."""
    info = probe_video(output)
    n = info.num_frames
    inputs = EvalInputs(output, n, info.fps, info.width, info.height, np.zeros((1, 1, 3), np.uint8))
    if materials is not None:
        if video is not None:
            raise WanimateError("give either --materials or --video/--image, not both")
        mats = load_materials(materials)
        if mats.num_frames != n:
            raise WanimateError(
                f"{output.name} has {n} frames but the materials in {materials} have {mats.num_frames}: "
                "evaluate the video generated from these materials (different lengths)"
            )
        if (mats.width, mats.height) != (info.width, info.height):
            raise WanimateError(
                f"{output.name} is {info.width}x{info.height} but the materials are {mats.width}x{mats.height}"
            )
        path = mats.root / KEYPOINTS_NAME
        if not path.is_file():
            raise WanimateError(
                f"{path} is missing (official materials have none): use --video DRIVER --image CHARACTER instead"
            )
        with np.load(path) as data:
            inputs.given = data["driving"].astype(np.float32)
        inputs.driver_size = inputs.size
        inputs.character = read_image(image or mats.path("ref"))
        inputs.sources = {"skeleton": f"{path} (what the model was given)", "character": str(image or mats.path("ref"))}
    else:
        if video is None or image is None:
            raise WanimateError("give --materials DIR, or both --video DRIVER and --image CHARACTER")
        count = probe_video(video).frame_count(info.fps)
        if count != n:
            raise WanimateError(
                f"{output.name} has {n} frames but {video.name} gives {count} at {info.fps:.3f} fps "
                "(different lengths): give the driving video this output was made from"
            )
        dinfo = probe_video(video)
        inputs.driver_video = video
        inputs.driver_size = (dinfo.height, dinfo.width)
        inputs.character = read_image(image)
        inputs.sources = {"skeleton": f"{video} (estimated, fitted to the output frame)", "character": str(image)}
    if ground_truth is not None:
        count = probe_video(ground_truth).frame_count(info.fps)
        if count != n:
            raise WanimateError(
                f"{output.name} has {n} frames but the ground truth {ground_truth.name} gives {count} "
                f"at {info.fps:.3f} fps (different lengths)"
            )
        inputs.ground_truth = ground_truth
    if segment_frames is not None:
        inputs.boundaries = plan_boundaries(n, segment_frames, overlap)
        inputs.sources["segments"] = f"--segment-frames {segment_frames} --overlap {overlap}"
    elif work_dir is not None:
        inputs.boundaries = work_boundaries(work_dir)
        inputs.sources["segments"] = str(work_dir)
    return inputs
