"""The largest frame and segment a transformer can place, checked before any work.

Wan's rotary position table has ``rope_max_seq_len`` rows per axis, so a latent grid taller, wider
or longer than that has no positions and fails deep inside the first denoising step ("shape
'[1, 60, 1, -1]' is invalid"), after preprocessing and all the encoding. The 14B model's table
(1024) covers 16384 px; the tiny test model's (32) covers 512 px. The limits follow from the
transformer's and the VAE's configs, which are known before the weights are read for the random
sizes and for local diffusers folders; for other layouts they are checked as soon as the model is
loaded, still before the first segment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanimate.errors import WanimateError

_DIFFUSERS_DEFAULTS = {"rope_max_seq_len": 1024, "patch_size": (1, 2, 2)}
_VAE_DEFAULTS = {"dim_mult": (1, 2, 4, 4), "temperal_downsample": (False, True, True)}


@dataclass(frozen=True)
class ModelLimits:
    """Largest output size and segment length a model supports."""

    max_height: int
    max_width: int
    max_latent_frames: int  # including the reference frame
    temporal_scale: int
    label: str

    def check(self, width: int, height: int, segment_frames: int) -> None:
        if height > self.max_height or width > self.max_width:
            raise WanimateError(
                f"{self.label} supports frames up to {self.max_width}x{self.max_height} px (its position table), "
                f"but the output is {width}x{height}; use a smaller --area (e.g. 512x512) or larger weights"
            )
        latent = (segment_frames - 1) // self.temporal_scale + 2  # the segment's latents plus the reference
        if latent > self.max_latent_frames:
            longest = (self.max_latent_frames - 2) * self.temporal_scale + 1
            raise WanimateError(
                f"{self.label} supports segments of up to {longest} frames, not --segment-frames {segment_frames}"
            )


def limits_from_configs(transformer: Mapping[str, Any], vae: Mapping[str, Any], label: str) -> ModelLimits:
    """Limits from a ``WanAnimateTransformer3DModel`` config and an ``AutoencoderKLWan`` config."""
    rope = int(transformer.get("rope_max_seq_len", _DIFFUSERS_DEFAULTS["rope_max_seq_len"]))
    p_t, p_h, p_w = (int(v) for v in transformer.get("patch_size", _DIFFUSERS_DEFAULTS["patch_size"]))
    spatial = 2 ** (len(vae.get("dim_mult", _VAE_DEFAULTS["dim_mult"])) - 1)
    temporal = 2 ** sum(bool(v) for v in vae.get("temperal_downsample", _VAE_DEFAULTS["temperal_downsample"]))
    return ModelLimits(
        max_height=rope * p_h * spatial,
        max_width=rope * p_w * spatial,
        max_latent_frames=rope * p_t,
        temporal_scale=temporal,
        label=label,
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def known_limits(weights: str) -> ModelLimits | None:
    """The limits of ``weights`` when its configs can be read without loading it; ``None`` otherwise."""
    if weights.startswith("random:"):
        from wanimate.models.configs import model_config

        config = model_config(weights.removeprefix("random:"))
        return limits_from_configs(config.transformer, config.vae, f"--weights {weights}")
    folder = Path(weights).expanduser()
    transformer = _read_json(folder / "transformer" / "config.json") if folder.is_dir() else None
    vae = _read_json(folder / "vae" / "config.json") if folder.is_dir() else None
    if transformer is None or vae is None:
        return None
    return limits_from_configs(transformer, vae, f"the weights {weights}")


def loaded_limits(pipeline: Any, label: str) -> ModelLimits:
    """The limits of a loaded ``WanAnimatePipeline``."""
    return limits_from_configs(dict(pipeline.transformer.config), dict(pipeline.vae.config), label)
