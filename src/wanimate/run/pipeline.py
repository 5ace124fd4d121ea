"""``run``: preprocessing then generation (or the preview renderer) in one work folder.

The materials are cached in the work folder under a key made of the inputs' content
and the preprocessing options, so a second run with other generation settings skips
preprocessing; generation keeps its own resumable segments there too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanimate import __version__
from wanimate.errors import WanimateError
from wanimate.examples import resolve_input
from wanimate.generate.settings import DEFAULT_WEIGHTS, GenerateSettings
from wanimate.hashing import file_sha256
from wanimate.materials import Materials, load_materials
from wanimate.run.backend import choose_backend

if TYPE_CHECKING:
    from wanimate.generate.engine import ProgressEvent


@dataclass(frozen=True)
class RunEvent:
    stage: str  # preprocess | generate | preview | compare | done
    fraction: float | None = None
    segment: int = 0
    num_segments: int = 0
    step: int = 0
    num_steps: int = 0
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    output: Path
    compare: Path | None
    backend: str
    materials: Path
    preprocessed: bool  # False when cached materials were reused


RunCallback = Callable[[RunEvent], None]


def materials_key(image: Path, video: Path, options: dict[str, Any]) -> str:
    payload = {"image": file_sha256(image), "video": file_sha256(video), "options": options, "v": __version__}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_work_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}.wanimate")


def prepare_materials(
    image: Path, video: Path, work: Path, options: dict[str, Any], notify: RunCallback, progress_bars: bool
) -> tuple[Materials, bool]:
    """The materials for these inputs and options in ``work``: cached when present, else preprocessed now.

    ``options`` includes the mode. A batch runs this as its own CPU task before the GPU task's
    ``run`` finds the folder cached.
    """
    from wanimate.preprocess import preprocess

    folder = work / f"materials-{materials_key(image, video, options)}"
    if (folder / "meta.json").is_file():
        return load_materials(folder), False
    shutil.rmtree(folder, ignore_errors=True)
    notify(RunEvent("preprocess", fraction=0.0, message="preprocessing"))
    materials = preprocess(image, video, folder, progress=progress_bars, **options)
    notify(RunEvent("preprocess", fraction=1.0, message="materials ready"))
    return materials, True


def run(
    image: str | Path,
    video: str | Path,
    output: str | Path,
    *,
    mode: str = "animate",
    backend: str = "auto",
    weights: str = DEFAULT_WEIGHTS,
    compare: str | Path | None = None,
    work_dir: str | Path | None = None,
    fresh: bool = False,
    preprocess_options: dict[str, Any] | None = None,
    settings: GenerateSettings | None = None,
    progress: RunCallback | None = None,
    progress_bars: bool = True,
    gpus: int = 1,
) -> RunResult:
    """Character image + driving video → ``output`` (and the ``compare`` video when asked).

    ``gpus`` above 1 generates on that many ranks of this machine (``wanimate.parallel``).
    """
    image, video, output = resolve_input(image), resolve_input(video), Path(output)
    for label, path in (("character image", image), ("driving video", video)):
        if not path.is_file():
            raise WanimateError(f"{label} not found: {path}")
    if output.suffix.lower() != ".mp4":
        raise WanimateError(f"output must be an .mp4 file, not {output.name}")
    settings = dataclasses.replace(settings or GenerateSettings(), mode=mode)  # type: ignore[arg-type]
    settings.validate()
    notify = progress or (lambda event: None)
    work = Path(work_dir) if work_dir else default_work_dir(output)
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    chosen = choose_backend(backend, weights, settings.device)

    options = {"mode": mode, **(preprocess_options or {})}
    materials, preprocessed = prepare_materials(image, video, work, options, notify, progress_bars)

    if chosen == "wan":
        from wanimate.generate.progress import RichProgress
        from wanimate.parallel.layout import ParallelSettings
        from wanimate.parallel.run import RankJob, run_generation

        def forward(event: ProgressEvent) -> None:
            total = max(event.num_segments * event.num_steps, 1)
            done = event.segment * event.num_steps + event.step
            notify(
                RunEvent(
                    "generate",
                    fraction=done / total,
                    segment=event.segment,
                    num_segments=event.num_segments,
                    step=event.step,
                    num_steps=event.num_steps,
                    message=event.stage,
                )
            )
            if bars is not None:
                bars(event)

        bars = RichProgress() if progress_bars else None
        if bars is not None:
            bars.__enter__()
        try:
            run_generation(
                RankJob(
                    materials.root,
                    output,
                    settings,
                    ParallelSettings(gpus=gpus),
                    weights=weights,
                    work_dir=work / "generate",
                    resume=not fresh,
                ),
                progress=forward,
            )
        finally:
            if bars is not None:
                bars.__exit__(None, None, None)
    else:
        from wanimate.preview import render_preview

        notify(RunEvent("preview", fraction=0.0, message="rendering preview"))
        render_preview(materials, output, progress=progress_bars)

    compare_path = Path(compare) if compare else None
    if compare_path is not None:
        from wanimate.run.compare import write_compare

        notify(RunEvent("compare", message="writing the comparison video"))
        write_compare(video, materials, output, compare_path, still=compare_path.with_suffix(".png"))
    notify(RunEvent("done", fraction=1.0))
    return RunResult(
        output=output, compare=compare_path, backend=chosen, materials=materials.root, preprocessed=preprocessed
    )
