"""``run``: preprocessing then generation (or the preview renderer) in one work folder.

The materials are cached in the work folder under a key made of the inputs' content
and the preprocessing settings, so a second run with other generation settings skips
preprocessing; generation keeps its own resumable segments there too.
"""

from __future__ import annotations

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
from wanimate.hashing import file_sha256
from wanimate.materials.folder import Materials, load_materials
from wanimate.materials.layout import META_NAME
from wanimate.options import pixel_values
from wanimate.preprocess.settings import PreprocessSettings
from wanimate.run.backend import choose_backend
from wanimate.run.settings import RunSettings

if TYPE_CHECKING:
    from wanimate.generate.engine import ProgressEvent
    from wanimate.models.session import ModelSession


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


def materials_key(image: Path, video: Path, settings: PreprocessSettings) -> str:
    """Inputs' content + the preprocessing settings that change the materials: equal keys, equal folders."""
    payload = {
        "image": file_sha256(image),
        "video": file_sha256(video),
        "options": pixel_values(settings),
        "v": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def default_work_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}.wanimate")


def _prepare_materials(
    image: Path, video: Path, work: Path, settings: PreprocessSettings, notify: RunCallback, progress_bars: bool
) -> tuple[Materials, bool]:
    from wanimate.preprocess import preprocess

    folder = work / f"materials-{materials_key(image, video, settings)}"
    if (folder / META_NAME).is_file():
        return load_materials(folder), False
    shutil.rmtree(folder, ignore_errors=True)
    notify(RunEvent("preprocess", fraction=0.0, message="preprocessing"))
    materials = preprocess(image, video, folder, settings, progress=progress_bars)
    notify(RunEvent("preprocess", fraction=1.0, message="materials ready"))
    return materials, True


def run(
    image: str | Path,
    video: str | Path,
    output: str | Path,
    settings: RunSettings | None = None,
    *,
    compare: str | Path | None = None,
    work_dir: str | Path | None = None,
    fresh: bool = False,
    session: ModelSession | None = None,
    progress: RunCallback | None = None,
    progress_bars: bool = True,
    **options: Any,
) -> RunResult:
    """Character image + driving video → ``output`` (and the ``compare`` video when asked).

    ``settings`` (a :class:`RunSettings`) and/or ``options`` (any preprocessing, generation or
    run option by name, e.g. ``mode="replace", area=(832, 480), steps=20, backend="wan"``, applied
    on top) choose everything. ``session`` is a :class:`~wanimate.models.session.ModelSession` to
    reuse for the Wan renderer (the job server keeps one warm per GPU); by default one is loaded.
    """
    settings = RunSettings.of(settings, **options)
    image, video, output = resolve_input(image), resolve_input(video), Path(output)
    for label, path in (("character image", image), ("driving video", video)):
        if not path.is_file():
            raise WanimateError(f"{label} not found: {path}")
    if output.suffix.lower() != ".mp4":
        raise WanimateError(f"output must be an .mp4 file, not {output.name}")
    notify = progress or (lambda event: None)
    work = Path(work_dir) if work_dir else default_work_dir(output)
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    chosen = choose_backend(settings.backend, settings.generate.weights, settings.generate.device)

    materials, preprocessed = _prepare_materials(image, video, work, settings.preprocess, notify, progress_bars)

    if chosen == "wan":
        from wanimate.generate import generate
        from wanimate.generate.progress import RichProgress

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
        # Until the engine's first event: loading the model (none when a warm session holds it).
        notify(RunEvent("generate", fraction=0.0, message="load"))
        try:
            generate(
                materials,
                output,
                settings.generate,
                session=session,
                work_dir=work / "generate",
                resume=not fresh,
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
