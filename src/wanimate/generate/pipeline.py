"""``generate``: a materials folder in, an mp4 out, resumable segment by segment."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from wanimate.devices import check_device
from wanimate.errors import WanimateError
from wanimate.generate.engine import (
    ProgressCallback,
    ProgressEvent,
    ResumeState,
    SegmentGenerator,
    SegmentOutput,
    to_uint8,
)
from wanimate.generate.runtime import engine_model, session_for, session_key
from wanimate.generate.settings import GenerateSettings
from wanimate.generate.work import SegmentRecord, WorkFolder
from wanimate.materials.folder import Materials, load_materials
from wanimate.models.limits import known_limits, loaded_limits
from wanimate.options import build
from wanimate.paths import check_apart, os_faults, output_file, output_folder
from wanimate.video import AudioSource, FrameSequenceWriter, VideoWriter, audio_to_carry
from wanimate.workdir import FRAMES_LAYOUT, KEY_FILE, SEGMENTS, WorkDir, default_work_dir, foreign_entries

if TYPE_CHECKING:
    from wanimate.materials.characters import CharacterMaterials
    from wanimate.models.session import ModelSession

log = logging.getLogger("wanimate")


def _frames_folder(path: str | Path | None, overwrite: bool) -> Path | None:
    """``--save-frames``: a new or empty folder, or (with ``overwrite``) one holding only earlier frames."""
    if path is None:
        return None
    folder = output_folder(path, "--save-frames")
    if folder.is_dir() and any(folder.iterdir()):
        foreign = foreign_entries(folder, FRAMES_LAYOUT)
        if foreign:
            raise WanimateError(
                f"--save-frames {folder} holds other files ({', '.join(foreign[:3])}); choose an empty folder"
            )
        if not overwrite:
            raise WanimateError(f"--save-frames {folder} already holds frames; pass --overwrite to replace them")
    return folder


def _local(weights: str | None) -> Path | None:
    """A weights argument that names a path on this machine (it is an input like any other)."""
    if weights is None or weights.startswith("random:"):
        return None
    path = Path(weights).expanduser()
    return path if path.exists() else None


def resolve_materials(materials: str | Path | Materials, mode: str | None) -> Materials:
    """The materials to generate from, with ``mode`` (when given) overriding theirs, for a path or an object alike."""
    if isinstance(materials, Materials):
        if mode is None or mode == materials.mode:
            return materials
        return load_materials(materials.root, mode=mode)  # type: ignore[arg-type]
    return load_materials(materials, mode=mode)  # type: ignore[arg-type]


def _character_materials(materials: str | Path | CharacterMaterials, mode: str | None) -> CharacterMaterials:
    from wanimate.materials.characters import CharacterMaterials, load_character_materials

    if mode == "replace":
        raise WanimateError(
            "--mode replace is a Wan2.2-Animate option; MultiAnimate animates the characters of the reference "
            "(see docs/multianimate.md)"
        )
    return materials if isinstance(materials, CharacterMaterials) else load_character_materials(materials)


def _settings_class(materials: Any) -> type[GenerateSettings]:
    """Without settings: MultiAnimate's for N-character materials, Wan2.2-Animate's otherwise."""
    from wanimate.generate.settings import settings_class
    from wanimate.materials.characters import CharacterMaterials
    from wanimate.multianimate.settings import MultiAnimateSettings

    if isinstance(materials, CharacterMaterials):
        return MultiAnimateSettings
    if isinstance(materials, Materials):
        return GenerateSettings
    return settings_class("auto", Path(materials))


@dataclass
class Request:
    """A generation's paths and materials, checked before any model is loaded."""

    output: Path
    materials: Any  # Materials or CharacterMaterials
    work: WorkDir
    frames_dir: Path | None
    audio: AudioSource | None


@dataclass
class Prepared:
    """A generation ready to run: the configured model, the materials, the final settings, the resume key."""

    model: Any  # the pipeline, or a MultiAnimateModel: what SegmentGenerator takes
    materials: Any  # Materials or CharacterMaterials
    settings: GenerateSettings
    device: torch.device
    key: str
    request: Request


def check_request(
    materials: str | Path | Materials | CharacterMaterials,
    output: str | Path,
    settings: GenerateSettings,
    *,
    mode: str | None = None,
    loaded: bool = False,
    work_dir: str | Path | None = None,
    save_frames: str | Path | None = None,
    overwrite: bool = False,
) -> Request:
    """Every path, the materials and the frame size against the weights' known limits, before any model loads.

    ``mode`` overrides the materials' own (for a path or a :class:`Materials` alike). ``loaded``: the
    model is already in memory (a warm session), so its weights are no longer inputs to check.
    """
    from wanimate.multianimate.settings import MultiAnimateSettings

    check_device(settings.device)
    output = output_file(output, "-o", overwrite=overwrite)
    multianimate = isinstance(settings, MultiAnimateSettings)
    if multianimate:
        mats: Any = _character_materials(materials, mode)  # type: ignore[arg-type]
    else:
        mats = resolve_materials(materials, mode)  # type: ignore[arg-type]
    frames_dir = _frames_folder(save_frames, overwrite)
    work = WorkDir(work_dir if work_dir else default_work_dir(output), explicit=work_dir is not None)
    for name in (SEGMENTS, KEY_FILE):
        work.child(name)  # a file of the user's with either name is in the way: say so before any work
    source_audio = audio_to_carry(mats.meta.audio) if settings.audio else None
    check_apart(
        {
            "materials folder": mats.root,
            "driving video (its audio)": Path(source_audio.path) if source_audio else None,
            "--weights": None if loaded else _local(settings.weights),
            "--base": None if loaded else _local(settings.base),
            "--adapter": _local(settings.adapter) if not loaded and multianimate else None,
        },
        {"-o": output, "--save-frames": frames_dir, "the work folder": work.path / SEGMENTS},
    )
    limits = None if loaded else known_limits(settings.weights)
    if limits is not None:
        limits.check(mats.width, mats.height, settings.segment_frames)
    return Request(output, mats, work, frames_dir, source_audio)


def prepare(request: Request, settings: GenerateSettings, session: ModelSession) -> Prepared:
    """Load (or reuse) ``session``'s model for a checked request, configure it, and key the result."""
    from wanimate.generate.runtime import prepare as prepare_session

    settings = dataclasses.replace(settings, device=check_device(settings.device))
    mats = request.materials
    settings, identity = prepare_session(session, settings, mats)
    key = settings.result_key(materials=mats.fingerprint(), **identity)
    loaded_limits(session.pipeline, "these weights").check(mats.width, mats.height, settings.segment_frames)
    return Prepared(engine_model(session), mats, settings, settings.resolved_device(), key, request)


def open_work(run: Prepared, resume: bool) -> WorkFolder:
    """The segments folder for this result (inside the locked work folder): segments of other results go."""
    folder = WorkFolder(run.request.work, run.key, resume=resume)
    if folder.discarded:
        log.warning("discarded %d saved segments made with other inputs or settings", folder.discarded)
    return folder


def resume_point(
    folder: WorkFolder, num_segments: int, settings: GenerateSettings, notify: ProgressCallback
) -> tuple[int, ResumeState | None]:
    """How many segments are finished, and the state to continue from after them."""
    done = len(folder.finished())
    if done >= num_segments:
        if done:
            log.info("all %d segments were already finished in %s; writing the video", num_segments, folder.root)
        return done, None
    if not done:
        return 0, None
    last = folder.load(done - 1)
    state = ResumeState(tail=last.tail, rng_state=last.rng_state)
    if settings.color_correction > 0:
        from wanimate.generate.color_match import lab_stats

        state.color_reference = lab_stats(folder.load(0).frames.numpy())
    log.info("resuming at segment %d/%d (%d finished in %s)", done + 1, num_segments, done, folder.root)
    notify(ProgressEvent("resume", segment=done, num_segments=num_segments))
    return done, state


def save_segments(
    outputs: Iterator[SegmentOutput], folder: WorkFolder, num_segments: int, notify: ProgressCallback
) -> None:
    for out in outputs:
        frames = to_uint8(out.frames)
        folder.save(out.segment.index, SegmentRecord(frames=frames, tail=out.tail, rng_state=out.rng_state))
        notify(ProgressEvent("saved", segment=out.segment.index, num_segments=num_segments))
        del out, frames  # a segment's float frames must not live through the next segment


def write_result(
    folder: WorkFolder, run: Prepared, num_segments: int, *, keep_work: bool, notify: ProgressCallback
) -> None:
    """The mp4 and the ``--save-frames`` PNGs in one read of the saved segments; a failure leaves neither."""
    notify(ProgressEvent("write", num_segments=num_segments))
    request = run.request
    pngs = FrameSequenceWriter(request.frames_dir) if request.frames_dir is not None else None
    try:
        with VideoWriter(request.output, request.materials.meta.fps, audio=request.audio) as writer:
            for frame in folder.iter_frames():
                writer.write(frame)
                if pngs is not None:
                    pngs.write(frame)
    except BaseException:
        if pngs is not None:
            pngs.discard()
        raise
    if not keep_work:
        folder.remove()
    notify(ProgressEvent("done", num_segments=num_segments))


def generate(
    materials: str | Path | Materials | CharacterMaterials,
    output: str | Path,
    settings: GenerateSettings | None = None,
    *,
    mode: str | None = None,
    session: ModelSession | None = None,
    work_dir: str | Path | None = None,
    resume: bool = True,
    keep_work: bool = False,
    save_frames: str | Path | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> Path:
    """Generate the video for a materials folder and write it to ``output``.

    ``settings`` (a :class:`GenerateSettings`, or a
    :class:`~wanimate.multianimate.settings.MultiAnimateSettings` for N-character materials, which
    is the default for them) and/or ``options`` (its field names, e.g. ``steps=20, seed=7``, applied
    on top) choose everything. ``mode`` overrides the materials' own mode, whether ``materials`` is a
    path or a :class:`Materials`. ``session`` is a :class:`~wanimate.models.session.ModelSession` to
    reuse (it must hold the settings' weights, dtype and device); by default one is loaded for this
    call. Finished segments are kept in ``work_dir`` (default ``<output stem>.work`` beside the
    output) until the video is written, so an interrupted run started again with the same inputs and
    settings continues from the last finished segment.

    An existing ``output`` (or frames in ``save_frames``) is replaced only with ``overwrite``; every
    path, the device and the frame size against the model's limits are checked before the model loads.
    """
    cls = type(settings) if settings is not None else _settings_class(materials)
    settings = build(cls, options, settings)
    if session is not None and session.key != session_key(settings):
        wanted = session_key(settings)
        raise WanimateError(
            f"the model session holds {session.key.weights} ({session.key.dtype} on {session.key.device}) but the "
            f"settings ask for {wanted.weights} ({wanted.dtype} on {wanted.device}); use a session for those"
        )
    request = check_request(
        materials,
        output,
        settings,
        mode=mode,
        loaded=session is not None and session.model is not None,
        work_dir=work_dir,
        save_frames=save_frames,
        overwrite=overwrite,
    )
    run = prepare(request, settings, session if session is not None else session_for(settings))
    notify = progress or (lambda event: None)
    with os_faults(), request.work:
        folder = open_work(run, resume)
        generator = SegmentGenerator(run.model, run.materials, run.settings, run.device, progress=progress)
        total = generator.plan.num_segments
        done, state = resume_point(folder, total, run.settings, notify)
        if done < total:
            save_segments(generator.run(start=done, resume=state), folder, total, notify)
        write_result(folder, run, total, keep_work=keep_work, notify=notify)
    return request.output
