"""``wanimate bench generate``: per-stage wall time and peak memory of generation, random weights.

Stage times come from the engine's progress events, so the benchmark measures the
code path users run, not a copy of it.
"""

from __future__ import annotations

import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wanimate.generate.engine import ProgressEvent


@dataclass
class StageClock:
    """Turns the stream of progress events into durations per stage."""

    marks: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, event: ProgressEvent) -> None:
        self.marks.append((event.stage, time.perf_counter()))

    def durations(self) -> dict[str, float | list[float]]:
        out: dict[str, list[float]] = {
            "encode": [],
            "vae_encode": [],
            "step": [],
            "vae_decode": [],
            "write": [],
        }
        previous_stage, previous_time = self.marks[0]
        for stage, moment in self.marks[1:]:
            span = moment - previous_time
            if previous_stage == "encode" and stage == "segment":
                out["encode"].append(span)
            elif previous_stage == "denoise" or (previous_stage == "step" and stage == "step"):
                out["step"].append(span)
            elif previous_stage == "segment" and stage == "denoise":
                out["vae_encode"].append(span)
            elif previous_stage == "decode":
                out["vae_decode"].append(span)
            elif previous_stage == "write":
                out["write"].append(span)
            previous_stage, previous_time = stage, moment
        return {
            "text_clip_encode_s": sum(out["encode"]),
            "vae_encode_s_per_segment": statistics.mean(out["vae_encode"]) if out["vae_encode"] else 0.0,
            "denoise_s_per_step": statistics.median(out["step"]) if out["step"] else 0.0,
            "vae_decode_s_per_segment": statistics.mean(out["vae_decode"]) if out["vae_decode"] else 0.0,
            "write_s": sum(out["write"]),
        }


RESOLUTIONS = {"480p": (832, 480), "720p": (1280, 720)}


def parse_resolution(text: str) -> tuple[int, int]:
    """``832x480`` or a named preset; returns (width, height)."""
    from wanimate.errors import WanimateError

    if text in RESOLUTIONS:
        return RESOLUTIONS[text]
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise WanimateError(
            f"--res must be WIDTHxHEIGHT or one of {', '.join(RESOLUTIONS)}, not {text!r}"
        ) from None
    if width % 16 or height % 16:
        raise WanimateError(f"--res sides must be multiples of 16, not {width}x{height}")
    return width, height


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_generate(
    config: str = "tiny",
    *,
    height: int = 256,
    width: int = 256,
    frames: int = 77,
    segment_frames: int = 77,
    steps: int = 4,
    dtype: str = "fp32",
    device: str = "auto",
    mode: str = "animate",
) -> dict[str, float | int | str]:
    from wanimate.generate import GenerateSettings, generate
    from wanimate.materials.synthetic import write_materials
    from wanimate.models.loading import load_model

    settings = GenerateSettings(
        mode=mode,
        steps=steps,
        segment_frames=segment_frames,
        dtype=dtype,
        device=device,  # type: ignore[arg-type]
        prompt="w1 w2",
        negative_prompt="w3",
    )
    resolved = settings.resolved_device()
    started = time.perf_counter()
    model = load_model(f"random:{config}", dtype=settings.torch_dtype, device=resolved)
    build_s = time.perf_counter() - started
    face = model.pipeline.transformer.config.motion_encoder_size
    if resolved.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = StageClock()
    with tempfile.TemporaryDirectory(prefix="wanimate-bench-") as tmp:
        root = Path(tmp)
        write_materials(root / "m", num_frames=frames, height=height, width=width, face_size=face, mode=mode)
        started = time.perf_counter()
        generate(root / "m", root / "out.mp4", settings=settings, model=model, progress=clock)
        total_s = time.perf_counter() - started
    result: dict[str, float | int | str] = {
        "config": config,
        "resolution": f"{width}x{height}",
        "frames": frames,
        "steps": steps,
        "dtype": dtype,
        "device": str(resolved),
        "model_build_s": build_s,
        "total_s": total_s,
        **clock.durations(),
        "peak_rss_mib": peak_rss_mib(),
    }
    if resolved.type == "cuda":
        result["peak_vram_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result
