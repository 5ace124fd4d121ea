"""``wanimate bench generate``: our generation vs plain ``diffusers.WanAnimatePipeline``, random weights.

Stage times come from the engine's progress events, so the benchmark measures the
code path users run, not a copy of it. The baseline is the same config, inputs,
seed, steps and segment length through ``WanAnimatePipeline.__call__`` in the same
process (fresh weights, no speed/memory options), timed per step with its step
callback. Host memory is sampled from ``/proc/self/status`` on a thread, so each
phase gets its own peak RSS (``ru_maxrss`` only ever grows within a process).
"""

from __future__ import annotations

import dataclasses
import itertools
import resource
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from wanimate.generate.engine import ProgressEvent


@dataclass
class StageClock:
    """Turns the stream of progress events into durations per stage."""

    marks: list[tuple[str, float]] = field(default_factory=list)
    on_event: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        self.marks.append((event.stage, time.perf_counter()))
        if self.on_event is not None:
            self.on_event(event)

    def durations(self) -> dict[str, float]:
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
            # The mean includes each segment's first step, which also encodes the face video.
            "denoise_s_mean_step": statistics.mean(out["step"]) if out["step"] else 0.0,
            "vae_decode_s_per_segment": statistics.mean(out["vae_decode"]) if out["vae_decode"] else 0.0,
            "write_s": sum(out["write"]),
        }


def parse_resolution(text: str) -> tuple[int, int]:
    """``832x480`` or a named preset; returns (width, height)."""
    from wanimate.errors import WanimateError
    from wanimate.preprocess.sizing import NAMED_AREAS as RESOLUTIONS

    if text in RESOLUTIONS:
        return RESOLUTIONS[text]
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise WanimateError(f"--res must be WIDTHxHEIGHT or one of {', '.join(RESOLUTIONS)}, not {text!r}") from None
    if width % 16 or height % 16:
        raise WanimateError(f"--res sides must be multiples of 16, not {width}x{height}")
    return width, height


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Peak resident memory of a phase, sampled every ``interval`` seconds on a thread.

    ``mark()`` closes a window and starts the next; ``peaks`` lists each window's peak.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peaks: list[float] = [0.0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peaks[-1] = max(self.peaks[-1], current_rss_mib())
            time.sleep(self.interval)

    def mark(self) -> None:
        now = current_rss_mib()
        self.peaks[-1] = max(self.peaks[-1], now)
        self.peaks.append(now)

    def __enter__(self) -> RssSampler:
        self.peaks = [current_rss_mib()]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.mark()
        self.peaks.pop()

    @property
    def peak(self) -> float:
        return max(self.peaks)


def _baseline(pipe: Any, materials_dir: Path, settings: Any) -> dict[str, float]:
    """The same generation through plain ``WanAnimatePipeline.__call__``: total and per-step seconds."""
    from wanimate.generate.reference import run_reference_pipeline
    from wanimate.materials import load_materials

    stamps: list[float] = []

    def on_step(pipeline: Any, step: int, timestep: Any, kwargs: dict) -> dict:
        stamps.append(time.perf_counter())
        return kwargs

    started = time.perf_counter()
    run_reference_pipeline(pipe, load_materials(materials_dir), settings, on_step=on_step)
    total = time.perf_counter() - started
    # Steps within a segment (the first step of each segment also pays that segment's VAE encode).
    spans = [b - a for a, b in itertools.pairwise(stamps)]
    steps_per_segment = settings.steps
    within = [s for i, s in enumerate(spans) if (i + 1) % steps_per_segment != 0]
    return {"total_s": total, "s_per_step": statistics.median(within or spans or [total])}


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
    guidance: float = 1.0,
    baseline: bool = True,
    options: dict[str, Any] | None = None,
) -> dict[str, float | int | str]:
    """Run ours (with ``options``: GenerateSettings speed/memory fields) and, if asked, the diffusers baseline."""
    from wanimate.devices import check_device
    from wanimate.generate import GenerateSettings, generate
    from wanimate.materials.synthetic import write_materials
    from wanimate.models.factory import build_pipeline
    from wanimate.models.limits import known_limits
    from wanimate.models.memory import weight_bytes

    settings = GenerateSettings(
        mode=mode,  # type: ignore[arg-type]
        steps=steps,
        guidance=guidance,
        segment_frames=segment_frames,
        dtype=dtype,
        device=device,
        prompt="w1 w2",
        negative_prompt="w3",
        clip_input="diffusers",
        **(options or {}),
    )
    settings.validate()
    check_device(settings.device)
    known_limits(f"random:{config}").check(width, height, segment_frames)  # type: ignore[union-attr]
    resolved = settings.resolved_device()
    cuda = resolved.type == "cuda"
    result: dict[str, float | int | str] = {
        "config": config,
        "resolution": f"{width}x{height}",
        "frames": frames,
        "segment_frames": segment_frames,
        "steps": steps,
        "guidance": guidance,
        "dtype": dtype,
        "device": str(resolved),
        "options": ",".join(f"{k}={v}" for k, v in (options or {}).items()) or "none",
    }

    def fresh() -> Any:
        pipe = build_pipeline(config)
        pipe.transformer.to(settings.torch_dtype)
        return pipe

    with tempfile.TemporaryDirectory(prefix="wanimate-bench-") as tmp:
        root = Path(tmp)
        face = fresh().transformer.config.motion_encoder_size
        write_materials(root / "m", num_frames=frames, height=height, width=width, face_size=face, mode=mode)
        if baseline:
            pipe = fresh().to(resolved)
            result["baseline_weight_mib"] = weight_bytes(pipe.transformer) / 2**20
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            with torch.no_grad(), RssSampler() as rss:
                base = _baseline(pipe, root / "m", dataclasses.replace(settings, mode=mode))
            result["baseline_total_s"] = base["total_s"]
            result["baseline_s_per_step"] = base["s_per_step"]
            result["baseline_peak_rss_mib"] = rss.peak
            if cuda:
                result["baseline_peak_vram_gib"] = torch.cuda.max_memory_allocated() / 2**30
            del pipe

        from wanimate.models.loading import LoadedModel

        started = time.perf_counter()
        model = LoadedModel(fresh(), "random", f"random:{config}", None)
        result["model_build_s"] = time.perf_counter() - started
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        vram_per_segment: list[float] = []

        def on_event(event: ProgressEvent) -> None:
            if event.stage in ("segment", "write"):
                rss.mark()
                if cuda:
                    vram_per_segment.append(torch.cuda.max_memory_allocated() / 2**30)
                    torch.cuda.reset_peak_memory_stats()

        clock = StageClock(on_event=on_event)
        with RssSampler() as rss:
            started = time.perf_counter()
            generate(root / "m", root / "out.mp4", settings=settings, model=model, progress=clock)
            total_s = time.perf_counter() - started
        result["weight_mib"] = weight_bytes(model.pipeline.transformer) / 2**20
        head = getattr(model.pipeline.transformer.blocks[0], "_diffusers_hook", None)
        if head is not None and "wanimate_fbc_head" in head.hooks:
            fbc = head.hooks["wanimate_fbc_head"]
            result["fbc_steps_computed_cached"] = f"{fbc.computed}/{fbc.cached}"
    result["total_s"] = total_s
    result.update(clock.durations())
    result["peak_rss_mib"] = rss.peak
    # Windows: [load+encode, segment 1, segment 2, ..., write]; a boundary spike shows as a later segment's peak.
    segment_peaks = rss.peaks[2:-1] if len(rss.peaks) > 3 else rss.peaks[1:2]
    result["segments"] = len(rss.peaks) - 2
    result["peak_rss_first_segment_mib"] = rss.peaks[1] if len(rss.peaks) > 1 else rss.peak
    result["peak_rss_later_segments_mib"] = max(segment_peaks) if len(rss.peaks) > 3 else rss.peaks[1]
    if cuda:
        vram_per_segment.append(torch.cuda.max_memory_allocated() / 2**30)
        result["peak_vram_gib"] = max(vram_per_segment)
        result["peak_vram_first_segment_gib"] = vram_per_segment[1] if len(vram_per_segment) > 1 else 0.0
    else:
        result["peak_vram_gib"] = "n/a (cpu)"
    if baseline:
        # Against our mean step (each segment's face encoding included): the conservative comparison.
        result["speedup_per_step"] = float(result["baseline_s_per_step"]) / max(
            float(result["denoise_s_mean_step"]), 1e-9
        )
        result["speedup_total"] = float(result["baseline_total_s"]) / total_s
        result["weight_memory_ratio"] = float(result["baseline_weight_mib"]) / float(result["weight_mib"])
    return result
