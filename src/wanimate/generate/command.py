"""``wanimate generate`` and ``wanimate bench generate``."""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.generate.settings import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT, DEFAULT_WEIGHTS


def generate_command(
    materials: Path = typer.Argument(..., help="Materials folder (from `wanimate preprocess` or the official one)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    mode: str | None = typer.Option(None, help="animate or replace (default: the materials' mode)."),
    weights: str = typer.Option(DEFAULT_WEIGHTS, help="Hub repo id, local folder, single file, or random:tiny."),
    steps: int = typer.Option(20, help="Denoising steps per segment."),
    guidance: float = typer.Option(1.0, help="CFG scale; above 1 adds a negative-prompt/blank-face pass."),
    shift: float = typer.Option(5.0, help="Flow-matching timestep shift."),
    seed: int = typer.Option(42, help="Random seed."),
    segment_frames: int = typer.Option(77, help="Frames per segment (4n+1)."),
    overlap: int = typer.Option(1, help="Temporal-guidance frames from the previous segment: 1 or 5."),
    relight: bool | None = typer.Option(
        None, "--relight/--no-relight", help="Relighting LoRA (default: on in replace mode when present)."
    ),
    relight_scale: float = typer.Option(1.0, help="Relighting LoRA strength."),
    prompt: str = typer.Option(DEFAULT_PROMPT, help="Text prompt."),
    negative_prompt: str = typer.Option(DEFAULT_NEGATIVE_PROMPT, help="Negative prompt (used when guidance > 1)."),
    dtype: str = typer.Option("bf16", help="bf16, fp16 or fp32."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps ..."),
    clip_input: str = typer.Option(
        "official", help="official (squash letterboxed reference) or diffusers (centre crop)."
    ),
    save_frames: Path | None = typer.Option(None, help="Also write every frame as PNG into this folder."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Re-mux the driving video's audio."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse finished segments of an interrupted run."),
    work_dir: Path | None = typer.Option(None, help="Where finished segments are kept (default: <output stem>.work)."),
    keep_work: bool = typer.Option(False, help="Keep the work folder after the video is written."),
) -> None:
    """Generate a video from a materials folder, segment by segment (resumable)."""
    from rich.console import Console

    from wanimate.generate.pipeline import generate
    from wanimate.generate.progress import RichProgress
    from wanimate.generate.settings import GenerateSettings

    settings = GenerateSettings(
        mode=mode,
        steps=steps,
        guidance=guidance,
        shift=shift,
        seed=seed,
        segment_frames=segment_frames,
        overlap=overlap,
        relight=relight,
        relight_scale=relight_scale,
        prompt=prompt,
        negative_prompt=negative_prompt,
        dtype=dtype,
        device=device,
        clip_input=clip_input,  # type: ignore[arg-type]
    )
    with RichProgress() as progress:
        path = generate(
            materials,
            output,
            settings=settings,
            weights=weights,
            work_dir=work_dir,
            resume=resume,
            keep_work=keep_work,
            save_frames=save_frames,
            audio=audio,
            progress=progress,
        )
    Console(stderr=True).print(f"wrote {path}")


def bench_generate_command(
    config: str = typer.Option("tiny", help="Model size: tiny, mid or full (random weights)."),
    res: str = typer.Option("256x256", help="WIDTHxHEIGHT, or 480p / 720p."),
    frames: int = typer.Option(77, help="Driving frames."),
    segment_frames: int = typer.Option(77, help="Frames per segment."),
    steps: int = typer.Option(4, help="Denoising steps per segment (the per-step time is reported)."),
    dtype: str = typer.Option("fp32", help="bf16, fp16 or fp32."),
    device: str = typer.Option("auto", help="auto, cpu, cuda ..."),
    mode: str = typer.Option("animate", help="animate or replace."),
) -> None:
    """Per-stage wall time and peak memory of generation with random weights (no download)."""
    from rich.console import Console
    from rich.table import Table

    from wanimate.bench.generate import bench_generate, parse_resolution

    width, height = parse_resolution(res)
    result = bench_generate(
        config,
        height=height,
        width=width,
        frames=frames,
        segment_frames=segment_frames,
        steps=steps,
        dtype=dtype,
        device=device,
        mode=mode,
    )
    table = Table(title=f"wanimate bench generate --config {config} --res {res} --frames {frames}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    Console().print(table)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    bench_app.command("generate")(bench_generate_command)
