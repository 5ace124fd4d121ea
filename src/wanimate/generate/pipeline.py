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
from wanimate.generate.runtime import has_budget, load_device, resolve_budget, settings_for_pipeline
from wanimate.generate.settings import DEFAULT_WEIGHTS, GenerateSettings
from wanimate.generate.work import SegmentRecord, WorkFolder
from wanimate.materials import AudioSource, Materials, load_materials
from wanimate.models.limits import known_limits, loaded_limits
from wanimate.paths import check_apart, os_faults, output_file, output_folder
from wanimate.video import FrameSequenceWriter, VideoWriter, audio_to_carry
from wanimate.workdir import FRAMES_LAYOUT, KEY_FILE, SEGMENTS, WorkDir, default_work_dir, foreign_entries

if TYPE_CHECKING:
    from wanimate.materials.characters import CharacterMaterials
    from wanimate.models.loading import LoadedModel
    from wanimate.multianimate.loading import MultiAnimateModel

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


def resolve_relight(settings: GenerateSettings, model: LoadedModel, mode: str) -> float:
    """The relighting LoRA scale to use: 0 when off. On by default in replace mode when the weights carry it."""
    wanted = settings.relight if settings.relight is not None else mode == "replace"
    if not wanted:
        return 0.0
    if model.relight_lora is None:
        if settings.relight:
            raise WanimateError(
                f"--relight needs relighting_lora.ckpt, which the weights {model.source} do not carry; "
                "use the official Wan-AI/Wan2.2-Animate-14B weights or pass --no-relight"
            )
        log.warning(
            "replace mode without the relighting LoRA (not in %s): colours may not match the scene",
            model.source,
        )
        return 0.0
    return settings.relight_scale


def _configure(model: LoadedModel, settings: GenerateSettings, relight_scale: float) -> None:
    from wanimate.models.lora import apply_relight_lora

    transformer = model.pipeline.transformer
    if relight_scale and model.relight_lora is not None:
        apply_relight_lora(transformer, model.relight_lora, relight_scale)
    elif getattr(transformer, "_wanimate_relight_path", None) is not None:
        # Loaded by an earlier job on this model: weight 0 turns it off and leaves other adapters active.
        apply_relight_lora(transformer, transformer._wanimate_relight_path, 0.0)


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


def _prepare_animate(
    request: Request,
    settings: GenerateSettings,
    weights: str | None,
    base: str | None,
    model: LoadedModel | None,
) -> Prepared:
    mats = request.materials
    settings = dataclasses.replace(settings, mode=mats.mode)
    device = settings.resolved_device()
    if model is None:
        from wanimate.models.loading import load_model
        from wanimate.models.sizes import weights_sizes

        if has_budget(settings):
            # Sized from the configs before loading, so the chosen quantization happens while loading.
            sizes = weights_sizes(weights or DEFAULT_WEIGHTS, dtype=settings.torch_dtype, base=base)
            settings = resolve_budget(settings, sizes, mats.height, mats.width)
        model = load_model(
            weights or DEFAULT_WEIGHTS,
            dtype=settings.torch_dtype,
            device=load_device(settings, device),
            base=base,
            quantize=settings.quantize,
        )
    settings = settings_for_pipeline(settings, model.pipeline, mats.height, mats.width)
    relight_scale = resolve_relight(settings, model, mats.mode)
    _configure(model, settings, relight_scale)
    key = settings.result_key(
        materials=mats.fingerprint(), weights=model.source, layout=model.layout, relight=relight_scale
    )
    return Prepared(model.pipeline, mats, settings, device, key, request)


def _prepare_multianimate(
    request: Request,
    settings: GenerateSettings,
    weights: str | None,
    adapter: str,
    base: str | None,
    model: MultiAnimateModel | None,
) -> Prepared:
    from wanimate.multianimate.loading import load_multianimate

    mats = request.materials
    device = settings.resolved_device()
    if model is None:
        # Its LoRA is merged into the loaded base, so MultiAnimate quantizes after loading (on the host).
        target = torch.device("cpu") if settings.quantize != "none" or has_budget(settings) else device
        target = load_device(settings, device) if target == device else target
        model = load_multianimate(
            weights, adapter, characters=mats.characters, dtype=settings.torch_dtype, device=target, base=base
        )
    model.check_characters(mats.characters)
    settings = settings_for_pipeline(settings, model.pipeline, mats.height, mats.width)
    key = settings.result_key(
        model="multianimate",
        materials=mats.fingerprint(),
        weights=model.source,
        layout=model.layout,
        adapter=model.adapter_source,
    )
    return Prepared(model, mats, settings, device, key, request)


def _materials(materials: Any, settings: GenerateSettings, multianimate: bool) -> Any:
    """The checked materials folder (one character, or MultiAnimate's N), before any model is loaded."""
    if multianimate:
        from wanimate.materials.characters import CharacterMaterials, load_character_materials

        return materials if isinstance(materials, CharacterMaterials) else load_character_materials(materials)
    return materials if isinstance(materials, Materials) else load_materials(materials, mode=settings.mode)


def check_request(
    materials: str | Path | Materials | CharacterMaterials,
    output: str | Path,
    settings: GenerateSettings,
    *,
    weights: str | None = None,
    adapter: str = "auto",
    base: str | None = None,
    model: LoadedModel | MultiAnimateModel | None = None,
    work_dir: str | Path | None = None,
    save_frames: str | Path | None = None,
    audio: bool = True,
    overwrite: bool = False,
) -> Request:
    """Every path, the materials and the frame size against the weights' known limits, before any model loads."""
    from wanimate.multianimate.settings import MultiAnimateSettings

    settings.validate()
    check_device(settings.device)
    output = output_file(output, "-o", overwrite=overwrite)
    multianimate = isinstance(settings, MultiAnimateSettings)
    mats = _materials(materials, settings, multianimate)
    frames_dir = _frames_folder(save_frames, overwrite)
    work = WorkDir(work_dir if work_dir else default_work_dir(output), explicit=work_dir is not None)
    for name in (SEGMENTS, KEY_FILE):
        work.child(name)  # a file of the user's with either name is in the way: say so before any work
    source_audio = audio_to_carry(mats.meta.audio) if audio else None
    check_apart(
        {
            "materials folder": mats.root,
            "driving video (its audio)": Path(source_audio.path) if source_audio else None,
            "--weights": _local(weights) if model is None else None,
            "--base": _local(base) if model is None else None,
            "--adapter": _local(adapter) if model is None and multianimate else None,
        },
        {"-o": output, "--save-frames": frames_dir, "the work folder": work.path / SEGMENTS},
    )
    limits = known_limits(weights) if model is None and weights else None
    if limits is not None:
        limits.check(mats.width, mats.height, settings.segment_frames)
    return Request(output, mats, work, frames_dir, source_audio)


def prepare(
    request: Request,
    settings: GenerateSettings,
    *,
    weights: str | None = None,
    adapter: str = "auto",
    base: str | None = None,
    model: LoadedModel | MultiAnimateModel | None = None,
) -> Prepared:
    """Load (or reuse) the model for a checked request, configure it, and compute the key of the result."""
    from wanimate.multianimate.settings import MultiAnimateSettings

    settings = dataclasses.replace(settings, device=check_device(settings.device))
    if isinstance(settings, MultiAnimateSettings):
        run = _prepare_multianimate(request, settings, weights, adapter, base, model)  # type: ignore[arg-type]
    else:
        run = _prepare_animate(request, settings, weights, base, model)  # type: ignore[arg-type]
    pipeline = getattr(run.model, "pipeline", run.model)  # a MultiAnimateModel wraps its pipeline
    loaded_limits(pipeline, "these weights").check(
        request.materials.width, request.materials.height, settings.segment_frames
    )
    return run


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
    *,
    settings: GenerateSettings | None = None,
    weights: str | None = None,
    adapter: str = "auto",
    base: str | None = None,
    model: LoadedModel | MultiAnimateModel | None = None,
    work_dir: str | Path | None = None,
    resume: bool = True,
    keep_work: bool = False,
    save_frames: str | Path | None = None,
    audio: bool = True,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> Path:
    """Generate the video for a materials folder and write it to ``output``.

    Finished segments are kept in ``work_dir`` (default ``<output stem>.work`` beside
    the output) until the video is written, so an interrupted run started again with
    the same inputs and settings continues from the last finished segment. ``base``
    supplies the VAE, encoders and scheduler when ``weights`` is a single-file
    transformer (default: the official repo).

    :class:`~wanimate.multianimate.settings.MultiAnimateSettings` runs MultiAnimate on N-character
    materials: ``weights`` is then the Wan2.1-I2V base (default ``Wan-AI/Wan2.1-I2V-14B-720P``) and
    ``adapter`` the MultiAnimate checkpoint (default: the smallest release that fits the characters).

    An existing ``output`` (or frames in ``save_frames``) is replaced only with ``overwrite``; every
    path, the device and the frame size against the model's limits are checked before the model loads.
    """
    settings = settings or GenerateSettings()
    paths = dict(weights=weights, adapter=adapter, base=base, model=model)
    request = check_request(
        materials,
        output,
        settings,
        **paths,
        work_dir=work_dir,
        save_frames=save_frames,
        audio=audio,
        overwrite=overwrite,
    )
    run = prepare(request, settings, **paths)
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
