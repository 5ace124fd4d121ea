"""Several outputs of the same materials side by side: one table, one page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from wanimate.errors import WanimateError
from wanimate.evaluate.page import render_page
from wanimate.evaluate.pipeline import FORMAT, FORMAT_VERSION, EvalOptions, evaluate
from wanimate.evaluate.report import check_writable, default_report_path, write_reports
from wanimate.paths import check_apart, output_file


def display_names(paths: Sequence[Path]) -> list[str]:
    """File stems, or parent/stem where stems repeat."""
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def _check_paths(outputs: list[Path], json_path: Path, sources: dict) -> None:
    """Before any frame is read: the report can be written, and writing it cannot touch an input."""
    html_path = json_path.with_suffix(".html")
    check_writable(json_path, html_path)
    for path in (json_path, html_path):
        output_file(path, "--report", overwrite=True, suffix=None)
    inputs = {f"output video {p.name}": p for p in outputs}
    inputs |= {name.replace("_", " "): sources.get(name) for name in ("materials", "video", "image", "ground_truth")}
    check_apart(inputs, {"--report": json_path, "the report page": html_path})


def compare(
    outputs: Sequence[str | Path],
    *,
    report: str | Path | None = None,
    options: EvalOptions = EvalOptions(),
    on_video: Callable[[Path], Callable[[int, int], None] | None] | None = None,
    **sources,
) -> tuple[dict, Path, Path]:
    """Evaluate each output against the same sources, then write one JSON report and one page.

    With one output this is the plain evaluation; with several the JSON holds every report
    and a ``table`` of their summaries, column by column.
    """
    paths = [Path(p) for p in outputs]
    if not paths:
        raise WanimateError("give at least one output video to evaluate")
    if len(set(paths)) != len(paths):
        raise WanimateError("the same output video is given twice")
    if len(paths) > 1 and sources.get("work_dir"):
        raise WanimateError("--work-dir names one output's segments; with several outputs use --segment-frames")
    json_path = Path(report) if report else default_report_path(paths[0], several=len(paths) > 1)
    if json_path.suffix != ".json":
        raise WanimateError(f"--report must end in .json, not {json_path.name}")
    _check_paths(paths, json_path, sources)
    done = [evaluate(p, options=options, progress=on_video(p) if on_video else None, **sources) for p in paths]
    reports = [e.report for e in done]
    names = display_names(paths)
    if len(reports) == 1:
        result = reports[0]
        title = f"wanimate eval: {names[0]}"
    else:
        keys = list(dict.fromkeys(k for r in reports for k in r["summary"]))
        result = {
            "format": f"{FORMAT}-compare",
            "format_version": FORMAT_VERSION,
            "names": names,
            "table": {k: [r["summary"].get(k) for r in reports] for k in keys},
            "videos": reports,
        }
        title = "wanimate eval: " + " vs ".join(names)
    json_out, html_out = write_reports(result, json_path, render_page(reports, [e.tiles for e in done], names, title))
    return result, json_out, html_out
