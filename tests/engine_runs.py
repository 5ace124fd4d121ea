"""Running the segment engine in memory on tiny models: shared by the parity, speed, memory and cache tests."""

from __future__ import annotations

import numpy as np
import torch

from wanimate.generate import GenerateSettings
from wanimate.generate.engine import SegmentGenerator
from wanimate.materials import Materials

BASE = dict(
    segment_frames=9, prompt="w1 w2", negative_prompt="w4", dtype="fp32", clip_input="diffusers", sampler="diffusers"
)


def run_engine(pipe, materials: Materials, **settings) -> np.ndarray:
    """All segments' frames ``(N, H, W, 3)`` in [0, 1]; ``settings`` override the tiny-test defaults."""
    generator = SegmentGenerator(pipe, materials, GenerateSettings(**{**BASE, **settings}), torch.device("cpu"))
    return torch.cat([out.frames for out in generator.run()]).numpy()
