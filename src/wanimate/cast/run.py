"""The cast's stages for ``run`` and ``preprocess``: its options, its checks, its folder, its render.

Everything that can be refused without the video is refused first (the model for the mode, the
number of characters, an id cast twice, a checkpoint too small, an image with no figure), then the
video is tracked once (cached in the work folder), the cast is checked against the people found,
and the cast folder is written (cached under a key of every input). Rendering is the preview, or
the model for the mode: MultiAnimate on the composed reference (animate, through ``run_generation``)
or one Wan2.2-Animate pass per person (replace). ``run``'s path checks are in :mod:`wanimate.cast.runner`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanimate import __version__
from wanimate.cast.build import CastInputs, write_cast
from wanimate.cast.characters import CastCharacter
from wanimate.cast.folder import CastFolder, is_cast_folder, load_cast
from wanimate.cast.people import PeopleRecord
from wanimate.cast.settings import BACKGROUNDS, CastSettings
from wanimate.cast.spec import CastInput, CastRequest, cast_model, cast_request, resolve_cast
from wanimate.cast.track import Tracking
from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.hashing import file_sha256
from wanimate.preprocess.settings import PreprocessSettings
from wanimate.workdir import WorkDir


@dataclass(frozen=True)
class CastOptions:
    """How a cast is prepared: what its folder is keyed by, taken from the run's settings (:meth:`of`)."""

    background: str | Path = "image"  # image | neutral | an image file (animate mode)
    order: str = "depth"  # depth | id: the replace passes' order and the preview's tie-break
    retarget: bool = True
    fps: float | None = None
    area: tuple[int, int] = (1280, 720)
    pose_backend: str = "mediapipe"
    max_people: int = 8  # as `wanimate people --max-people`: the same tracking, so the same ids
    finder: str = "tiles"

    @classmethod
    def of(cls, preprocess: PreprocessSettings, cast: CastSettings) -> CastOptions:
        """The options of a cast from the (validated) preprocessing and cast settings."""
        return cls(
            background=cast.background,
            order=cast.cast_order,
            retarget=preprocess.retarget,
            fps=preprocess.fps,
            area=preprocess.area,
            pose_backend=preprocess.pose_backend,
            max_people=preprocess.max_people,
            finder=preprocess.finder,
        )

    @property
    def tracking(self) -> Tracking:
        return Tracking(self.fps, tuple(self.area), self.pose_backend, self.max_people, self.finder)  # type: ignore[arg-type]

    @property
    def background_file(self) -> Path | None:
        return None if str(self.background) in BACKGROUNDS else Path(self.background)

    def validate(self) -> None:
        """The values go through the settings' own checks; the background file must be there."""
        from wanimate.paths import input_file

        PreprocessSettings(
            fps=self.fps, area=self.area, pose_backend=self.pose_backend, max_people=self.max_people,
            finder=self.finder,
        )  # fmt: skip
        CastSettings(background=str(self.background), cast_order=self.order)
        if self.background_file is not None:
            input_file(self.background_file, "--background (image, neutral or an image file)")


def check_adapter(adapter: str, count: int) -> None:
    """A named checkpoint too small for the cast is refused before anything is tracked or loaded."""
    from wanimate.multianimate.checkpoint import RELEASES
    from wanimate.multianimate.loading import too_many_characters

    supported = None
    if adapter in RELEASES:
        supported = RELEASES[adapter].max_characters
    elif adapter.startswith("random:") and adapter.removeprefix("random:").isdigit():
        supported = int(adapter.removeprefix("random:"))
    if supported is not None and count > supported:
        raise WanimateError(too_many_characters(count, adapter, supported))


def multianimate_settings(settings: GenerateSettings) -> GenerateSettings:
    """MultiAnimate's settings from any: the options set away from the shared defaults carry over."""
    from wanimate.multianimate.settings import MultiAnimateSettings
    from wanimate.options import fields_of

    if isinstance(settings, MultiAnimateSettings):
        return settings
    default = GenerateSettings()
    changed = {
        f.name: getattr(settings, f.name)
        for f in fields_of(GenerateSettings)
        if getattr(settings, f.name) != getattr(default, f.name) and f.name != "relight"
    }
    return MultiAnimateSettings(**changed)


def _cast_key(request: CastRequest, video: Path, mode: str, options: CastOptions, people: str) -> str:
    payload = {
        "mode": mode,
        "video": file_sha256(video),
        "cast": [[p, file_sha256(i)] for p, i in request.by_id] or [file_sha256(i) for i in request.in_order],
        "options": dataclasses.asdict(options)
        | {
            "background": file_sha256(Path(options.background))
            if Path(options.background).is_file()
            else str(options.background)
        },
        "people": people,
        "v": __version__,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_cast(
    cast: CastInput | CastRequest, *, mode: str, model: str, adapter: str, options: CastOptions
) -> CastRequest:
    """Everything about a cast that can be refused before the video is read (one line each)."""
    options.validate()
    request = cast_request(cast)
    if cast_model(mode, model, len(request)) == "multianimate":
        check_adapter(adapter, len(request))
    from wanimate.paths import input_file

    for image in request.images:
        input_file(image, "cast image")
    return request


def prepare_cast(
    request: CastRequest,
    video: Path,
    work: WorkDir,
    *,
    mode: str,
    options: CastOptions,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> tuple[CastFolder, bool]:
    """The cast folder for this run (written now, or reused from the open ``work``) and whether it was written.

    The characters are cut out before anything is tracked, so an image with no figure writes nothing.
    """
    from wanimate.cast.characters import load_cast_characters
    from wanimate.cast.track import track_people
    from wanimate.workdir import CAST_LAYOUT, remove_tree_if_owned

    tracking = options.tracking
    folder = work.child(f"cast-{_cast_key(request, video, mode, options, tracking.key(video))}")
    if is_cast_folder(folder):
        return load_cast(folder), False
    say = notify or (lambda message: None)
    say("cutting out the characters")
    characters = load_cast_characters(request.images, backend=options.pose_backend)
    remove_tree_if_owned(folder, CAST_LAYOUT)  # incomplete (no cast.json)
    say("tracking everyone in the video")
    people = track_people(video, request.images[0], work, tracking, progress=progress)
    say("writing the cast's materials")
    return write_cast(folder, _inputs(request, characters, people, video, mode, options)), True


def _inputs(
    request: CastRequest,
    characters: list[CastCharacter],
    people: PeopleRecord,
    video: Path,
    mode: str,
    options: CastOptions,
) -> CastInputs:
    """The cast checked against the people found, with everything the folder is written from."""
    members = resolve_cast(request, people, video)
    by_image = dict(zip(request.images, characters, strict=True))
    return CastInputs(
        mode=mode,
        members=members,
        characters=[by_image[m.image] for m in members],
        people=people,
        video=video,
        fps=options.fps,
        area=options.area,
        background=options.background,
        order=options.order,
        retarget=options.retarget,
        audio=_audio(video, people.num_frames / people.fps),
    )


def _audio(video: Path, duration: float) -> Any:
    from wanimate.materials.folder import AudioSource
    from wanimate.video import probe_video

    return AudioSource(path=str(video), start=0.0, duration=duration) if probe_video(video).has_audio else None


def render_cast(
    cast: CastFolder,
    output: Path,
    *,
    backend: str,
    settings: GenerateSettings,
    work: WorkDir,
    resume: bool,
    gpus: int = 1,
    session: Any = None,
    progress: Any = None,
    progress_bars: bool = True,
    on_frame: Callable[[int, int], None] | None = None,
) -> None:
    """The preview, MultiAnimate (animate mode) or one Wan2.2-Animate pass per person (replace mode).

    ``settings`` are the generation's (their weights, adapter and audio included; MultiAnimate's for an
    animate-mode cast). ``output`` was checked by the caller (``run``), so it is written over here.
    ``session`` (one device) is a model session to reuse.
    """
    if backend == "preview":
        from wanimate.preview.cast import render_cast_preview

        render_cast_preview(
            cast, output, progress=progress_bars, audio=settings.audio, overwrite=True, on_frame=on_frame
        )
    elif cast.mode == "animate":
        from wanimate.parallel.layout import ParallelSettings
        from wanimate.parallel.run import RankJob, run_generation

        job = RankJob(
            cast.root,
            output,
            multianimate_settings(settings),
            ParallelSettings(gpus=gpus),
            work_dir=work.path,
            resume=resume,
            overwrite=True,
        )
        run_generation(job, progress=progress, session=session)
    else:
        from wanimate.cast.replace import generate_cast_replace

        if gpus > 1:
            raise WanimateError("a replace-mode cast runs its passes on one device; drop --gpus")
        generate_cast_replace(
            cast,
            output,
            settings=settings,
            session=session,
            work_dir=work.path,
            resume=resume,
            overwrite=True,
            progress=progress,
        )


def preprocess_cast(
    cast: CastInput | CastRequest,
    video: str | Path,
    output: str | Path,
    *,
    mode: str = "animate",
    model: str = "auto",
    options: CastOptions | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> CastFolder:
    """``wanimate preprocess --cast`` (or ``--model multianimate``): the cast folder at ``output``.

    In animate mode it is also MultiAnimate's N-character materials folder. The tracking is done in a
    hidden sibling work folder (``.<output>.people``), removed afterwards; everything is checked first.
    """
    from wanimate.cast.characters import load_cast_characters
    from wanimate.cast.track import track_people
    from wanimate.examples import resolve_input
    from wanimate.paths import check_apart, input_file, os_faults, temp_sibling
    from wanimate.preprocess.staging import claim_output
    from wanimate.workdir import CAST_LAYOUT

    options = options or CastOptions()
    video = input_file(resolve_input(video), "driving video")
    output = Path(output).absolute()
    request = check_cast(cast, mode=mode, model=model, adapter="auto", options=options)
    claim_output(output, overwrite, CAST_LAYOUT)
    scratch = WorkDir(temp_sibling(output, "people"), explicit=False)
    inputs = {"driving video": video, "--background": options.background_file}
    inputs |= {f"cast image {i + 1}": image for i, image in enumerate(request.images)}
    check_apart(inputs, {"-o": output, "the tracking folder": scratch.path})
    characters = load_cast_characters(request.images, backend=options.pose_backend)
    with os_faults(), scratch:
        try:
            people = track_people(video, request.images[0], scratch, options.tracking, progress=progress)
            folder = write_cast(output, _inputs(request, characters, people, video, mode, options), overwrite=overwrite)
        finally:
            scratch.clear()
    return folder
