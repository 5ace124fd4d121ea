"""``wanimate preprocess`` and ``wanimate bench preprocess``.

mediapipe, OpenCV and PyAV are imported inside the command bodies so ``wanimate --help``
stays instant.
"""

from __future__ import annotations

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


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    @app.command("preprocess")
    def preprocess_command(
        image: str = typer.Option(
            ..., "--image", help="Character image (PNG/JPEG; transparency goes black), or example:astronaut."
        ),
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
            "1280x720", "--area", help="Target pixel area WxH (or 480p, 720p); aspect kept, sides multiples of 16."
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
        materials = preprocess(resolve_input(image), resolve_input(video), output, **options)
        meta = materials.meta
        typer.echo(
            f"wrote {materials.root} ({meta.mode}, {meta.width}x{meta.height}, {meta.num_frames} frames "
            f"at {meta.fps:g} fps)"
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
