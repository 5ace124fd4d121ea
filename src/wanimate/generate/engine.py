"""The segment loop both models share: plan, stream, denoise, decode, hand over the tail, resume.

A long video is generated in segments (:mod:`wanimate.generate.segments`); each segment is a full
denoise conditioned on the last decoded frames of the one before. What is the same for every model
lives here: the random generator (one for the whole run, its state saved after each segment), the
plan, the step loop, the trimming of the overlap, the optional colour correction toward the first
segment, the memory hygiene at segment boundaries, and the progress events. What differs (how a
segment is conditioned, one denoising step, the decode) is a :class:`SegmentModel`:
:class:`~wanimate.generate.animate.AnimateSegments` for Wan2.2-Animate and
:class:`~wanimate.multianimate.segments.MultiAnimateSegments` for MultiAnimate. A part keeps what
its steps read in two dicts of tensors (``job_inputs``, ``segment_inputs``) and splits its guided
prediction into a conditional and an unconditional pass, so that
:class:`~wanimate.parallel.engine.ParallelSegments` can run the same part on several ranks (inputs
made once and broadcast, the two passes on different ranks, one rank decoding).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from wanimate.generate.color_match import lab_stats, match_segment
from wanimate.generate.segments import Segment, SegmentPlan, plan_segments
from wanimate.generate.settings import GenerateSettings
from wanimate.models.memory import release_host_memory


@dataclass(frozen=True)
class ProgressEvent:
    stage: str  # encode, resume, segment, denoise, step, decode, saved, write, done
    segment: int = 0
    num_segments: int = 0
    step: int = 0
    num_steps: int = 0
    elapsed: float = 0.0


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class SegmentOutput:
    segment: Segment
    frames: torch.Tensor  # (T, H, W, 3) float in [0, 1], trimmed: concatenating all gives the video
    tail: torch.Tensor  # (1, 3, r, H, W) decoded frames in [-1, 1] that condition the next segment
    rng_state: torch.Tensor


@dataclass
class ResumeState:
    tail: torch.Tensor
    rng_state: torch.Tensor
    color_reference: np.ndarray | None = None  # the first segment's Lab statistics (colour correction)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Frames in [0, 1] as the video and the work folder store them."""
    return (frames.clamp(0, 1).cpu() * 255).round().to(torch.uint8)


def guide(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: the unconditional prediction moved ``scale`` times toward the conditional one."""
    return uncond + scale * (cond - uncond)


class SegmentModel(Protocol):
    """One model's part of the loop. ``settings`` is what it runs with (a VRAM budget already resolved).

    ``job_inputs`` (made by :meth:`begin`) and ``segment_inputs`` (made by :meth:`start_segment`,
    dropped by :meth:`end_segment`) hold every tensor the denoising steps read besides the latents:
    a process that did not make them can be given them and run the same steps.
    """

    settings: GenerateSettings
    scheduler: Any
    job_inputs: dict[str, torch.Tensor | None]
    segment_inputs: dict[str, torch.Tensor]

    def begin(self, generator: torch.Generator) -> None:
        """Once per run: prompts, the reference, the material streams."""

    def start_segment(
        self, segment: Segment, indices: list[int], tail: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """The segment's noise latents; its conditioning is held until :meth:`end_segment`."""

    def timesteps(self) -> torch.Tensor:
        """Set the scheduler for a fresh denoise and return its timesteps."""

    def predict(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The guided model output for one step."""

    def conditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The conditional pass alone (the whole output when guidance is 1)."""

    def unconditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The unconditional pass alone (guidance above 1)."""

    def end_segment(self) -> None:
        """Drop the segment's conditioning and step caches before the decode."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor | None:
        """Pixels ``(1, 3, T, H, W)`` in [-1, 1], one per frame of the segment.

        ``None`` in a process that does not decode (a parallel rank other than 0): the loop then
        yields nothing for the segment there.
        """


def segment_model(pipe: Any, materials: Any, settings: GenerateSettings, device: torch.device) -> SegmentModel:
    """The :class:`SegmentModel` for what was loaded: a MultiAnimate model, else a Wan-Animate pipeline."""
    from wanimate.multianimate.loading import MultiAnimateModel

    if isinstance(pipe, MultiAnimateModel):
        from wanimate.multianimate.segments import MultiAnimateSegments

        return MultiAnimateSegments(pipe, materials, settings, device)
    from wanimate.generate.animate import AnimateSegments

    return AnimateSegments(pipe, materials, settings, device)


class SegmentGenerator:
    """Generates the segments of one materials folder, one at a time.

    ``pipe`` is a ``diffusers.WanAnimatePipeline`` (with ``Materials``) or a
    :class:`~wanimate.multianimate.loading.MultiAnimateModel` (with ``CharacterMaterials``).
    ``part`` is the :class:`SegmentModel` to run when the caller built it (the parallel layer wraps
    the one :func:`segment_model` makes).
    """

    def __init__(
        self,
        pipe: Any,
        materials: Any,
        settings: GenerateSettings,
        device: torch.device,
        *,
        progress: ProgressCallback | None = None,
        part: SegmentModel | None = None,
    ) -> None:
        self.materials = materials
        self.device = device
        self.model = part or segment_model(pipe, materials, settings, device)
        self.settings = self.model.settings
        self.plan: SegmentPlan = plan_segments(materials.num_frames, settings.segment_frames, settings.overlap)
        self.progress = progress or (lambda event: None)
        self._started = time.monotonic()

    def _emit(self, stage: str, segment: int = 0, step: int = 0) -> None:
        self.progress(
            ProgressEvent(
                stage=stage,
                segment=segment,
                num_segments=self.plan.num_segments,
                step=step,
                num_steps=self.settings.steps,
                elapsed=time.monotonic() - self._started,
            )
        )

    @torch.no_grad()
    def run(self, start: int = 0, resume: ResumeState | None = None) -> Iterator[SegmentOutput]:
        """Yield segments ``start`` onwards; ``resume`` restores the state left after segment ``start - 1``."""
        s, model = self.settings, self.model
        generator = torch.Generator("cpu").manual_seed(s.seed)
        if resume is not None:
            generator.set_state(resume.rng_state)

        self._emit("encode")
        model.begin(generator)
        tail = resume.tail.to(self.device) if resume is not None else None
        color_reference = resume.color_reference if resume is not None else None
        for segment in self.plan.segments[start:]:
            self._emit("segment", segment.index)
            latents = model.start_segment(segment, self.plan.source_indices(segment), tail, generator)
            timesteps = model.timesteps()
            self._emit("denoise", segment.index)
            for step, t in enumerate(timesteps):
                noise = model.predict(latents, t)
                latents = model.scheduler.step(noise, t, latents, return_dict=False)[0]
                self._emit("step", segment.index, step + 1)
            del noise
            model.end_segment()
            self._emit("decode", segment.index, s.steps)
            decoded = model.decode(latents)
            if decoded is None:
                del latents
                continue
            if s.color_correction > 0 and color_reference is not None:
                decoded = match_segment(decoded, color_reference, s.color_correction)
            tail = decoded[:, :, -s.overlap :].clone()
            keep_to = min(segment.length, self.materials.num_frames - self._output_offset(segment) + segment.keep_from)
            frames = decoded[0, :, segment.keep_from : keep_to].permute(1, 2, 3, 0)
            if s.color_correction > 0 and color_reference is None:
                color_reference = lab_stats(to_uint8(frames.float() * 0.5 + 0.5).numpy())
            yield SegmentOutput(
                segment=segment,
                frames=(frames.float() * 0.5 + 0.5).clamp(0, 1).cpu(),
                tail=tail.float().cpu(),
                rng_state=generator.get_state(),
            )
            del decoded, frames, latents
            release_host_memory()

    def _output_offset(self, segment: Segment) -> int:
        """Index in the final video of this segment's first kept frame."""
        return segment.start + segment.keep_from
