"""``evaluate``: one pass over an output video feeds every metric family, then the report is written.

Frames are streamed (an output can be minutes long): the output, the ground truth and the
driving video are read in lockstep, each frame's character pose is estimated once and shared
by motion, expression and identity, and only a handful of frames are kept for the contact sheet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from wanimate.evaluate.expression import ExpressionFidelity
from wanimate.evaluate.identity import Identity, IdentityMethod
from wanimate.evaluate.inputs import EvalInputs, fitted_pose, gather_inputs
from wanimate.evaluate.motion import MotionFidelity
from wanimate.evaluate.posetrack import CharacterPoses, still_pose
from wanimate.evaluate.reference import ReferenceMetrics
from wanimate.evaluate.temporal import Temporal
from wanimate.video import iter_frames

FORMAT = "wanimate-eval"
FORMAT_VERSION = 1
CONTACT_FRAMES = 8
CONTACT_HEIGHT = 180
IDENTITY_SAMPLES_PER_SECOND = 5

Progress = Callable[[int, int], None]


@dataclass
class Evaluation:
    """The report (JSON-ready) and the contact-sheet tiles the page embeds: (frame index, RGB tile)."""

    report: dict
    tiles: list[tuple[int, np.ndarray]]


@dataclass(frozen=True)
class EvalOptions:
    identity: IdentityMethod = "auto"
    fvd: bool = True
    pose_backend: str = "mediapipe"


def _resized(frames: Iterator[np.ndarray], size: tuple[int, int]) -> Iterator[np.ndarray]:
    height, width = size
    for frame in frames:
        if frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        yield frame


def _contact_tile(frame: np.ndarray, given: np.ndarray | None, found: np.ndarray | None) -> np.ndarray:
    """A small copy of the frame with the given (green) and re-estimated (red) body points."""
    scale = CONTACT_HEIGHT / frame.shape[0]
    tile = cv2.resize(frame, (max(round(frame.shape[1] * scale), 1), CONTACT_HEIGHT), interpolation=cv2.INTER_AREA)
    for kp, colour in ((given, (0, 255, 0)), (found, (255, 40, 40))):
        if kp is None:
            continue
        for x, y, s in kp[:23]:
            if s >= 0.5:
                cv2.circle(tile, (round(x * scale), round(y * scale)), 2, colour, -1, cv2.LINE_AA)
    return tile


def evaluate_inputs(
    inputs: EvalInputs, options: EvalOptions = EvalOptions(), progress: Progress | None = None
) -> Evaluation:
    """Run every metric over ``inputs`` in one pass over the frames."""
    started = time.monotonic()
    n = inputs.num_frames
    poses = CharacterPoses(options.pose_backend)
    driver_poses = CharacterPoses(options.pose_backend) if inputs.given is None else None
    motion = MotionFidelity()
    expression = ExpressionFidelity(inputs.size, inputs.driver_size)
    identity = Identity(
        inputs.character,
        still_pose(inputs.character, options.pose_backend),
        method=options.identity,
        every=max(1, round(inputs.fps / IDENTITY_SAMPLES_PER_SECOND)),
    )
    temporal = Temporal(inputs.fps, boundaries=list(inputs.boundaries))
    reference = ReferenceMetrics(with_fvd=options.fvd) if inputs.ground_truth is not None else None
    contact_at = set(np.linspace(0, n - 1, min(CONTACT_FRAMES, n)).round().astype(int).tolist())
    tiles: list[tuple[int, np.ndarray]] = []

    outputs = iter_frames(inputs.output)
    truths = _resized(iter_frames(inputs.ground_truth, fps=inputs.fps), inputs.size) if inputs.ground_truth else None
    drivers = iter_frames(inputs.driver_video, fps=inputs.fps) if inputs.driver_video else None
    try:
        for index, frame in enumerate(outputs):
            driver_kp = None
            if inputs.given is not None:
                given = inputs.given[index]
                driver_kp = given
            else:
                assert drivers is not None and driver_poses is not None
                driver_kp = driver_poses(next(drivers))
                given = fitted_pose(driver_kp, inputs.driver_size, inputs.size) if driver_kp is not None else None
            found = poses(frame, given)
            motion.add(index, found, given if given is not None else np.zeros((133, 3), np.float32))
            expression.add(found, driver_kp)
            identity.add(index, frame, found)
            temporal.add(frame)
            if reference is not None and truths is not None:
                reference.add(frame, next(truths))
            if index in contact_at:
                tiles.append((index, _contact_tile(frame, given, found)))
            if progress is not None:
                progress(index + 1, n)
    finally:
        poses.close()
        if driver_poses is not None:
            driver_poses.close()
    report: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool": _tool(),
        "inputs": {
            "output": str(inputs.output),
            "frames": n,
            "fps": inputs.fps,
            "width": inputs.width,
            "height": inputs.height,
            "ground_truth": str(inputs.ground_truth) if inputs.ground_truth else None,
            "segment_boundaries": inputs.boundaries,
            **inputs.sources,
        },
        "motion": motion.result(),
        "expression": expression.result(),
        "identity": identity.result(),
        "temporal": temporal.result(),
    }
    if reference is not None:
        report["reference"] = reference.result()
    report["summary"] = summarise(report)
    report["contact_frames"] = [i for i, _ in tiles]
    report["seconds"] = round(time.monotonic() - started, 2)
    return Evaluation(report, tiles)


FAMILIES = ("motion", "expression", "identity", "temporal", "reference")


def summarise(report: dict) -> dict:
    """One flat ``family.metric`` table: what the comparison page lines up side by side."""
    out = {}
    for family in FAMILIES:
        for key, value in report.get(family, {}).get("summary", {}).items():
            out[f"{family}.{key}"] = value
    return out


def _tool() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"wanimate {version('wanimate')}"
    except PackageNotFoundError:
        return "wanimate"


def evaluate(
    output: str | Path,
    *,
    materials: str | Path | None = None,
    video: str | Path | None = None,
    image: str | Path | None = None,
    ground_truth: str | Path | None = None,
    segment_frames: int | None = None,
    overlap: int = 1,
    work_dir: str | Path | None = None,
    options: EvalOptions = EvalOptions(),
    progress: Progress | None = None,
) -> Evaluation:
    """Evaluate one output video; see docs/eval.md for the report's fields."""
    output = Path(output)
    if work_dir is None and segment_frames is None:
        from wanimate.workdir import default_work_dir

        candidate = default_work_dir(output)
        work_dir = candidate if (candidate / "segments").is_dir() else None
    inputs = gather_inputs(
        output,
        materials=Path(materials) if materials else None,
        video=Path(video) if video else None,
        image=Path(image) if image else None,
        ground_truth=Path(ground_truth) if ground_truth else None,
        segment_frames=segment_frames,
        overlap=overlap,
        work_dir=Path(work_dir) if work_dir else None,
    )
    return evaluate_inputs(inputs, options, progress)
