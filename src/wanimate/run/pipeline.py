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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanimate import __version__
from wanimate.cast.run import CastOptions
from wanimate.cast.spec import CastInput
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


def _prepare_materials(
    image: Path, video: Path, work: Path, options: dict[str, Any], notify: RunCallback, progress_bars: bool
) -> tuple[Materials, bool]:
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
    image: str | Path | list[str | Path] | None,
    video: str | Path,
    output: str | Path,
    *,
    mode: str = "animate",
    backend: str = "auto",
    weights: str | None = None,
    compare: str | Path | None = None,
    work_dir: str | Path | None = None,
    fresh: bool = False,
    preprocess_options: dict[str, Any] | None = None,
    settings: GenerateSettings | None = None,
    progress: RunCallback | None = None,
    progress_bars: bool = True,
    cast: CastInput | None = None,
    cast_options: CastOptions | None = None,
    model: str = "auto",
    adapter: str = "auto",
) -> RunResult:
    """Character image + driving video → ``output`` (and the ``compare`` video when asked).

    ``cast`` (``{id: image}``, ``"ID=IMAGE"`` strings, or images assigned left to right) runs several
    characters (docs/cast.md); so does a list of more than one ``image``. ``weights`` defaults to the
    model's own (Wan2.2-Animate-14B; the Wan2.1-I2V base for MultiAnimate).
    """
    if isinstance(image, list | tuple):
        images = [resolve_input(i) for i in image]
        if len(images) > 1 and cast is not None:
            raise WanimateError("give the characters either as --cast ID=IMAGE or as repeated --image, not both")
        if len(images) > 1:
            image, cast = None, images
        else:
            image = images[0] if images else None
    video, output = resolve_input(video), Path(output)
    if output.suffix.lower() != ".mp4":
        raise WanimateError(f"output must be an .mp4 file, not {output.name}")
    if cast is not None and image is not None:
        raise WanimateError("give the characters either as --cast ID=IMAGE or as --image, not both")
    if cast is not None:
        return _run_cast(
            cast,
            video,
            output,
            mode=mode,
            backend=backend,
            weights=weights,
            compare=compare,
            work_dir=work_dir,
            fresh=fresh,
            settings=settings,
            progress=progress,
            progress_bars=progress_bars,
            cast_options=cast_options,
            model=model,
            adapter=adapter,
        )
    if image is None:
        raise WanimateError("give a character image (--image), or several characters with --cast ID=IMAGE")
    image = resolve_input(image)
    for label, path in (("character image", image), ("driving video", video)):
        if not path.is_file():
            raise WanimateError(f"{label} not found: {path}")
    if model == "multianimate":
        raise WanimateError("--model multianimate animates several characters: give them with --cast ID=IMAGE")
    weights = weights or DEFAULT_WEIGHTS
    settings = dataclasses.replace(settings or GenerateSettings(), mode=mode)  # type: ignore[arg-type]
    settings.validate()
    notify = progress or (lambda event: None)
    work = _work_folder(output, work_dir, fresh)
    chosen = choose_backend(backend, weights, settings.device)

    options = {"mode": mode, **(preprocess_options or {})}
    materials, preprocessed = _prepare_materials(image, video, work, options, notify, progress_bars)

    if chosen == "wan":
        from wanimate.generate import generate

        with _generate_progress(notify, progress_bars) as forward:
            generate(
                materials,
                output,
                settings=settings,
                weights=weights,
                work_dir=work / "generate",
                resume=not fresh,
                progress=forward,
            )
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


def _work_folder(output: Path, work_dir: str | Path | None, fresh: bool) -> Path:
    work = Path(work_dir) if work_dir else default_work_dir(output)
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    return work


@contextmanager
def _generate_progress(notify: RunCallback, progress_bars: bool) -> Iterator[Callable[[ProgressEvent], None]]:
    """Generation's progress as run events, and as rich bars on a terminal."""
    from wanimate.generate.progress import RichProgress

    bars = RichProgress() if progress_bars else None

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

    if bars is None:
        yield forward
        return
    with bars:
        yield forward


def _run_cast(
    cast: CastInput,
    video: Path,
    output: Path,
    *,
    mode: str,
    backend: str,
    weights: str | None,
    compare: str | Path | None,
    work_dir: str | Path | None,
    fresh: bool,
    settings: GenerateSettings | None,
    progress: RunCallback | None,
    progress_bars: bool,
    cast_options: CastOptions | None,
    model: str,
    adapter: str,
) -> RunResult:
    """Several characters: the cast folder, then the preview or the model for the mode (docs/cast.md)."""
    from wanimate.cast.run import check_cast, prepare_cast, render_cast
    from wanimate.multianimate.loading import DEFAULT_BASE

    if not video.is_file():
        raise WanimateError(f"driving video not found: {video}")
    if compare is not None:
        raise WanimateError("--compare shows one character beside its driver; it is not available with --cast")
    settings = dataclasses.replace(settings or GenerateSettings(), mode=mode)  # type: ignore[arg-type]
    settings.validate()
    cast_options = cast_options or CastOptions()
    default = DEFAULT_BASE if mode == "animate" else DEFAULT_WEIGHTS
    chosen = choose_backend(backend, weights or default, settings.device)
    used_adapter = adapter if chosen == "wan" else "auto"  # the preview loads no checkpoint
    request = check_cast(cast, mode=mode, model=model, adapter=used_adapter, options=cast_options)
    notify = progress or (lambda event: None)
    work = Path(work_dir) if work_dir else default_work_dir(output)
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    existed = work.exists()
    notify(RunEvent("preprocess", fraction=0.0, message="preparing the cast"))
    try:
        folder, written = prepare_cast(
            request,
            video,
            work,
            mode=mode,
            options=cast_options,
            progress=progress_bars,
            notify=lambda message: notify(RunEvent("preprocess", message=message)),
        )
    except WanimateError:
        if not existed:  # a cast refused once the people are known leaves nothing behind
            shutil.rmtree(work, ignore_errors=True)
        raise
    notify(RunEvent("preprocess", fraction=1.0, message="cast ready"))
    if chosen == "preview":
        notify(RunEvent("preview", fraction=0.0, message="rendering the cast preview"))
    with _generate_progress(notify, progress_bars and chosen == "wan") as forward:
        render_cast(
            folder,
            output,
            backend=chosen,
            weights=weights,
            adapter=adapter,
            settings=settings,
            work=work,
            resume=not fresh,
            progress=forward,
            progress_bars=progress_bars,
        )
    notify(RunEvent("done", fraction=1.0))
    return RunResult(output=output, compare=None, backend=chosen, materials=folder.root, preprocessed=written)
