"""``wanimate bench load``: build a random DiT layer by layer (quantized as it goes), run one step.

This is how the real 14B configuration (``full``) is exercised on a machine whose RAM could never
hold it in full precision: the transformer is built by the same streaming builder the loader uses,
each Linear quantized the moment its weights exist, then one denoising step (a transformer forward
plus the scheduler update) runs at a small size. Peak RSS is the process's ``ru_maxrss`` (imports
included), so it is the figure a user of the command would see.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import torch


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_inputs(transformer: Any, height: int, width: int, frames: int, dtype: torch.dtype) -> dict[str, Any]:
    """Random inputs of one denoising step for ``frames`` pixel frames at ``height`` x ``width``.

    Shapes as the pipeline builds them: latent frames ``frames // 4 + 1`` plus the reference frame,
    512 text tokens, 257 CLIP tokens, face crops at the motion encoder's size.
    """
    cfg = transformer.config
    g = torch.Generator().manual_seed(0)
    lat_t, lat_h, lat_w = frames // 4 + 1, height // 8, width // 8
    face = cfg.motion_encoder_size

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(dtype)

    return {
        "hidden_states": rand(1, cfg.in_channels, lat_t + 1, lat_h, lat_w),
        "timestep": torch.tensor([999]),
        "encoder_hidden_states": rand(1, 512, cfg.text_dim),
        "encoder_hidden_states_image": rand(1, 257, cfg.image_dim),
        "pose_hidden_states": rand(1, cfg.latent_channels, lat_t, lat_h, lat_w),
        "face_pixel_values": rand(1, 3, frames, face, face).clamp(-1, 1),
        "return_dict": False,
    }


def bench_load(
    config: str, *, quantize: str, dtype: torch.dtype, height: int, width: int, frames: int
) -> dict[str, Any]:
    """Build ``random:<config>``'s DiT streamed and quantized, then time one step; sizes and RSS too."""
    from diffusers import WanAnimateTransformer3DModel

    from wanimate.models.factory import build_scheduler, model_config
    from wanimate.models.memory import GIB, weight_bytes
    from wanimate.models.random_weights import build_streamed_transformer
    from wanimate.models.sizes import dit_sizes

    cfg = model_config(config)
    predicted, _ = dit_sizes(WanAnimateTransformer3DModel, cfg.transformer, dtype)
    result: dict[str, Any] = {
        "config": config,
        "quantize": quantize,
        "dtype": str(dtype).removeprefix("torch."),
        "size": f"{width}x{height}, {frames} frames",
        "rss_before_build_mib": _rss_mib(),
    }
    started = time.perf_counter()
    transformer = build_streamed_transformer(cfg, seed=3, dtype=dtype, quantize=quantize)
    result["build_s"] = time.perf_counter() - started
    result["weights_gib"] = weight_bytes(transformer) / GIB
    result["weights_predicted_gib"] = predicted[quantize] / GIB
    result["full_precision_weights_gib"] = predicted["none"] / GIB
    result["peak_rss_build_mib"] = _peak_mib()
    inputs = step_inputs(transformer, height, width, frames, dtype)
    scheduler = build_scheduler()
    scheduler.set_timesteps(1)
    started = time.perf_counter()
    with torch.no_grad():
        noise = transformer(**inputs)[0]
        latents = scheduler.step(noise, scheduler.timesteps[0], inputs["hidden_states"][:, :16]).prev_sample
    result["step_s"] = time.perf_counter() - started
    result["output_finite"] = bool(torch.isfinite(latents).all())
    result["peak_rss_mib"] = _peak_mib()
    return result
