"""``wanimate run``: its options are the fields of :class:`RunSettings`, i.e. the renderer plus every
preprocessing, generation, parallel and cast option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wanimate.options import expand
from wanimate.paths import OutputSettings
from wanimate.run.settings import NOT_ON_RUN, RunSettings


def _chosen(arguments: dict[str, Any]) -> Any:
    """A cast in animate mode renders with MultiAnimate: the options not typed take its defaults."""
    from wanimate.run.pipeline import multianimate_run

    count = len(arguments["cast"] or arguments["image"] or [])
    if not multianimate_run(arguments["mode"], arguments["model"], count, bool(arguments["cast"])):
        return RunSettings
    from wanimate.multianimate.settings import MultiAnimateSettings

    return RunSettings(generate=MultiAnimateSettings())


def run_command(
    image: list[str] | None = typer.Option(
        None,
        "--image",
        help="Character image, or example:astronaut. Repeat it for several characters, assigned left to right "
        "to the people in the first frame.",
    ),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    cast: list[str] | None = typer.Option(
        None, "--cast", help="Cast: ID=IMAGE, the character that plays person ID (ids from `wanimate people`); repeat."
    ),
    model: str = typer.Option(
        "auto", help="auto, animate (Wan2.2-Animate-14B) or multianimate (an animate-mode cast)."
    ),
    settings: RunSettings = None,  # type: ignore[assignment] (expanded into its options)
    compare: Path | None = typer.Option(None, help="Also write driving | skeleton | result side by side (+ a PNG)."),
    fresh: bool = typer.Option(False, help="Ignore cached materials and finished segments."),
    work_dir: Path | None = typer.Option(None, help="Work folder (default: <output stem>.work)."),
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
) -> None:
    """Character image + driving video → video, in one command (preprocess, then generate or preview).

    The defaults shown are one character's (Wan2.2-Animate); an animate-mode cast starts from
    MultiAnimate's (docs/cast.md).
    """
    from rich.console import Console

    from wanimate.run import run

    result = run(
        image,
        video,
        output,
        settings,
        cast=cast or None,
        model=model,
        compare=compare,
        work_dir=work_dir,
        fresh=fresh,
        overwrite=files.overwrite,
    )
    console = Console(stderr=True)
    reused = "" if result.preprocessed else " (cached materials reused)"
    console.print(f"wrote {result.output} with the {result.backend} backend{reused}")
    if result.compare is not None:
        console.print(f"wrote {result.compare} and {result.compare.with_suffix('.png')}")


def register(app: typer.Typer) -> None:
    app.command("run")(expand(exclude=NOT_ON_RUN, choose=_chosen)(run_command))
