"""``generate``: a materials folder in, an mp4 out, resumable segment by segment."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from wanimate.errors import WanimateError
from wanimate.generate.engine import ProgressCallback, ProgressEvent, ResumeState, SegmentGenerator, to_uint8
from wanimate.generate.runtime import has_budget, load_device, resolve_budget, settings_for_pipeline
from wanimate.generate.settings import DEFAULT_WEIGHTS, GenerateSettings
from wanimate.generate.work import SegmentRecord, WorkFolder
from wanimate.materials import Materials, load_materials
from wanimate.video import FrameSequenceWriter, VideoWriter

if TYPE_CHECKING:
    from wanimate.materials.characters import CharacterMaterials
    from wanimate.models.loading import LoadedModel
    from wanimate.multianimate.loading import MultiAnimateModel

log = logging.getLogger("wanimate")


def default_work_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}.work")


def _check_output(output: Path) -> None:
    if output.suffix.lower() != ".mp4":
        raise WanimateError(f"output must be an .mp4 file, not {output.name}")
    if output.is_dir():
        raise WanimateError(f"output {output} is a folder; give a file name like out.mp4")


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
class _Prepared:
    """What a run needs once inputs and weights are checked: the model, the materials, the resume key."""

    model: Any  # the pipeline, or a MultiAnimateModel
    materials: Any  # Materials or CharacterMaterials
    settings: GenerateSettings
    device: torch.device
    key: str


def _prepare_animate(
    materials: str | Path | Materials,
    settings: GenerateSettings,
    weights: str | None,
    base: str | None,
    model: LoadedModel | None,
) -> _Prepared:
    mats = materials if isinstance(materials, Materials) else load_materials(materials, mode=settings.mode)
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
    return _Prepared(model.pipeline, mats, settings, device, key)


def _prepare_multianimate(
    materials: str | Path | CharacterMaterials,
    settings: GenerateSettings,
    weights: str | None,
    adapter: str,
    base: str | None,
    model: MultiAnimateModel | None,
) -> _Prepared:
    from wanimate.materials.characters import CharacterMaterials, load_character_materials
    from wanimate.multianimate.loading import load_multianimate

    mats = materials if isinstance(materials, CharacterMaterials) else load_character_materials(materials)
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
    return _Prepared(model, mats, settings, device, key)


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
    """
    from wanimate.multianimate.settings import MultiAnimateSettings

    settings = settings or GenerateSettings()
    settings.validate()
    output = Path(output)
    _check_output(output)
    if isinstance(settings, MultiAnimateSettings):
        run = _prepare_multianimate(materials, settings, weights, adapter, base, model)
    else:
        run = _prepare_animate(materials, settings, weights, base, model)
    mats, notify = run.materials, progress or (lambda event: None)

    work = WorkFolder(Path(work_dir) if work_dir else default_work_dir(output), run.key, resume=resume)
    if work.discarded:
        log.warning("discarded %d saved segments made with other inputs or settings", work.discarded)
    generator = SegmentGenerator(run.model, mats, run.settings, run.device, progress=progress)
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
    source_audio = mats.meta.audio if audio else None
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
