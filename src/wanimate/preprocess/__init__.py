"""Preprocessing: a character image and a driving video become a materials folder."""

from __future__ import annotations

from typing import Any

__all__ = ["preprocess"]


def __getattr__(name: str) -> Any:
    # Lazy, so importing a light submodule (keypoints, sizing) does not pull in OpenCV and PyAV.
    if name == "preprocess":
        from wanimate.preprocess.pipeline import preprocess

        return preprocess
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
