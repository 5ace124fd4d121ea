"""``wanimate bench generate --model multianimate``: stage times, peak memory, and the adapters' cost per step.

The whole generation runs through :func:`wanimate.generate.generate` on random weights and synthetic
N-character materials, timed per stage from its progress events (as for Wan2.2-Animate). Then, in
the same process and on the same segment inputs, it measures what MultiAnimate adds to the plain
Wan2.1-I2V base: the DiT forward with the pose/identity condition added against the same forward
without it (the base's own cost), and the three adapters, which run once per segment, amortised
over the segment's steps. The LoRA is merged into the base weights at load, so it costs nothing
per step.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from wanimate.bench.generate import RssSampler, StageClock


def _seconds(fn: Any, cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def _adapter_costs(model: Any, materials: Any, settings: Any, repeats: int) -> dict[str, float]:
    """Per-forward cost with and without the condition, and the adapters' per-segment cost, on segment 0.

    The two forwards are timed alternately and the fastest of ``repeats`` is kept, which is what a
    loaded machine can still measure. The adapters run on inputs of the segment's shapes.
    """
    from wanimate.generate.segments import plan_segments
    from wanimate.multianimate.segments import MultiAnimateSegments

    device = settings.resolved_device()
    cuda = device.type == "cuda"
    part = MultiAnimateSegments(model, materials, settings, device)
    generator = torch.Generator("cpu").manual_seed(settings.seed)
    plan = plan_segments(materials.num_frames, settings.segment_frames, 1)
    segment = plan.segments[0]
    adapters = model.adapters
    with torch.no_grad():
        part.begin(generator)
        latents = part.start_segment(segment, plan.source_indices(segment), None, generator)
        seg, transformer = part.segment_inputs, model.pipeline.transformer
        args = dict(
            hidden_states=torch.cat([latents.to(part.dtype), seg["y"]], dim=1),
            timestep=part.timesteps()[0].expand(1).to(part.dtype),
            encoder_hidden_states=part.job_inputs["prompt"],
            encoder_hidden_states_image=part.job_inputs["image"],
            return_dict=False,
        )

        def conditioned() -> None:
            with model.condition.adding(seg["condition"]):
                transformer(**args)

        pose = torch.rand(1, 3, segment.length, materials.height, materials.width, device=device)
        labels = torch.zeros(1, adapters.max_characters + 1, segment.length, materials.height, materials.width)
        labels[:, 0] = 1

        def run_adapters() -> None:
            adapters.motion_condition(pose, labels.to(device), part.dtype)
            adapters.reference_pose_feature(pose[:, :, 0], part.dtype)

        base, with_condition, adapter_s = [], [], []
        for _ in range(repeats):
            base.append(_seconds(lambda: transformer(**args), cuda))
            with_condition.append(_seconds(conditioned, cuda))
            adapter_s.append(_seconds(run_adapters, cuda))
    part.end_segment()
    fastest_base = min(base)
    return {
        "base_forward_s": fastest_base,
        "conditioned_forward_s": min(with_condition),
        "condition_cost_per_forward_pct": 100 * (min(with_condition) - fastest_base) / fastest_base,
        "adapters_s_per_segment": min(adapter_s),
        # Amortised over a segment's steps, against the steps' forwards (two per step with CFG).
        "adapters_per_step_pct": 100 * min(adapter_s) / (settings.steps * fastest_base * (1 + (settings.guidance > 1))),
    }


def bench_multianimate(
    config: str = "tiny",
    *,
    height: int = 256,
    width: int = 256,
    frames: int = 81,
    segment_frames: int = 81,
    steps: int = 4,
    guidance: float = 1.5,
    dtype: str = "fp32",
    device: str = "auto",
    characters: int = 3,
    repeats: int = 5,
    options: dict[str, Any] | None = None,
) -> dict[str, float | int | str]:
    from wanimate.generate import generate
    from wanimate.materials.characters import load_character_materials
    from wanimate.materials.synthetic import write_character_materials
    from wanimate.models.memory import weight_bytes
    from wanimate.multianimate.loading import load_multianimate
    from wanimate.multianimate.settings import MultiAnimateSettings

    settings = MultiAnimateSettings(
        steps=steps,
        guidance=guidance,
        segment_frames=segment_frames,
        dtype=dtype,
        device=device,
        prompt="w1 w2",
        negative_prompt="w3",
        **(options or {}),
    )
    resolved = settings.resolved_device()
    cuda = resolved.type == "cuda"
    result: dict[str, float | int | str] = {
        "model": "multianimate",
        "config": config,
        "characters": characters,
        "resolution": f"{width}x{height}",
        "frames": frames,
        "segment_frames": segment_frames,
        "steps": steps,
        "guidance": guidance,
        "dtype": dtype,
        "device": str(resolved),
        "options": ",".join(f"{k}={v}" for k, v in (options or {}).items()) or "none",
    }
    with tempfile.TemporaryDirectory(prefix="wanimate-bench-") as tmp:
        root = Path(tmp)
        write_character_materials(root / "m", characters=characters, num_frames=frames, height=height, width=width)
        materials = load_character_materials(root / "m")
        started = time.perf_counter()
        model = load_multianimate(
            f"random:{config}", f"random:{max(characters, 3)}", dtype=settings.torch_dtype, progress=False
        )
        result["model_build_s"] = time.perf_counter() - started
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        clock = StageClock(on_event=lambda event: rss.mark() if event.stage in ("segment", "write") else None)
        with RssSampler() as rss:
            started = time.perf_counter()
            generate(materials, root / "out.mp4", settings=settings, model=model, progress=clock)
            result["total_s"] = time.perf_counter() - started
        result.update(clock.durations())
        result["peak_rss_mib"] = rss.peak
        # Windows: [load+encode, segment 1, segment 2, ..., write]: flat memory means later segments peak no higher.
        result["segments"] = len(rss.peaks) - 2
        result["peak_rss_first_segment_mib"] = rss.peaks[1] if len(rss.peaks) > 1 else rss.peak
        if len(rss.peaks) > 3:
            result["peak_rss_later_segments_mib"] = max(rss.peaks[2:-1])
        result["peak_vram_gib"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else "n/a (cpu)"
        result["dit_weight_mib"] = weight_bytes(model.pipeline.transformer) / 2**20
        result["adapter_weight_mib"] = weight_bytes(model.adapters) / 2**20
        result.update(_adapter_costs(model, materials, settings, repeats))
    return result
