"""The shared segment loop on several ranks: the model's own part, wrapped so that three of its steps change.

:class:`ParallelSegments` is a :class:`~wanimate.generate.engine.SegmentModel` around the part
:func:`~wanimate.generate.engine.segment_model` makes (Wan2.2-Animate's or MultiAnimate's), and
:class:`~wanimate.generate.engine.SegmentGenerator` runs it like any other part:

* Inputs: rank 0 runs the part's ``begin`` and ``start_segment`` (the text and image encoders,
  every VAE encode, and every draw from the random generator), then broadcasts the noise latents
  and the part's ``job_inputs`` / ``segment_inputs``. The other ranks never touch the encoders or
  the VAE, so they can drop them.
* Noise prediction: under CFG parallel a rank runs only its half (the part's ``conditional`` or
  ``unconditional`` pass) and swaps results with its partner; under Ulysses every pass is split by
  the context-parallel hooks and gathered back at ``proj_out``. Every rank then takes the same
  scheduler step on the same numbers, so the latents stay identical everywhere.
* Decode: rank 0 decodes; the other ranks return ``None``, so the loop yields nothing there.
"""

from __future__ import annotations

from typing import Any

import torch

from wanimate.generate.engine import (
    ProgressCallback,
    SegmentGenerator,
    SegmentModel,
    guide,
    segment_model,
)
from wanimate.generate.segments import Segment
from wanimate.generate.settings import GenerateSettings
from wanimate.parallel.ranks import Ranks

NOISE = "latents"  # the segment's initial noise travels with the part's segment inputs


class ParallelSegments:
    """One rank's :class:`SegmentModel`: ``part`` computes, ``ranks`` decides who computes what."""

    def __init__(self, part: SegmentModel, ranks: Ranks) -> None:
        self.part = part
        self.ranks = ranks
        self.settings = part.settings
        self.scheduler = part.scheduler

    @property
    def job_inputs(self) -> dict[str, torch.Tensor | None]:
        return self.part.job_inputs

    @property
    def segment_inputs(self) -> dict[str, torch.Tensor]:
        return self.part.segment_inputs

    def begin(self, generator: torch.Generator) -> None:
        if self.ranks.writer:
            self.part.begin(generator)
        self.part.job_inputs = self.ranks.share(self.part.job_inputs if self.ranks.writer else None)

    def start_segment(
        self, segment: Segment, indices: list[int], tail: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        made = None
        if self.ranks.writer:
            latents = self.part.start_segment(segment, indices, tail, generator)
            assert NOISE not in self.part.segment_inputs
            made = {NOISE: latents, **self.part.segment_inputs}
        shared = self.ranks.share(made)
        latents = shared.pop(NOISE)
        self.part.segment_inputs = shared  # type: ignore[assignment]
        assert latents is not None
        return latents

    def timesteps(self) -> torch.Tensor:
        return self.part.timesteps()

    def predict(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.ranks.layout.cfg == 1:
            return self.part.predict(latents, t)
        half = self.part.conditional if self.ranks.cfg_rank == 0 else self.part.unconditional
        cond, uncond = self.ranks.all_gather_cfg(half(latents, t))
        return guide(cond, uncond, self.settings.guidance)

    def conditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.part.conditional(latents, t)

    def unconditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.part.unconditional(latents, t)

    def end_segment(self) -> None:
        self.part.end_segment()

    def decode(self, latents: torch.Tensor) -> torch.Tensor | None:
        return self.part.decode(latents) if self.ranks.writer else None


def parallel_generator(
    pipe: Any,
    materials: Any,
    settings: GenerateSettings,
    ranks: Ranks,
    *,
    progress: ProgressCallback | None = None,
) -> SegmentGenerator:
    """The segment generator of this rank (``pipe``/``materials`` as for :class:`SegmentGenerator`).

    Only rank 0 reports progress. Call it after :class:`~wanimate.parallel.setup.ParallelModel` has
    made the transformer parallel: the part places the pipeline on the rank's device.
    """
    part = ParallelSegments(segment_model(pipe, materials, settings, ranks.device), ranks)
    notify = progress if ranks.writer else None
    return SegmentGenerator(pipe, materials, settings, ranks.device, progress=notify, part=part)
