"""``wanimate preprocess`` and ``wanimate bench preprocess``.

mediapipe, OpenCV and PyAV are imported inside the command bodies so ``wanimate --help``
stays instant.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from wanimate.errors import WanimateError


def parse_fps(text: str) -> float | None:
    if text.strip().lower() == "source":
        return None
    try:
        value = float(text)
    except ValueError:
        raise WanimateError(f"--fps must be a number or 'source', not {text!r}") from None
    if value <= 0:
        raise WanimateError(f"--fps must be positive, not {text}")
    return value


def parse_person(text: str) -> str | int:
    if text.strip().lower() == "auto":
        return "auto"
    if not text.strip().isdigit():
        raise WanimateError(f"--person must be 'auto' or a number (0 = leftmost), not {text!r}")
    return int(text)


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


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command("preprocess")
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
        background: str = typer.Option(
            "image", "--background", help="Cast: reference background: image (first character's), neutral, a file."
        ),
        cast_order: str = typer.Option("depth", "--cast-order", help="Cast: back to front by depth or by id."),
        video: str = typer.Option(..., "--video", help="Driving video, or example:carphone."),
        output: Path = typer.Option(..., "-o", "--output", help="Materials folder to create."),
        mode: str = typer.Option(
            "animate", "--mode", help="animate: move the character; replace: put it in the video."
        ),
        retarget: bool = typer.Option(
            True,
            "--retarget/--no-retarget",
            help="Rescale the driver's bones to the character (animate only).",
        ),
        fps: str = typer.Option("source", "--fps", help="Output frame rate, or 'source' to keep the video's."),
        area: str = typer.Option(
            "1280x720", "--area", help="Target pixel area WxH; aspect kept, sides multiples of 16."
        ),
        backend: str = typer.Option("mediapipe", "--backend", help="Pose backend: mediapipe (bundled) or vitpose."),
        models_dir: Path | None = typer.Option(
            None, "--models-dir", help="Official process_checkpoint folder (vitpose backend)."
        ),
        person: str = typer.Option("auto", "--person", help="auto (main performer) or N (0 = leftmost)."),
        smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Temporal smoothing of keypoints."),
        preview: bool = typer.Option(False, "--preview", help="Also write preview.mp4 (all materials side by side)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing materials folder."),
        mask_iterations: int = typer.Option(3, "--mask-iterations", help="Mask dilation iterations (replace)."),
        mask_k: int = typer.Option(7, "--mask-k", help="Mask dilation kernel size (replace)."),
        mask_w_len: int = typer.Option(1, "--mask-w-len", help="Mask bbox grid columns; 1 = full rectangle."),
        mask_h_len: int = typer.Option(1, "--mask-h-len", help="Mask bbox grid rows; 1 = full rectangle."),
        pose_workers: int = typer.Option(0, "--pose-workers", help="Pose backends run in parallel; 0 = automatic."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    ) -> None:
        """Character image + driving video -> a materials folder for `wanimate generate`."""
        from wanimate.examples import resolve_input
        from wanimate.preprocess.pipeline import preprocess
        from wanimate.preprocess.sizing import parse_area

        if mode not in ("animate", "replace"):
            raise WanimateError(f"--mode must be 'animate' or 'replace', not {mode!r}")
        images = [resolve_input(i) for i in image or []]
        if cast or len(images) > 1 or model == "multianimate":
            _preprocess_cast(
                cast,
                images,
                video,
                output,
                mode,
                model,
                background,
                cast_order,
                retarget,
                fps,
                area,
                backend,
                overwrite,
                quiet,
            )
            return
        if model not in ("auto", "animate"):
            raise WanimateError(f"--model must be auto, animate or multianimate, not {model!r}")
        if not images:
            raise WanimateError("give a character image (--image), or several characters with --cast ID=IMAGE")
        options = {
            "mode": mode,
            "retarget": retarget,
            "fps": parse_fps(fps),
            "area": parse_area(area),
            "backend": backend,
            "models_dir": models_dir,
            "person": parse_person(person),
            "smooth": smooth,
            "preview": preview,
            "mask_iterations": mask_iterations,
            "mask_k": mask_k,
            "mask_w_len": mask_w_len,
            "mask_h_len": mask_h_len,
            "pose_workers": pose_workers,
            "overwrite": overwrite,
            "progress": not quiet,
        }
        with native_stderr_silenced():
            materials = preprocess(images[0], resolve_input(video), output, **options)
        meta = materials.meta
        typer.echo(
            f"wrote {materials.root} ({meta.mode}, {meta.width}x{meta.height}, {meta.num_frames} frames "
            f"at {meta.fps:g} fps)"
        )

    def _preprocess_cast(
        cast: list[str] | None,
        images: list[Path],
        video: str,
        output: Path,
        mode: str,
        model: str,
        background: str,
        cast_order: str,
        retarget: bool,
        fps: str,
        area: str,
        backend: str,
        overwrite: bool,
        quiet: bool,
    ) -> None:
        from wanimate.cast.run import CastOptions, preprocess_cast
        from wanimate.preprocess.sizing import parse_area

        if cast and images:
            raise WanimateError("give the characters either as --cast ID=IMAGE or as repeated --image, not both")
        if not cast and not images:
            raise WanimateError("--model multianimate needs its characters: --cast ID=IMAGE (repeat it)")
        options = CastOptions(
            background=background,
            order=cast_order,
            retarget=retarget,
            fps=parse_fps(fps),
            area=parse_area(area),
            pose_backend=backend,
        )
        with native_stderr_silenced():
            folder = preprocess_cast(
                cast or images,
                video,
                output,
                mode=mode,
                model=model,
                options=options,
                overwrite=overwrite,
                progress=not quiet,
            )
        ids = ", ".join(f"{i + 1}={m.person}" for i, m in enumerate(folder.members))
        typer.echo(
            f"wrote {folder.root} (a {mode}-mode cast for {folder.model}: characters {ids}; {folder.width}x"
            f"{folder.height}, {folder.num_frames} frames at {folder.fps:g} fps)"
        )

    @bench_app.command("preprocess")
    def bench_preprocess(
        seconds: float = typer.Option(10.0, "--seconds", help="Length of the 720p test clip."),
        mode: str = typer.Option("animate", "--mode", help="animate or replace."),
        memory: bool = typer.Option(True, "--memory/--no-memory", help="Also compare peak RSS of 60 s vs 10 s."),
    ) -> None:
        """Per-stage and end-to-end frames/s plus peak RSS on a 720p clip made from package media."""
        from wanimate.bench.preprocess import format_report, run_benchmark

        if mode not in ("animate", "replace"):
            raise WanimateError(f"--mode must be 'animate' or 'replace', not {mode!r}")
        typer.echo(format_report(run_benchmark(seconds=seconds, mode=mode, memory=memory)))
