"""``wanimate run``."""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.generate.settings import DEFAULT_WEIGHTS


def run_command(
    image: str = typer.Option(..., "--image", help="Character image, or example:astronaut."),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    mode: str = typer.Option("animate", help="animate (character moves in its own scene) or replace."),
    backend: str = typer.Option("auto", help="auto, wan (the model) or preview (CPU renderer, no weights)."),
    weights: str = typer.Option(DEFAULT_WEIGHTS, help="Wan weights: hub id, folder, single file, random:tiny."),
    compare: Path | None = typer.Option(None, help="Also write driving | skeleton | result side by side (+ a PNG)."),
    fresh: bool = typer.Option(False, help="Ignore cached materials and finished segments."),
    work_dir: Path | None = typer.Option(None, help="Work folder (default: <output stem>.work)."),
    retarget: bool = typer.Option(True, "--retarget/--no-retarget", help="Fit the driver's bones to the character."),
    fps: str = typer.Option("source", help="Frame rate, or 'source'."),
    area: str = typer.Option("1280x720", help="Target pixel area WxH, or 480p / 720p."),
    person: str = typer.Option("auto", help="auto (main performer) or N (0 = leftmost)."),
    pose_backend: str = typer.Option("mediapipe", help="Pose backend: mediapipe or vitpose."),
    steps: int = typer.Option(20, help="Denoising steps per segment (wan)."),
    guidance: float = typer.Option(1.0, help="CFG scale (wan)."),
    seed: int = typer.Option(42, help="Random seed (wan)."),
    segment_frames: int = typer.Option(77, help="Frames per segment, 4n+1 (wan)."),
    overlap: int = typer.Option(1, help="Temporal-guidance frames: 1 or 5 (wan)."),
    dtype: str = typer.Option("bf16", help="bf16, fp16 or fp32 (wan)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda ... (wan)."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Carry the driving video's audio into the videos."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Character image + driving video → video, in one command (preprocess, then generate or preview)."""
    from rich.console import Console

    from wanimate.generate import GenerateSettings
    from wanimate.preprocess.command import parse_fps, parse_person
    from wanimate.preprocess.sizing import parse_area
    from wanimate.run import run

    settings = GenerateSettings(
        steps=steps,
        guidance=guidance,
        seed=seed,
        segment_frames=segment_frames,
        overlap=overlap,
        dtype=dtype,
        device=device,
    )
    options = {
        "retarget": retarget,
        "fps": parse_fps(fps),
        "area": parse_area(area),
        "person": parse_person(person),
        "backend": pose_backend,
    }
    result = run(
        image,
        video,
        output,
        mode=mode,
        backend=backend,
        weights=weights,
        compare=compare,
        work_dir=work_dir,
        fresh=fresh,
        audio=audio,
        overwrite=overwrite,
        preprocess_options=options,
        settings=settings,
    )
    console = Console(stderr=True)
    reused = "" if result.preprocessed else " (cached materials reused)"
    console.print(f"wrote {result.output} with the {result.backend} backend{reused}")
    if result.compare is not None:
        console.print(f"wrote {result.compare} and {result.compare.with_suffix('.png')}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("run")(run_command)
