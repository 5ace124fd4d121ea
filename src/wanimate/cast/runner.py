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
from wanimate.paths import check_apart, input_file, os_faults, output_file
from wanimate.run.backend import check_weights, choose_backend
from wanimate.workdir import WorkDir, default_work_dir

if TYPE_CHECKING:
    from wanimate.models.session import ModelSession
    from wanimate.run.pipeline import RunCallback, RunResult
    from wanimate.run.settings import RunSettings


def run_cast(
    cast: CastInput,
    video: str | Path,
    output: str | Path,
    settings: RunSettings,
    *,
    model: str,
    compare: str | Path | None,
    work_dir: str | Path | None,
    fresh: bool,
    overwrite: bool,
    session: ModelSession | None,
    progress: RunCallback | None,
    progress_bars: bool,
) -> RunResult:
    """Several characters: the cast folder, then the preview or the model for the mode (docs/cast.md).

    ``settings`` are the run's (in animate mode with MultiAnimate's generation settings, see
    :func:`wanimate.run.pipeline.cast_run_settings`).
    """
    from wanimate.examples import resolve_input
    from wanimate.models.limits import known_limits
    from wanimate.preprocess.sizing import size_for_area
    from wanimate.run.pipeline import RunEvent, RunResult, generation_progress
    from wanimate.video import probe_video

    if compare is not None:
        raise WanimateError("--compare shows one character beside its driver; it is not available with --cast")
    video_path = input_file(resolve_input(video), "driving video")
    output_path = output_file(output, "-o", overwrite=overwrite)
    mode = settings.preprocess.mode
    generate = settings.generate
    generate = dataclasses.replace(generate, device=check_device_syntax(generate.device))
    options = CastOptions.of(settings.preprocess, settings.cast)
    weights = generate.weights
    chosen = choose_backend(settings.backend, weights, generate.device)
    adapter = generate.adapter if chosen == "wan" else "auto"
    request = check_cast(cast, mode=mode, model=model, adapter=adapter, options=options)
    work = WorkDir(work_dir if work_dir else default_work_dir(output_path), explicit=work_dir is not None)
    local = Path(weights).expanduser() if not weights.startswith("random:") else None
    inputs = {"driving video": video_path, "--background": options.background_file}
    inputs |= {f"cast image {i + 1}": image for i, image in enumerate(request.images)}
    inputs["--weights"] = local if local is not None and local.exists() else None
    check_apart(inputs, {"-o": output_path, "the work folder": work.path})
    info = probe_video(video_path)  # a broken or empty video fails here, in milliseconds
    if chosen == "wan":
        check_device(generate.device)
        check_weights(weights)
        limits = known_limits(weights)
        if limits is not None:
            width, height = size_for_area(info.width, info.height, options.area)
            limits.check(width, height, generate.segment_frames)
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
                settings=generate,
                work=work,
                resume=not fresh,
                gpus=settings.parallel.gpus,
                session=session,
                progress=forward,
                progress_bars=progress_bars,
                on_frame=lambda done, total: notify(RunEvent("preview", fraction=done / total)),
            )
    notify(RunEvent("done", fraction=1.0))
    return RunResult(output=output_path, compare=None, backend=chosen, materials=folder.root, preprocessed=written)
