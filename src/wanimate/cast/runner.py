"""``run`` with a cast: every check first, then the cast folder in the work folder, then the render.

The same rules as one-character ``run`` (wanimate.run.pipeline): inputs are readable files, ``-o``
is refused when it exists (unless ``overwrite``) or when it is, lies in or contains an input, the
work folder (default ``<output stem>.work``) is a marked one of which only wanimate's own entries are
ever deleted, and the device, the weights and their size limits are checked before anything is
tracked. Then the video is tracked once (cached in the work folder), the cast is checked against the
people found, the cast folder is written (cached too), and rendered by the preview or the model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from wanimate.cast.run import CastOptions, check_cast, prepare_cast, render_cast
from wanimate.cast.spec import CastInput
from wanimate.devices import check_device, check_device_syntax
from wanimate.errors import WanimateError
from wanimate.generate.settings import DEFAULT_WEIGHTS, GenerateSettings
from wanimate.paths import check_apart, input_file, os_faults, output_file
from wanimate.run.backend import BACKENDS, check_weights, choose_backend
from wanimate.workdir import WorkDir, default_work_dir

if TYPE_CHECKING:
    from wanimate.run.pipeline import RunCallback, RunResult


def run_cast(
    cast: CastInput,
    video: str | Path,
    output: str | Path,
    *,
    mode: str,
    backend: str,
    weights: str | None,
    compare: str | Path | None,
    work_dir: str | Path | None,
    fresh: bool,
    audio: bool,
    overwrite: bool,
    settings: GenerateSettings | None,
    progress: RunCallback | None,
    progress_bars: bool,
    cast_options: CastOptions | None,
    model: str,
    adapter: str,
    gpus: int = 1,
) -> RunResult:
    """Several characters: the cast folder, then the preview or the model for the mode (docs/cast.md)."""
    from wanimate.examples import resolve_input
    from wanimate.models.limits import known_limits
    from wanimate.multianimate.loading import DEFAULT_BASE
    from wanimate.preprocess.sizing import size_for_area
    from wanimate.run.pipeline import RunEvent, RunResult, generation_progress
    from wanimate.video import probe_video

    if compare is not None:
        raise WanimateError("--compare shows one character beside its driver; it is not available with --cast")
    video_path = input_file(resolve_input(video), "driving video")
    output_path = output_file(output, "-o", overwrite=overwrite)
    settings = dataclasses.replace(settings or GenerateSettings(), mode=mode)  # type: ignore[arg-type]
    settings.validate()
    settings = dataclasses.replace(settings, device=check_device_syntax(settings.device))
    if backend not in BACKENDS:
        raise WanimateError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    options = cast_options or CastOptions()
    if mode == "animate" and weights == DEFAULT_WEIGHTS:
        weights = None  # Wan2.2-Animate-14B is the default of one character; MultiAnimate has its own base
    used_weights = weights or (DEFAULT_BASE if mode == "animate" else DEFAULT_WEIGHTS)
    chosen = choose_backend(backend, used_weights, settings.device)
    request = check_cast(cast, mode=mode, model=model, adapter=adapter if chosen == "wan" else "auto", options=options)
    work = WorkDir(work_dir if work_dir else default_work_dir(output_path), explicit=work_dir is not None)
    local = Path(used_weights).expanduser() if not used_weights.startswith("random:") else None
    inputs = {"driving video": video_path, "--background": options.background_file}
    inputs |= {f"cast image {i + 1}": image for i, image in enumerate(request.images)}
    inputs["--weights"] = local if local is not None and local.exists() else None
    check_apart(inputs, {"-o": output_path, "the work folder": work.path})
    info = probe_video(video_path)  # a broken or empty video fails here, in milliseconds
    if chosen == "wan":
        check_device(settings.device)
        check_weights(used_weights)
        limits = known_limits(used_weights)
        if limits is not None:
            width, height = size_for_area(info.width, info.height, options.area)
            limits.check(width, height, settings.segment_frames)
    notify = progress or (lambda event: None)
    existed = work.path.exists()
    with os_faults(), work:
        if fresh:
            work.clear()
        notify(RunEvent("preprocess", fraction=0.0, message="preparing the cast"))
        try:
            folder, written = prepare_cast(
                request,
                video_path,
                work,
                mode=mode,
                options=options,
                progress=progress_bars,
                notify=lambda message: notify(RunEvent("preprocess", message=message)),
            )
        except WanimateError:
            if not existed:  # a cast refused once the people are known leaves no work folder behind
                work.clear()
            raise
        notify(RunEvent("preprocess", fraction=1.0, message="cast ready"))
        stage = "preview" if chosen == "preview" else "generate"
        notify(RunEvent(stage, fraction=0.0, message=f"rendering the cast ({stage})"))
        with generation_progress(notify, progress_bars and chosen == "wan") as forward:
            render_cast(
                folder,
                output_path,
                backend=chosen,
                weights=weights,
                adapter=adapter,
                settings=settings,
                work=work,
                resume=not fresh,
                audio=audio,
                gpus=gpus,
                progress=forward,
                progress_bars=progress_bars,
                on_frame=lambda done, total: notify(RunEvent("preview", fraction=done / total)),
            )
    notify(RunEvent("done", fraction=1.0))
    return RunResult(output=output_path, compare=None, backend=chosen, materials=folder.root, preprocessed=written)
