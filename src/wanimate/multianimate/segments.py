"""MultiAnimate inside the shared segment loop: I2V conditioning, the added token condition, Euler with shift 5.

Per segment, as ``WanUniAnimateVideoPipeline.__call__`` of the reference:

- ``y`` = Wan I2V condition (4 mask channels, frame 0 given; the VAE latent of [first image, zeros])
  **plus** the ref-pose encoder's feature, broadcast over every latent frame and all 20 channels;
- ``cond`` = pose guider(skeleton video) + identifier adapter(one-hot label map), added to the
  patch tokens in the positive pass only: the negative CFG pass gets the negative prompt, the same
  CLIP features and ``y``, and no pose and no labels;
- CLIP sees the reference squashed whole to its input size (bicubic, no crop: a crop drops side
  characters); the timestep is rounded to the DiT's dtype before it is embedded, as the reference does;
- the Euler flow sampler with shift 5 on sigmas ``linspace(1, 0, steps + 1)[:-1]``.

**Long video** (the reference stops at 81 frames): segment k > 0 takes the previous segment's last
decoded frame as its I2V first frame, and the driving pose of that frame as its reference pose, so
every segment is conditioned exactly as the base and MultiAnimate were trained (one given first
frame); the labels of that frame come from the masks at the same frame, which is where the
generated characters are. CLIP keeps the original reference, the appearance anchor of every
segment. The conditioning frame is dropped from the output (it repeats the previous segment's last
frame). docs/multianimate.md explains the choice.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from wanimate.generate.animate import clip_image_embeds, decode_latents
from wanimate.generate.engine import guide
from wanimate.generate.runtime import settings_for_pipeline
from wanimate.generate.segments import Segment
from wanimate.generate.sources import FrameWindow
from wanimate.materials.characters import CharacterMaterials
from wanimate.multianimate.labels import binarize, label_indices, one_hot_labels
from wanimate.multianimate.loading import MultiAnimateModel
from wanimate.multianimate.settings import MultiAnimateSettings


def pixels(frames: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` → ``(1, 3, T, H, W)`` float in [0, 1] (the reference's ``/255.``)."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(frames))).permute(3, 0, 1, 2).unsqueeze(0).float() / 255.0


def flow_sigmas(steps: int) -> np.ndarray:
    """DiffSynth's ``FlowMatchScheduler(extra_one_step=True)`` sigmas before the shift: linspace(1, 0, n + 1)[:-1]."""
    return np.linspace(1.0, 0.0, steps + 1)[:-1]


class MultiAnimateSegments:
    """The MultiAnimate part of :class:`~wanimate.generate.engine.SegmentGenerator`."""

    def __init__(
        self,
        model: MultiAnimateModel,
        materials: CharacterMaterials,
        settings: MultiAnimateSettings,
        device: torch.device,
    ) -> None:
        model.check_characters(materials.characters)
        self.model = model
        self.pipe = model.pipeline
        self.materials = materials
        self.device = device
        self.settings = settings = settings_for_pipeline(settings, self.pipe, materials.height, materials.width)
        model.prepare(settings, device)
        self.scheduler = FlowMatchEulerDiscreteScheduler(shift=settings.shift)
        self.do_cfg = settings.guidance > 1.0
        self.dtype = self.pipe.transformer.dtype
        self.job_inputs: dict[str, torch.Tensor | None] = {}
        self.segment_inputs: dict[str, torch.Tensor] = {}

    def begin(self, generator: torch.Generator) -> None:
        pipe, s, device, m = self.pipe, self.settings, self.device, self.materials
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            prompt=s.prompt_for(m.characters),
            negative_prompt=s.negative_prompt,
            do_classifier_free_guidance=self.do_cfg,
            max_sequence_length=512,
            device=torch.device("cpu") if s.text_encoder_cpu else device,
        )
        # The reference PIL-resizes the reference to W×H (bicubic) and scales it to [-1, 1].
        self.reference = (pixels([m.reference()])[:, :, 0] * 2 - 1).to(device)
        self.job_inputs = {
            "prompt": prompt_embeds.to(device, self.dtype),
            "negative": negative_embeds.to(device, self.dtype) if negative_embeds is not None else None,
            "image": clip_image_embeds(pipe, None, self.reference, "official", device).to(self.dtype),
        }
        self.reference_pose = pixels([m.reference_pose()])[:, :, 0]
        self.pose = FrameWindow(m.pose.open, m.num_frames, label=m.pose.label)
        self.masks = [FrameWindow(k.open, m.num_frames, binary=True, label=k.label) for k in m.masks]

    def start_segment(
        self, segment: Segment, indices: list[int], tail: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        pipe, m, adapters = self.pipe, self.materials, self.model.adapters
        first = self.reference if tail is None else tail[:, :, -1].to(self.device, torch.float32)
        latents, y = pipe.prepare_latents(
            first,
            1,
            num_channels_latents=pipe.vae.config.z_dim,
            height=m.height,
            width=m.width,
            num_frames=segment.length,
            dtype=torch.float32,
            device=self.device,
            generator=generator,
        )
        pose_frames = self.pose.frames(indices)
        ref_pose = self.reference_pose if tail is None else pixels(pose_frames[:1])[:, :, 0]
        y = y.to(self.dtype) + adapters.reference_pose_feature(ref_pose.to(self.device), self.dtype)
        labels = label_indices([np.stack([binarize(f) for f in mask.frames(indices)]) for mask in self.masks])
        one_hot = one_hot_labels(labels, adapters.max_characters + 1, adapters.label_embedding[0].weight.dtype)
        condition = adapters.motion_condition(pixels(pose_frames).to(self.device), one_hot.to(self.device), self.dtype)
        self.segment_inputs = {"y": y, "condition": condition}
        return latents

    def timesteps(self) -> torch.Tensor:
        self.scheduler.set_timesteps(sigmas=flow_sigmas(self.settings.steps), device=self.device)
        return self.scheduler.timesteps

    def _inputs(self, latents: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = torch.cat([latents.to(self.dtype), self.segment_inputs["y"]], dim=1)
        return hidden, t.expand(1).to(self.dtype)  # the reference embeds the bf16-rounded timestep

    def predict(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s, job = self.settings, self.job_inputs
        if not (self.do_cfg and s.batch_cfg):
            noise = self.conditional(latents, t)
            return guide(noise, self.unconditional(latents, t), s.guidance) if self.do_cfg else noise
        hidden, timestep = self._inputs(latents, t)
        # One batch of two; the condition is added to row 0 (the positive pass) only.
        with self.model.condition.adding(self.segment_inputs["condition"]):
            both = self.pipe.transformer(
                hidden_states=torch.cat([hidden, hidden]),
                timestep=torch.cat([timestep, timestep]),
                encoder_hidden_states=torch.cat([job["prompt"], job["negative"]]),
                encoder_hidden_states_image=torch.cat([job["image"], job["image"]]),
                return_dict=False,
            )[0]
        noise, uncond = both.chunk(2)
        return guide(noise, uncond, s.guidance)

    def conditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with self.model.condition.adding(self.segment_inputs["condition"]):
            return self._pass(latents, t, self.job_inputs["prompt"])

    def unconditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The negative prompt, the same CLIP features and ``y``; no pose, no labels."""
        return self._pass(latents, t, self.job_inputs["negative"])

    def _pass(self, latents: torch.Tensor, t: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        hidden, timestep = self._inputs(latents, t)
        return self.pipe.transformer(
            hidden_states=hidden,
            timestep=timestep,
            encoder_hidden_states=text,
            encoder_hidden_states_image=self.job_inputs["image"],
            return_dict=False,
        )[0]

    def end_segment(self) -> None:
        self.segment_inputs = {}

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return decode_latents(self.pipe.vae, latents)
