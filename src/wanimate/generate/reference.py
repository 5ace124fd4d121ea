"""The same generation through plain ``diffusers.WanAnimatePipeline.__call__``.

It is the yardstick twice over: the parity tests check the engine against it, and
``wanimate bench generate`` times it as the baseline. Both must feed it exactly what
the engine reads from a materials folder, so the conversion lives here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image

from wanimate.generate.settings import GenerateSettings
from wanimate.materials import Materials
from wanimate.materials.layout import MASK_THRESHOLD
from wanimate.video import iter_frames


def _frames(materials: Materials, name: str) -> list[Image.Image]:
    frames = iter_frames(materials.path(name))
    if name == "mask":  # the engine thresholds masks on read; so must the baseline
        return [Image.fromarray(np.where(f >= MASK_THRESHOLD, 255, 0).astype(np.uint8)) for f in frames]
    return [Image.fromarray(f) for f in frames]


def run_reference_pipeline(
    pipe: Any,
    materials: Materials,
    settings: GenerateSettings,
    *,
    on_step: Callable[[Any, int, Any, dict], dict] | None = None,
) -> np.ndarray:
    """Frames ``(N, H, W, 3)`` in [0, 1] from the diffusers pipeline, seeded like the engine."""
    mode = materials.mode
    replace = mode == "replace"
    with Image.open(materials.path("ref")) as ref:
        image = ref.convert("RGB")
    pipe.set_progress_bar_config(disable=True)
    result = pipe(
        image=image,
        pose_video=_frames(materials, "pose"),
        face_video=_frames(materials, "face"),
        background_video=_frames(materials, "bg") if replace else None,
        mask_video=_frames(materials, "mask") if replace else None,
        prompt=settings.prompt,
        negative_prompt=settings.negative_prompt,
        height=materials.height,
        width=materials.width,
        segment_frame_length=settings.segment_frames,
        num_inference_steps=settings.steps,
        mode=mode,
        prev_segment_conditioning_frames=settings.overlap,
        guidance_scale=settings.guidance,
        generator=torch.Generator("cpu").manual_seed(settings.seed),
        output_type="np",
        callback_on_step_end=on_step,
    )
    return result.frames[0]
