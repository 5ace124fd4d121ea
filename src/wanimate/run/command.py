"""``wanimate run``: its options are the fields of :class:`RunSettings`, i.e. the renderer plus every
preprocessing and generation option."""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.options import expand
from wanimate.paths import OutputSettings
from wanimate.run.settings import NOT_ON_RUN, RunSettings


def run_command(
    image: str = typer.Option(..., "--image", help="Character image, or example:astronaut."),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    settings: RunSettings = None,  # type: ignore[assignment] (expanded into its options)
    compare: Path | None = typer.Option(None, help="Also write driving | skeleton | result side by side (+ a PNG)."),
    fresh: bool = typer.Option(False, help="Ignore cached materials and finished segments."),
    work_dir: Path | None = typer.Option(None, help="Work folder (default: <output stem>.work)."),
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
) -> None:
    """Character image + driving video → video, in one command (preprocess, then generate or preview)."""
    from rich.console import Console

    from wanimate.run import run

    result = run(
        image, video, output, settings, compare=compare, work_dir=work_dir, fresh=fresh, overwrite=files.overwrite
    )
    console = Console(stderr=True)
    reused = "" if result.preprocessed else " (cached materials reused)"
    console.print(f"wrote {result.output} with the {result.backend} backend{reused}")
    if result.compare is not None:
        console.print(f"wrote {result.compare} and {result.compare.with_suffix('.png')}")


def register(app: typer.Typer) -> None:
    app.command("run")(expand(exclude=NOT_ON_RUN)(run_command))
