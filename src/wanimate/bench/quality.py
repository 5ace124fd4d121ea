"""``wanimate bench quality``: wanimate eval run on wanimate's own outputs.

- the preview renderer on the example media in both modes (full eval);
- a long looped animate clip (temporal metrics: drift over tens of seconds);
- ``generate`` with ``random:tiny`` weights for the plumbing: the official and diffusers samplers,
  with and without colour correction (temporal metrics, and how far the samplers' outputs differ).
  Random weights make no picture worth judging; these numbers show the metrics and options work
  end to end, not model quality.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from wanimate.bench.preview import RESOLUTIONS, _driving_frames, _media, _multiple_of_16, machine

TINY_FRAMES = 41  # five segments of 9
HEADLINE = (
    "motion.body_pck@0.1",
    "motion.body_error",
    "expression.mouth_correlation",
    "identity.face_distance_mean",
    "identity.appearance_mean",
    "temporal.drift_delta_e_max",
    "temporal.flicker_mean",
    "temporal.segment_drift_delta_e_max",
    "temporal.seam_jump_mean",
)


def _temporal(path: Path, fps: float, boundaries: list[int]) -> dict:
    from wanimate.evaluate.temporal import Temporal
    from wanimate.video import iter_frames

    temporal = Temporal(fps, boundaries=boundaries)
    for frame in iter_frames(path):
        temporal.add(frame)
    return {f"temporal.{k}": v for k, v in temporal.result()["summary"].items()}


def _tiny_generate(root: Path) -> dict[str, dict]:
    from wanimate.evaluate.inputs import plan_boundaries
    from wanimate.evaluate.reference import psnr, ssim
    from wanimate.generate import GenerateSettings, generate
    from wanimate.models.session import ModelSession
    from wanimate.testing.synthetic import write_materials
    from wanimate.video import iter_frames

    session = ModelSession("random:tiny", dtype="fp32", device="cpu")
    materials = write_materials(root / "tiny-materials", num_frames=TINY_FRAMES, height=64, width=64)
    results: dict[str, dict] = {}
    outputs = {}
    for sampler in ("official", "diffusers"):
        for strength in (0.0, 1.0):
            name = f"tiny {sampler}" + (" +colour" if strength else "")
            settings = GenerateSettings(
                weights="random:tiny", steps=4, segment_frames=9, dtype="fp32", device="cpu", prompt="w1",
                sampler=sampler, color_correction=strength,
            )  # fmt: skip
            out = generate(materials, root / f"{name.replace(' ', '_')}.mp4", settings, session=session)
            outputs[name] = out
            results[name] = _temporal(out, 30.0, plan_boundaries(TINY_FRAMES, 9, 1))
    a = list(iter_frames(outputs["tiny official"]))
    b = list(iter_frames(outputs["tiny diffusers"]))
    results["tiny official"]["official vs diffusers: ssim"] = float(
        np.mean([ssim(x, y) for x, y in zip(a, b, strict=True)])
    )
    results["tiny official"]["official vs diffusers: psnr"] = float(
        np.mean([psnr(x, y) for x, y in zip(a, b, strict=True)])
    )
    return results


def bench_quality(res: str = "360p", frames: int = 60, long_seconds: int = 30, out_dir: Path | None = None) -> dict:
    """Summaries by clip name: the headline eval numbers of each."""
    from wanimate.evaluate.pipeline import EvalOptions, evaluate
    from wanimate.preview import render_preview
    from wanimate.testing.demo import motion_materials, replace_materials

    height = RESOLUTIONS[res]
    image, clip = _media()
    with tempfile.TemporaryDirectory(prefix="wanimate-bench-quality-") as tmp:
        root = Path(out_dir) if out_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        width = _multiple_of_16(height * 16 / 9)
        results: dict[str, dict] = {}
        for mode in ("animate", "replace"):
            if mode == "animate":
                materials = motion_materials(root / mode, image, width, height, frames)
            else:
                materials = replace_materials(root / mode, image, _driving_frames(clip, height, frames), 30.0)
            out = render_preview(materials, root / f"preview-{mode}.mp4", progress=False)
            report = evaluate(out, materials=materials.root, options=EvalOptions(fvd=False)).report
            results[f"preview {mode}"] = {k: report["summary"].get(k) for k in HEADLINE}
        looped = motion_materials(root / "long", image, width, height, long_seconds * 30)
        out = render_preview(looped, root / "preview-long.mp4", progress=False)
        results[f"preview animate {long_seconds} s"] = _temporal(out, 30.0, [])
        results.update(_tiny_generate(root))
    return results


def format_quality(results: dict[str, dict], command: str) -> str:
    import datetime

    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    lines = [f"{now}; {machine()}; {command}", "", "| metric | " + " | ".join(results) + " |"]
    lines.append("| --- |" + " --- |" * len(results))
    for key in keys:
        cells = []
        for r in results.values():
            v = r.get(key)
            cells.append("-" if v is None else f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
