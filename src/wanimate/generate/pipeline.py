"""``generate``: a materials folder in, an mp4 out, resumable segment by segment."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanimate.errors import WanimateError
from wanimate.generate.engine import ProgressCallback, ProgressEvent, ResumeState, SegmentGenerator, to_uint8
from wanimate.generate.runtime import engine_model, prepare, session_for, session_key
from wanimate.generate.settings import GenerateSettings
from wanimate.generate.work import SegmentRecord, WorkFolder
from wanimate.materials.folder import Materials, load_materials
from wanimate.options import build
from wanimate.video import FrameSequenceWriter, VideoWriter

if TYPE_CHECKING:
    from wanimate.materials.characters import CharacterMaterials
    from wanimate.models.session import ModelSession

log = logging.getLogger("wanimate")


def default_work_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}.work")


def _check_output(output: Path) -> None:
    if output.suffix.lower() != ".mp4":
        raise WanimateError(f"output must be an .mp4 file, not {output.name}")
    if output.is_dir():
        raise WanimateError(f"output {output} is a folder; give a file name like out.mp4")


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
    """
    from wanimate.multianimate.settings import MultiAnimateSettings

    cls = type(settings) if settings is not None else _settings_class(materials)
    settings = build(cls, options, settings)
    output = Path(output)
    _check_output(output)
    if isinstance(settings, MultiAnimateSettings):
        mats: Any = _character_materials(materials, mode)  # type: ignore[arg-type]
    else:
        mats = resolve_materials(materials, mode)  # type: ignore[arg-type]
    if session is None:
        session = session_for(settings)
    elif session.key != session_key(settings):
        wanted = session_key(settings)
        raise WanimateError(
            f"the model session holds {session.key.weights} ({session.key.dtype} on {session.key.device}) but the "
            f"settings ask for {wanted.weights} ({wanted.dtype} on {wanted.device}); use a session for those"
        )
    settings, identity = prepare(session, settings, mats)
    notify = progress or (lambda event: None)

    key = settings.result_key(materials=mats.fingerprint(), **identity)
    work = WorkFolder(Path(work_dir) if work_dir else default_work_dir(output), key, resume=resume)
    if work.discarded:
        log.warning("discarded %d saved segments made with other inputs or settings", work.discarded)
    generator = SegmentGenerator(engine_model(session), mats, settings, session.device, progress=progress)
    done = len(work.finished())
    if done < generator.plan.num_segments:
        state = None
        if done:
            last = work.load(done - 1)
            state = ResumeState(tail=last.tail, rng_state=last.rng_state)
            if settings.color_correction > 0:
                from wanimate.generate.color_match import lab_stats

                state.color_reference = lab_stats(work.load(0).frames.numpy())
            notify(ProgressEvent("resume", segment=done, num_segments=generator.plan.num_segments))
        for out in generator.run(start=done, resume=state):
            frames = to_uint8(out.frames)
            work.save(out.segment.index, SegmentRecord(frames=frames, tail=out.tail, rng_state=out.rng_state))
            notify(ProgressEvent("saved", segment=out.segment.index, num_segments=generator.plan.num_segments))
            del out, frames  # a segment's float frames must not live through the next segment

    notify(ProgressEvent("write", num_segments=generator.plan.num_segments))
    source_audio = mats.meta.audio if settings.audio else None
    pngs = FrameSequenceWriter(save_frames) if save_frames is not None else None
    with VideoWriter(output, mats.meta.fps, audio=source_audio) as writer:
        for frame in work.iter_frames():  # one read of the saved segments feeds both outputs
            writer.write(frame)
            if pngs is not None:
                pngs.write(frame)
    if not keep_work:
        work.remove()
    notify(ProgressEvent("done", num_segments=generator.plan.num_segments))
    return output
