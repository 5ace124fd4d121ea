"""Running the segment engine in memory on tiny models: shared by the parity, speed, memory and cache tests."""

from __future__ import annotations

import numpy as np
import torch

from wanimate.generate import GenerateSettings
from wanimate.generate.engine import SegmentGenerator
from wanimate.generate.runtime import prepare
from wanimate.materials import Materials
from wanimate.models.loading import LoadedModel
from wanimate.models.session import ModelSession

BASE = dict(
    segment_frames=9, prompt="w1 w2", negative_prompt="w4", dtype="fp32", clip_input="diffusers", sampler="diffusers"
)
_SESSIONS: dict[int, tuple[object, ModelSession]] = {}  # id -> (the model, kept alive so the id stays its own)


def session_of(pipe) -> ModelSession:
    """The one session that owns ``pipe`` (made on first use: a test's pipeline is handed in fresh).

    ``pipe`` is a Wan-Animate pipeline or a whole ``MultiAnimateModel``.
    """
    if id(pipe) not in _SESSIONS:
        model = pipe if hasattr(pipe, "adapters") else LoadedModel(pipe, "random", "random:tiny", None)
        while len(_SESSIONS) >= 4:  # the pipelines of earlier tests are done with: let them go
            del _SESSIONS[next(iter(_SESSIONS))]
        _SESSIONS[id(pipe)] = (pipe, ModelSession.wrap(model, dtype=BASE["dtype"], device="cpu"))
    return _SESSIONS[id(pipe)][1]


def prepared_generator(pipe, materials, settings: GenerateSettings, progress=None) -> SegmentGenerator:
    """The engine on ``pipe`` after its session applied ``settings`` (as ``generate`` does)."""
    session = session_of(pipe)
    resolved, _ = prepare(session, settings, materials)
    return SegmentGenerator(pipe, materials, resolved, torch.device("cpu"), progress=progress)


def run_engine(pipe, materials: Materials, progress=None, **settings) -> np.ndarray:
    """All segments' frames ``(N, H, W, 3)`` in [0, 1]; ``settings`` override the tiny-test defaults."""
    generator = prepared_generator(pipe, materials, GenerateSettings(**{**BASE, **settings}), progress)
    return torch.cat([out.frames for out in generator.run()]).numpy()
