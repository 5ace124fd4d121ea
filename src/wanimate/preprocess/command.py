"""``wanimate preprocess`` and ``wanimate bench preprocess``.

mediapipe, OpenCV and PyAV are imported inside the command bodies so ``wanimate --help``
stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from wanimate.errors import WanimateError

if TYPE_CHECKING:
    from wanimate.cast.run import CastOptions


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
        raise WanimateError(
            f"--person must be 'auto' or a person id (0 = leftmost; see `wanimate people`), not {text!r}"
        )
    return int(text)


def parse_point(text: str | None) -> tuple[float, float] | None:
    """``"320,180"`` -> (320.0, 180.0): a pixel of the driving video."""
    if text is None:
        return None
    parts = text.replace(" ", "").split(",")
    try:
        x, y = (float(v) for v in parts)
    except ValueError:
        raise WanimateError(f"--person-at must be X,Y in video pixels (e.g. 320,180), not {text!r}") from None
    if x < 0 or y < 0:
        raise WanimateError(f"--person-at must be X,Y in video pixels (0 or more), not {text!r}")
    return x, y


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
            "1280x720", "--area", help="Target pixel area WxH (or 480p, 720p); aspect kept, sides multiples of 16."
        ),
        backend: str = typer.Option("mediapipe", "--backend", help="Pose backend: mediapipe (bundled) or vitpose."),
        models_dir: Path | None = typer.Option(
            None, "--models-dir", help="Official process_checkpoint folder (vitpose backend)."
        ),
        person: str = typer.Option(
            "auto", "--person", help="People: auto (main performer) or an id from `wanimate people` (0 = leftmost)."
        ),
        person_at: str | None = typer.Option(
            None, "--person-at", help="People: the performer is the person at X,Y (video pixels) in their first frame."
        ),
        max_people: int = typer.Option(8, "--max-people", help="People: at most this many followed at once."),
        finder: str = typer.Option(
            "tiles", "--finder", help="People: tiles (every size) or single (faster, large people only)."
        ),
        people_media: bool = typer.Option(
            False, "--people-media", help="People: also write every person's masks (people_masks.mp4) and face crops."
        ),
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
        images = image or []
        if cast or len(images) > 1 or model == "multianimate":
            from wanimate.cast.run import CastOptions

            cast_options = CastOptions(
                background=background,
                order=cast_order,
                retarget=retarget,
                fps=parse_fps(fps),
                area=parse_area(area),
                pose_backend=backend,
                max_people=max_people,
                finder=finder,
            )
            _preprocess_cast(cast, images, video, output, mode, model, cast_options, overwrite, quiet)
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
            "person_at": parse_point(person_at),
            "max_people": max_people,
            "finder": finder,
            "people_media": people_media,
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
        materials = preprocess(resolve_input(images[0]), resolve_input(video), output, **options)
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
        mode: str,
        model: str,
        options: CastOptions,
        overwrite: bool,
        quiet: bool,
    ) -> None:
        from wanimate.cast.run import preprocess_cast

        if cast and images:
            raise WanimateError("give the characters either as --cast ID=IMAGE or as repeated --image, not both")
        if not cast and not images:
            raise WanimateError("--model multianimate needs its characters: --cast ID=IMAGE (repeat it)")
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

    @app.command("people")
    def people_command(
        video: str = typer.Argument(..., help="Driving video, or example:crowd."),
        sheet: Path | None = typer.Option(
            None, "-o", "--sheet", help="Contact sheet PNG to write (default: VIDEO's name + .people.png here)."
        ),
        fps: str = typer.Option("source", "--fps", help="Frame rate to sample at, as preprocess --fps."),
        max_people: int = typer.Option(8, "--max-people", help="At most this many followed at once."),
        finder: str = typer.Option("tiles", "--finder", help="tiles (every size) or single (large people only)."),
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
                path, target, fps=parse_fps(fps), max_people=max_people, finder=finder, progress=not quiet
            )
        for line in lines:
            typer.echo(line)
        typer.echo(f"wrote {target}")

    @bench_app.command("preprocess")
    def bench_preprocess(
        seconds: float = typer.Option(10.0, "--seconds", help="Length of the 720p test clip."),
        mode: str = typer.Option("animate", "--mode", help="animate or replace."),
        memory: bool = typer.Option(True, "--memory/--no-memory", help="Also compare peak RSS of 60 s vs 10 s."),
        compare: bool = typer.Option(
            True, "--compare/--no-compare", help="Also run the earlier single-person finder on the same clip."
        ),
        clip: str = typer.Option("carphone", "--clip", help="carphone (one performer) or crowd (four people)."),
    ) -> None:
        """Per-stage and end-to-end frames/s plus peak RSS on a 720p clip made from package media."""
        from wanimate.bench.preprocess import format_report, run_benchmark

        if mode not in ("animate", "replace"):
            raise WanimateError(f"--mode must be 'animate' or 'replace', not {mode!r}")
        typer.echo(format_report(run_benchmark(seconds=seconds, mode=mode, memory=memory, compare=compare, clip=clip)))
