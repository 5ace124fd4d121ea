"""``wanimate generate``: its options are the fields of :class:`GenerateSettings`.

``--model multianimate`` (or ``auto`` on N-character materials) builds
:class:`~wanimate.multianimate.settings.MultiAnimateSettings` from the same options instead: the
options the user did not type then take MultiAnimate's defaults (50 steps, CFG 1.5, 81 frames ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings, settings_class
from wanimate.options import expand
from wanimate.parallel.layout import ParallelSettings
from wanimate.paths import OutputSettings


def _chosen(arguments: dict[str, Any]) -> type[GenerateSettings]:
    return settings_class(arguments["model"], arguments["materials"])


def generate_command(
    materials: Path = typer.Argument(..., help="Materials folder (from `wanimate preprocess` or the official one)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    model: str = typer.Option(
        "auto", help="auto (from the materials), animate (Wan2.2-Animate-14B) or multianimate (several characters)."
    ),
    mode: str | None = typer.Option(None, help="animate or replace (default: the materials' mode)."),
    settings: GenerateSettings = None,  # type: ignore[assignment] (expanded into its options)
    save_frames: Path | None = typer.Option(None, help="Also write every frame as PNG into this folder."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse finished segments of an interrupted run."),
    work_dir: Path | None = typer.Option(None, help="Where finished segments are kept (default: <output stem>.work)."),
    keep_work: bool = typer.Option(False, help="Keep the work folder after the video is written."),
    files: OutputSettings = None,  # type: ignore[assignment] (expanded into --overwrite)
    parallel: ParallelSettings = None,  # type: ignore[assignment] (expanded into its options)
) -> None:
    """Generate a video from a materials folder, segment by segment (resumable); on several GPUs with --gpus.

    The defaults shown are Wan2.2-Animate's; with --model multianimate, steps 50, guidance 1.5, segment
    frames 81, its prompts and the Wan2.1-I2V base are the defaults.
    """
    from rich.console import Console

    from wanimate.cast.folder import is_cast_folder, load_cast
    from wanimate.generate.progress import RichProgress
    from wanimate.parallel.run import RankJob, run_generation

    if is_cast_folder(materials) and load_cast(materials).mode == "replace":
        from wanimate.cast.replace import generate_cast_replace

        if parallel.gpus > 1:
            raise WanimateError("a replace-mode cast runs its passes on one device; drop --gpus")
        with RichProgress() as progress:
            path = generate_cast_replace(
                materials,
                output,
                settings=settings,
                work_dir=work_dir,
                resume=resume,
                keep_work=keep_work,
                overwrite=files.overwrite,
                progress=progress,
            )
        Console(stderr=True).print(f"wrote {path}")
        return
    job = RankJob(
        materials=materials,
        output=output,
        settings=settings,
        parallel=parallel,
        mode=mode,
        work_dir=work_dir,
        resume=resume,
        keep_work=keep_work,
        save_frames=save_frames,
        overwrite=files.overwrite,
    )
    with RichProgress() as progress:
        path = run_generation(job, progress=progress)
    if path is not None:  # None on the ranks of a torchrun launch that do not write
        Console(stderr=True).print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("generate")(expand(choose=_chosen)(generate_command))
