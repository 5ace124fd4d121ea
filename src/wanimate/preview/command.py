"""``wanimate preview``: the model-free CPU renderer on a materials folder.

numpy, OpenCV and mediapipe are imported inside the command body so ``wanimate --help`` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from wanimate import options
from wanimate.generate.settings import GenerateSettings
from wanimate.options import expand, redefault
from wanimate.paths import OutputSettings


@dataclass(frozen=True)
class PreviewSettings:
    """The renderer's options that ``generate`` has too: defined there once (``GenerateSettings``)."""

    audio: bool = redefault(GenerateSettings, "audio", True)

    def __post_init__(self) -> None:
        options.check(self)


def preview_command(
    materials: Path = typer.Argument(..., help="Materials folder written by `wanimate preprocess`."),
    output: Path = typer.Option(Path("preview.mp4"), "-o", "--output", help="Output mp4."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    settings: PreviewSettings = None,  # type: ignore[assignment] (expanded into --audio/--no-audio)
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
) -> None:
    """Render a model-free CPU preview of a materials or cast folder: characters follow their skeletons."""
    from wanimate.cast.folder import is_cast_folder

    if is_cast_folder(materials):
        from wanimate.preview.cast import render_cast_preview

        path = render_cast_preview(
            materials, output, progress=progress, audio=settings.audio, overwrite=files.overwrite
        )
        typer.echo(f"wrote {path}")
        return
    from wanimate.preview import render_preview

    path = render_preview(materials, output, progress=progress, audio=settings.audio, overwrite=files.overwrite)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("preview")(expand()(preview_command))
