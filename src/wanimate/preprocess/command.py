"""``wanimate preprocess`` and ``wanimate people``: their options are the fields of :class:`PreprocessSettings`.

mediapipe, OpenCV and PyAV are imported inside the command bodies so ``wanimate --help``
stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.cast.settings import CastSettings
from wanimate.options import expand, flat_options
from wanimate.paths import OutputSettings
from wanimate.preprocess.settings import PEOPLE_OPTIONS, PreprocessSettings


def preprocess_command(
    image: list[str] | None = typer.Option(
        None,
        "--image",
        help="Character image (PNG/JPEG; transparency goes black), or example:astronaut; repeat it for a cast "
        "assigned left to right.",
    ),
    cast: list[str] | None = typer.Option(
        None, "--cast", help="Cast: ID=IMAGE, the character for person ID (see `wanimate people`); repeat."
    ),
    model: str = typer.Option(
        "auto", "--model", help="animate (one character), multianimate (a cast, animate mode), or auto."
    ),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Materials folder to create."),
    settings: PreprocessSettings = None,  # type: ignore[assignment] (expanded into its options)
    cast_settings: CastSettings = None,  # type: ignore[assignment] (expanded into its options)
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Character image + driving video -> a materials folder for `wanimate generate` (or a cast folder)."""
    from wanimate.errors import WanimateError
    from wanimate.examples import resolve_input
    from wanimate.generate.settings import check_model
    from wanimate.preprocess.pipeline import preprocess

    check_model(model)
    images = image or []
    if cast or len(images) > 1 or model == "multianimate":
        _preprocess_cast(cast, images, video, output, model, settings, cast_settings, files.overwrite, quiet)
        return
    if not images:
        raise WanimateError("give a character image (--image), or several characters with --cast ID=IMAGE")
    materials = preprocess(
        resolve_input(images[0]), resolve_input(video), output, settings, overwrite=files.overwrite, progress=not quiet
    )
    meta = materials.meta
    typer.echo(
        f"wrote {materials.root} ({meta.mode}, {meta.width}x{meta.height}, {meta.num_frames} frames "
        f"at {meta.fps:g} fps)"
    )


def _preprocess_cast(
    cast: list[str] | None,
    images: list[str],
    video: str,
    output: Path,
    model: str,
    settings: PreprocessSettings,
    cast_settings: CastSettings,
    overwrite: bool,
    quiet: bool,
) -> None:
    from wanimate.cast.run import CastOptions, preprocess_cast
    from wanimate.errors import WanimateError

    if cast and images:
        raise WanimateError("give the characters either as --cast ID=IMAGE or as repeated --image, not both")
    if not cast and not images:
        raise WanimateError("--model multianimate needs its characters: --cast ID=IMAGE (repeat it)")
    folder = preprocess_cast(
        cast or images,
        video,
        output,
        mode=settings.mode,
        model=model,
        options=CastOptions.of(settings, cast_settings),
        overwrite=overwrite,
        progress=not quiet,
    )
    ids = ", ".join(f"{i + 1}={m.person}" for i, m in enumerate(folder.members))
    typer.echo(
        f"wrote {folder.root} (a {settings.mode}-mode cast for {folder.model}: characters {ids}; {folder.width}x"
        f"{folder.height}, {folder.num_frames} frames at {folder.fps:g} fps)"
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
