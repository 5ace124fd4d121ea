"""``wanimate run``."""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.generate.settings import DEFAULT_WEIGHTS


def run_command(
    image: list[str] | None = typer.Option(
        None,
        "--image",
        help="Character image, or example:astronaut. Repeat it for several characters, assigned left to right "
        "to the people in the first frame.",
    ),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    mode: str = typer.Option("animate", help="animate (character moves in its own scene) or replace."),
    backend: str = typer.Option("auto", help="auto, wan (the model) or preview (CPU renderer, no weights)."),
    weights: str = typer.Option(
        DEFAULT_WEIGHTS,
        help="Weights: hub id, folder, single file, random:tiny (an animate-mode cast runs MultiAnimate on the "
        "Wan2.1-I2V base, Wan-AI/Wan2.1-I2V-14B-720P, unless another is given).",
    ),
    cast: list[str] | None = typer.Option(
        None, "--cast", help="Cast: ID=IMAGE, the character that plays person ID (ids from `wanimate people`); repeat."
    ),
    background: str = typer.Option(
        "image", help="Cast: the composed reference's background: image (the first character's), neutral, or a file."
    ),
    cast_order: str = typer.Option(
        "depth", help="Cast: replace passes and ties back to front by depth (feet lower = nearer) or by id."
    ),
    model: str = typer.Option(
        "auto", help="auto, animate (Wan2.2-Animate-14B) or multianimate (an animate-mode cast)."
    ),
    adapter: str = typer.Option(
        "auto", help="Cast, animate mode: the MultiAnimate checkpoint (auto, multianimate-3, multianimate-7, ...)."
    ),
    compare: Path | None = typer.Option(None, help="Also write driving | skeleton | result side by side (+ a PNG)."),
    fresh: bool = typer.Option(False, help="Ignore cached materials and finished segments."),
    work_dir: Path | None = typer.Option(None, help="Work folder (default: <output stem>.work)."),
    retarget: bool = typer.Option(True, "--retarget/--no-retarget", help="Fit the driver's bones to the character."),
    fps: str = typer.Option("source", help="Frame rate, or 'source'."),
    area: str = typer.Option("1280x720", help="Target pixel area WxH, or 480p / 720p."),
    person: str = typer.Option("auto", help="auto (main performer) or N (0 = leftmost)."),
    pose_backend: str = typer.Option("mediapipe", help="Pose backend: mediapipe or vitpose."),
    max_people: int = typer.Option(8, help="Cast: at most this many people followed at once (as `wanimate people`)."),
    finder: str = typer.Option("tiles", help="Cast: tiles (every size) or single (as `wanimate people`)."),
    steps: int | None = typer.Option(None, help="Denoising steps per segment (wan; default 20, multianimate 50)."),
    guidance: float | None = typer.Option(None, help="CFG scale (wan; default 1.0, multianimate 1.5)."),
    seed: int = typer.Option(42, help="Random seed (wan)."),
    segment_frames: int | None = typer.Option(
        None, help="Frames per segment, 4n+1 (wan; default 77, multianimate 81)."
    ),
    overlap: int = typer.Option(1, help="Temporal-guidance frames: 1 or 5 (wan)."),
    dtype: str = typer.Option("bf16", help="bf16, fp16 or fp32 (wan)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda ... (wan)."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Carry the driving video's audio into the videos."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Character image + driving video → video, in one command (preprocess, then generate or preview)."""
    from rich.console import Console

    from wanimate.cast.run import CastOptions
    from wanimate.generate.command import settings_for
    from wanimate.preprocess.command import parse_fps, parse_person
    from wanimate.preprocess.sizing import parse_area
    from wanimate.run import run

    multi = bool(cast or (image and len(image) > 1)) and mode == "animate"
    per_model = {"steps": steps, "guidance": guidance, "segment_frames": segment_frames}
    shared = {"seed": seed, "overlap": overlap, "dtype": dtype, "device": device}
    settings = settings_for("multianimate" if multi else "animate", per_model, shared)
    cast_options = CastOptions(
        background=background,
        order=cast_order,
        retarget=retarget,
        fps=parse_fps(fps),
        area=parse_area(area),
        pose_backend=pose_backend,
        max_people=max_people,
        finder=finder,
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
        cast=cast or None,
        cast_options=cast_options,
        model=model,
        adapter=adapter,
    )
    console = Console(stderr=True)
    reused = "" if result.preprocessed else " (cached materials reused)"
    console.print(f"wrote {result.output} with the {result.backend} backend{reused}")
    if result.compare is not None:
        console.print(f"wrote {result.compare} and {result.compare.with_suffix('.png')}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("run")(run_command)
