"""``wanimate preview``: the model-free CPU renderer on a materials folder.

numpy, OpenCV and mediapipe are imported inside the command body so ``wanimate --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.options import expand
from wanimate.paths import OutputSettings


def preview_command(
    materials: Path = typer.Argument(..., help="Materials folder written by `wanimate preprocess`."),
    output: Path = typer.Option(Path("preview.mp4"), "-o", "--output", help="Output mp4."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Carry the driving video's audio."),
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
) -> None:
    """Render a model-free CPU preview of a materials or cast folder: characters follow their skeletons."""
    from wanimate.cast.folder import is_cast_folder

    if is_cast_folder(materials):
        from wanimate.preview.cast import render_cast_preview

        path = render_cast_preview(materials, output, progress=progress, audio=audio, overwrite=files.overwrite)
        typer.echo(f"wrote {path}")
        return
    from wanimate.preview import render_preview

    path = render_preview(materials, output, progress=progress, audio=audio, overwrite=files.overwrite)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("preview")(expand()(preview_command))
