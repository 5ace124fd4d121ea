"""``wanimate preview`` and ``wanimate bench preview``.

Both import numpy, OpenCV and mediapipe inside the command bodies so ``wanimate --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the preview renderer and its benchmark to the ``wanimate`` app."""

    @app.command("preview")
    def preview(
        materials: Path = typer.Argument(..., help="Materials folder written by `wanimate preprocess`."),
        output: Path = typer.Option(Path("preview.mp4"), "-o", "--output", help="Output mp4."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
        audio: bool = typer.Option(True, "--audio/--no-audio", help="Carry the driving video's audio."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    ) -> None:
        """Render a model-free CPU preview of a materials or cast folder: characters follow their skeletons."""
        from wanimate.cast.folder import is_cast_folder

        if is_cast_folder(materials):
            from wanimate.preview.cast import render_cast_preview

            path = render_cast_preview(materials, output, progress=progress, audio=audio, overwrite=overwrite)
            typer.echo(f"wrote {path}")
            return
        from wanimate.preview import render_preview

        path = render_preview(materials, output, progress=progress, audio=audio, overwrite=overwrite)
        typer.echo(f"wrote {path}")

    @bench_app.command("preview")
    def bench_preview(
        res: str = typer.Option("480p", help="Output height: 360p, 480p or 720p."),
        frames: int = typer.Option(90, min=2, help="Frames rendered per mode."),
        mode: str = typer.Option("both", help="animate, replace or both."),
    ) -> None:
        """Frames per second of the preview renderer per stage (rig build, warp, compositing, encode)."""
        import datetime

        from wanimate.bench.preview import bench_preview as run
        from wanimate.bench.preview import format_results, machine
        from wanimate.errors import WanimateError

        if mode not in ("animate", "replace", "both"):
            raise WanimateError(f"--mode must be animate, replace or both, not {mode!r}")
        modes = ("animate", "replace") if mode == "both" else (mode,)
        results = run(res, frames, modes)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        typer.echo(f"{now}; {machine()}; wanimate bench preview --res {res} --frames {frames} --mode {mode}\n")
        typer.echo(format_results(results))
