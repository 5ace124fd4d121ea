"""``wanimate eval``: what users judge an animation on, measured offline on the output video.

Motion and expression fidelity, identity, temporal quality and (with a ground truth) SSIM,
PSNR and FVD; one module per metric family, one pass over the frames (docs/eval.md).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EvalOptions", "compare", "evaluate"]


def __getattr__(name: str) -> Any:
    # Lazy: the metric modules pull in OpenCV, mediapipe and torch.
    if name in ("evaluate", "EvalOptions"):
        from wanimate.evaluate import pipeline

        return getattr(pipeline, name)
    if name == "compare":
        from wanimate.evaluate.compare import compare

        return compare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
