"""``run``: preprocessing then generation (or the preview renderer) in one work folder.

The materials are cached in the work folder under a key made of the inputs' content
and the preprocessing settings, so a second run with other generation settings skips
preprocessing; generation keeps its own resumable segments there too. Every check that
needs no model (paths, options, the inputs' headers, the model's size limits) runs
before preprocessing starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanimate import __version__
from wanimate.cast.spec import CastInput
from wanimate.devices import check_device, check_device_syntax
from wanimate.errors import WanimateError
from wanimate.examples import resolve_input
from wanimate.generate.settings import check_model
from wanimate.hashing import file_sha256
from wanimate.image import image_size
from wanimate.materials.folder import Materials, load_materials
from wanimate.materials.layout import META_NAME
from wanimate.models.limits import known_limits
from wanimate.options import pixel_values
from wanimate.paths import check_apart, input_file, os_faults, output_file
from wanimate.preprocess.settings import PreprocessSettings
from wanimate.run.backend import check_weights, choose_backend
from wanimate.run.settings import RunSettings
from wanimate.workdir import MATERIALS_LAYOUT, WorkDir, default_work_dir, remove_tree_if_owned

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


def prepare_materials(
    image: Path, video: Path, work: WorkDir, settings: PreprocessSettings, notify: RunCallback, progress_bars: bool
) -> tuple[Materials, bool]:
    """The materials for these inputs and settings in ``work``: cached when present, else preprocessed now.

    A batch runs this as its own CPU task before the GPU task's ``run`` finds the folder cached.
    """
    from wanimate.preprocess import preprocess

    folder = work.child(f"materials-{materials_key(image, video, settings)}")
    if (folder / META_NAME).is_file():
        return load_materials(folder), False
    remove_tree_if_owned(folder, MATERIALS_LAYOUT)  # an incomplete folder (no meta.json) is never reused
    notify(RunEvent("preprocess", fraction=0.0, message="preprocessing"))
    materials = preprocess(image, video, folder, settings, progress=progress_bars)
    notify(RunEvent("preprocess", fraction=1.0, message="materials ready"))
    return materials, True


@dataclass(frozen=True)
class _Plan:
    """Everything ``run`` checked before touching a model: inputs, outputs and the backend."""

    image: Path
    video: Path
    output: Path
    compare: Path | None
    still: Path | None
    work: WorkDir
    backend: str
    settings: RunSettings


def _plan(
    image: str | Path,
    video: str | Path,
    output: str | Path,
    settings: RunSettings,
    *,
    compare: str | Path | None,
    work_dir: str | Path | None,
    overwrite: bool,
) -> _Plan:
    """The cheap checks first (paths, the files' headers), torch and weights only after them."""
    from wanimate.preprocess.sizing import output_size
    from wanimate.video import probe_video

    image_path = input_file(resolve_input(image), "character image")
    video_path = input_file(resolve_input(video), "driving video")
    output_path = output_file(output, "-o", overwrite=overwrite)
    compare_path = output_file(compare, "--compare", overwrite=overwrite) if compare else None
    still = None
    if compare_path is not None:
        still = output_file(compare_path.with_suffix(".png"), "--compare's still", overwrite=overwrite, suffix=".png")
    generate = settings.generate
    generate = dataclasses.replace(generate, device=check_device_syntax(generate.device))
    settings = dataclasses.replace(settings, generate=generate)
    work = WorkDir(work_dir if work_dir else default_work_dir(output_path), explicit=work_dir is not None)
    weights = generate.weights
    local_weights = Path(weights).expanduser() if not weights.startswith("random:") else None
    check_apart(
        {
            "character image": image_path,
            "driving video": video_path,
            "--weights": local_weights if local_weights is not None and local_weights.exists() else None,
        },
        {"-o": output_path, "--compare": compare_path, "--compare's still": still, "the work folder": work.path},
    )
    image_wh = image_size(image_path)
    video_info = probe_video(video_path)  # a broken or empty video fails here, in milliseconds
    chosen = choose_backend(settings.backend, weights, generate.device)
    if chosen == "wan":
        check_device(generate.device)
        check_weights(weights)
        limits = known_limits(weights)
        if limits is not None:
            mode, area = settings.preprocess.mode, settings.preprocess.area
            width, height = output_size(mode, image_wh, (video_info.width, video_info.height), area)
            limits.check(width, height, generate.segment_frames)
    return _Plan(image_path, video_path, output_path, compare_path, still, work, chosen, settings)


def characters_of(
    image: str | Path | list[str | Path] | None, cast: CastInput | None
) -> tuple[str | Path | None, CastInput | None]:
    """One character image, or a cast: repeated images are a cast assigned left to right."""
    if isinstance(image, list | tuple):
        if len(image) > 1 and cast is not None:
            raise WanimateError("give the characters either as --cast ID=IMAGE or as repeated --image, not both")
        image, cast = (None, list(image)) if len(image) > 1 else (image[0] if image else None, cast)
    if cast is not None and image is not None:
        raise WanimateError("give the characters either as --cast ID=IMAGE or as --image, not both")
    return image, cast


def multianimate_run(mode: str, model: str, characters: int, cast: bool) -> bool:
    """Whether a run renders with MultiAnimate: a cast (or several images) in animate mode, unless told not to."""
    return mode == "animate" and (cast or characters > 1) and model in ("auto", "multianimate")


def cast_run_settings(settings: RunSettings | None, options: dict[str, Any]) -> RunSettings:
    """A cast's run settings: in animate mode the generation's are MultiAnimate's (its defaults under
    whatever was set)."""
    from wanimate.cast.run import multianimate_settings
    from wanimate.generate.settings import GenerateSettings
    from wanimate.multianimate.settings import MultiAnimateSettings

    mode = options.get("mode", settings.preprocess.mode if settings is not None else "animate")
    if mode != "animate":
        return RunSettings.of(settings, **options)
    base = settings or RunSettings(generate=MultiAnimateSettings())
    base = dataclasses.replace(base, generate=multianimate_settings(base.generate))
    built = RunSettings.of(base, **options)
    generate = built.generate
    if generate.weights == GenerateSettings().weights:  # one character's default: MultiAnimate has its own base
        generate = dataclasses.replace(generate, weights=MultiAnimateSettings().weights)
    return dataclasses.replace(built, generate=generate)


def run(
    image: str | Path | list[str | Path] | None,
    video: str | Path,
    output: str | Path,
    settings: RunSettings | None = None,
    *,
    cast: CastInput | None = None,
    model: str = "auto",
    compare: str | Path | None = None,
    work_dir: str | Path | None = None,
    fresh: bool = False,
    overwrite: bool = False,
    session: ModelSession | None = None,
    progress: RunCallback | None = None,
    progress_bars: bool = True,
    **options: Any,
) -> RunResult:
    """Character image + driving video → ``output`` (and the ``compare`` video when asked).

    ``settings`` (a :class:`RunSettings`) and/or ``options`` (any preprocessing, generation, parallel,
    cast or run option by name, e.g. ``mode="replace", area=(832, 480), steps=20, backend="wan"``,
    applied on top) choose everything. Every video written carries the driving video's audio, cut
    to its length, unless ``audio=False``. Existing outputs are replaced only with ``overwrite``;
    the work folder (default ``<output stem>.work``) keeps the materials for the next run, and only
    wanimate's own files in it are ever deleted. ``gpus`` above 1 generates on that many ranks of
    this machine (``wanimate.parallel``). ``session`` is a
    :class:`~wanimate.models.session.ModelSession` to reuse for the Wan renderer on one device (the
    job server keeps one warm per GPU); by default one is loaded.

    ``cast`` (``{id: image}``, ``"ID=IMAGE"`` strings, or images assigned left to right) runs several
    characters (docs/cast.md); so does a list of more than one ``image``. An animate-mode cast runs
    MultiAnimate (``model`` auto or multianimate), with MultiAnimate's defaults (its base as the weights).
    """
    check_model(model)
    image, cast = characters_of(image, cast)
    if cast is not None:
        from wanimate.cast.runner import run_cast

        return run_cast(
            cast,
            video,
            output,
            cast_run_settings(settings, options),
            model=model,
            compare=compare,
            work_dir=work_dir,
            fresh=fresh,
            overwrite=overwrite,
            session=session,
            progress=progress,
            progress_bars=progress_bars,
        )
    if image is None:
        raise WanimateError("give a character image (--image), or several characters with --cast ID=IMAGE")
    if model == "multianimate":
        raise WanimateError("--model multianimate animates several characters: give them with --cast ID=IMAGE")
    plan = _plan(
        image,
        video,
        output,
        RunSettings.of(settings, **options),
        compare=compare,
        work_dir=work_dir,
        overwrite=overwrite,
    )
    settings = plan.settings
    audio = settings.generate.audio
    notify = progress or (lambda event: None)
    with os_faults(), plan.work as work:
        if fresh:
            work.clear()
        materials, preprocessed = prepare_materials(
            plan.image, plan.video, work, settings.preprocess, notify, progress_bars
        )
        if plan.backend == "wan":
            _generate(materials, plan, work, fresh, session, notify, progress_bars)
        else:
            from wanimate.preview import render_preview

            notify(RunEvent("preview", fraction=0.0, message="rendering preview"))
            render_preview(
                materials,
                plan.output,
                progress=progress_bars,
                audio=audio,
                overwrite=True,  # checked above, with the other outputs
                on_frame=lambda done, total: notify(RunEvent("preview", fraction=done / total)),
            )
        if plan.compare is not None:
            from wanimate.run.compare import write_compare

            notify(RunEvent("compare", fraction=0.0, message="writing the comparison video"))
            write_compare(
                plan.video,
                materials,
                plan.output,
                plan.compare,
                still=plan.still,
                audio=audio,
                on_frame=lambda done, total: notify(RunEvent("compare", fraction=done / total)),
            )
    notify(RunEvent("done", fraction=1.0))
    return RunResult(
        output=plan.output,
        compare=plan.compare,
        backend=plan.backend,
        materials=materials.root,
        preprocessed=preprocessed,
    )


def _generate(
    materials: Materials,
    plan: _Plan,
    work: WorkDir,
    fresh: bool,
    session: ModelSession | None,
    notify: RunCallback,
    progress_bars: bool,
) -> None:
    from wanimate.parallel.run import RankJob, run_generation

    with generation_progress(notify, progress_bars) as forward:
        job = RankJob(
            materials.root,
            plan.output,
            plan.settings.generate,
            plan.settings.parallel,
            work_dir=work.path,
            resume=not fresh,
            overwrite=True,  # checked by run with the other outputs
        )
        # Until the engine's first event: loading the model (none when a warm session holds it).
        notify(RunEvent("generate", fraction=0.0, message="load"))
        run_generation(job, progress=forward, session=session)


@contextlib.contextmanager
def generation_progress(notify: RunCallback, progress_bars: bool) -> Iterator[Callable[[ProgressEvent], None]]:
    """Generation's progress as run events, and as rich bars on a terminal (``progress_bars``)."""
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

    with bars if bars is not None else contextlib.nullcontext():
        yield forward
