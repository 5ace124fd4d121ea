"""``wanimate eval`` (its benchmark, ``wanimate bench quality``, lives in ``wanimate.bench.command``)."""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.errors import WanimateError


def eval_command(
    outputs: list[Path] = typer.Argument(..., help="Output video(s); several are compared side by side."),
    materials: Path | None = typer.Option(None, help="Materials folder the output was generated from (exact)."),
    video: Path | None = typer.Option(None, help="Driving video (with --image), when there are no materials."),
    image: Path | None = typer.Option(None, help="Character image (with --video; overrides the materials' one)."),
    ground_truth: Path | None = typer.Option(None, help="Ground-truth video (self-driven runs): SSIM, PSNR, FVD."),
    segment_frames: int | None = typer.Option(None, help="Segment length the output was made with (seams)."),
    overlap: int = typer.Option(1, help="Overlap frames between segments (with --segment-frames)."),
    work_dir: Path | None = typer.Option(
        None, help="Generation work folder with the saved segments (default: <output stem>.work if present)."
    ),
    report: Path | None = typer.Option(
        None, "-o", "--report", help="Report .json (the .html goes beside it). Default: <output>.eval.json."
    ),
    identity: str = typer.Option("auto", help="auto (face, else appearance), face or appearance."),
    fvd: bool = typer.Option(True, "--fvd/--no-fvd", help="FVD with the ground truth (I3D on CPU: ~0.7 s a clip)."),
) -> None:
    """Measure motion and expression fidelity, identity, drift, flicker and seams of output videos."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from wanimate.bench import print_metrics
    from wanimate.evaluate.compare import compare
    from wanimate.evaluate.pipeline import EvalOptions

    if identity not in ("auto", "face", "appearance"):
        raise WanimateError(f"--identity must be auto, face or appearance, not {identity!r}")
    options = EvalOptions(identity=identity, fvd=fvd)  # type: ignore[arg-type]
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:

        def on_video(path: Path):
            task = bar.add_task(f"eval {path.name}", total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        result, json_path, html_path = compare(
            outputs,
            report=report,
            options=options,
            on_video=on_video,
            materials=materials,
            video=video,
            image=image,
            ground_truth=ground_truth,
            segment_frames=segment_frames,
            overlap=overlap,
            work_dir=work_dir,
        )
    if "table" in result:
        from rich.table import Table

        table = Table(title="wanimate eval")
        table.add_column("metric")
        for name in result["names"]:
            table.add_column(name, justify="right")
        for key, values in result["table"].items():
            table.add_row(key, *(f"{v:.4g}" if isinstance(v, float) else str(v) for v in values))
        Console().print(table)
    else:
        print_metrics(f"wanimate eval {outputs[0].name}", result["summary"])
    Console(stderr=True).print(f"wrote {json_path} and {html_path}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
