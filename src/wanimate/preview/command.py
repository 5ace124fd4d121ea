"""``wanimate preview``: the model-free CPU renderer on a materials folder.

numpy, OpenCV and mediapipe are imported inside the command body so ``wanimate --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer


def preview_command(
    materials: Path = typer.Argument(..., help="Materials folder written by `wanimate preprocess`."),
    output: Path = typer.Option(Path("preview.mp4"), "-o", "--output", help="Output mp4."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Render a model-free CPU preview of a materials folder: the character follows the driving skeleton."""
    from wanimate.preview import render_preview

    typer.echo(f"wrote {render_preview(materials, output, progress=progress)}")


def register(app: typer.Typer) -> None:
    app.command("preview")(preview_command)
