"""``wanimate preprocess`` and ``wanimate people``: their options are the fields of :class:`PreprocessSettings`.

mediapipe, OpenCV and PyAV are imported inside the command bodies so ``wanimate --help``
stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.options import expand, flat_options
from wanimate.paths import OutputSettings
from wanimate.preprocess.settings import PEOPLE_OPTIONS, PreprocessSettings


def preprocess_command(
    image: str = typer.Option(
        ..., "--image", help="Character image (PNG/JPEG; transparency goes black), or example:astronaut."
    ),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Materials folder to create."),
    settings: PreprocessSettings = None,  # type: ignore[assignment] (expanded into its options)
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Character image + driving video -> a materials folder for `wanimate generate`."""
    from wanimate.examples import resolve_input
    from wanimate.preprocess.pipeline import preprocess

    materials = preprocess(
        resolve_input(image), resolve_input(video), output, settings, overwrite=files.overwrite, progress=not quiet
    )
    meta = materials.meta
    typer.echo(
        f"wrote {materials.root} ({meta.mode}, {meta.width}x{meta.height}, {meta.num_frames} frames "
        f"at {meta.fps:g} fps)"
    )


def people_command(
    video: str = typer.Argument(..., help="Driving video, or example:crowd."),
    sheet: Path | None = typer.Option(
        None, "-o", "--sheet", help="Contact sheet PNG to write (default: VIDEO's name + .people.png here)."
    ),
    settings: PreprocessSettings = None,  # type: ignore[assignment] (expanded into PEOPLE_OPTIONS)
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """List the people in a video (id, frames, size) and draw a contact sheet to choose --person from."""
    from wanimate.examples import resolve_input
    from wanimate.native_logs import quiet_native_logs
    from wanimate.preprocess.people_sheet import write_people_sheet

    path = resolve_input(video)
    target = sheet if sheet is not None else Path(f"{path.stem}.people.png")
    with quiet_native_logs():
        lines = write_people_sheet(
            path, target, fps=settings.fps, max_people=settings.max_people, finder=settings.finder, progress=not quiet
        )
    for line in lines:
        typer.echo(line)
    typer.echo(f"wrote {target}")


def register(app: typer.Typer) -> None:
    app.command("preprocess")(expand()(preprocess_command))
    others = tuple(name for name in flat_options(PreprocessSettings) if name not in PEOPLE_OPTIONS)
    app.command("people")(expand(exclude=others)(people_command))
