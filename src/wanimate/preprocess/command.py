"""``wanimate preprocess``: its options are the fields of :class:`PreprocessSettings`.

mediapipe, OpenCV and PyAV are imported inside the command body so ``wanimate --help``
stays instant.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from wanimate.options import expand
from wanimate.preprocess.settings import PreprocessSettings


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send C++ log chatter (MediaPipe/TFLite write dozens of lines to fd 2) to /dev/null.

    Python's own stderr (progress, notices, warnings, errors) keeps the real terminal via a
    duplicate of fd 2. Skipped under ``--debug`` and when stderr is not a real file
    descriptor (e.g. captured by a test), where there is nothing to untangle.
    """
    try:
        real_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        real_fd = -1
    from wanimate.cli import debug_enabled

    if real_fd != 2 or debug_enabled():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


def preprocess_command(
    image: str = typer.Option(
        ..., "--image", help="Character image (PNG/JPEG; transparency goes black), or example:astronaut."
    ),
    video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
    output: Path = typer.Option(..., "-o", "--output", help="Materials folder to create."),
    settings: PreprocessSettings = None,  # type: ignore[assignment] (expanded into its options)
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing materials folder."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Character image + driving video -> a materials folder for `wanimate generate`."""
    from wanimate.examples import resolve_input
    from wanimate.preprocess.pipeline import preprocess

    with native_stderr_silenced():
        materials = preprocess(
            resolve_input(image), resolve_input(video), output, settings, overwrite=overwrite, progress=not quiet
        )
    meta = materials.meta
    typer.echo(
        f"wrote {materials.root} ({meta.mode}, {meta.width}x{meta.height}, {meta.num_frames} frames "
        f"at {meta.fps:g} fps)"
    )


def register(app: typer.Typer) -> None:
    app.command("preprocess")(expand()(preprocess_command))
