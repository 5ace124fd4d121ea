"""Wan2.2-Animate-14B inside the shared segment loop: its conditioning, its denoising step, its decode.

It calls the same helpers as ``diffusers.WanAnimatePipeline`` (prompt encoding, reference/pose/
conditioning latents, the transformer) in the same order, so the random generator is drawn exactly
as the pipeline draws it and the numbers match (``tests/test_generate_parity.py``). It samples with
its own flow UniPC on the official or diffusers schedule (:mod:`wanimate.generate.sampler`); the
pipeline's scheduler stays as loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import WanAnimatePipeline
from PIL import Image

from wanimate.generate.caching import reset_step_cache
from wanimate.generate.engine import guide
from wanimate.generate.runtime import prepare_pipeline, settings_for_pipeline
from wanimate.generate.sampler import make_scheduler, set_schedule
from wanimate.generate.segments import Segment
from wanimate.generate.settings import GenerateSettings
from wanimate.generate.sources import FrameWindow
from wanimate.materials import Materials


def _to_pil(frames: list[np.ndarray]) -> list[Image.Image]:
    return [Image.fromarray(f) for f in frames]


def clip_image_embeds(
    pipe: Any, reference: Image.Image, fitted: torch.Tensor, mode: str, device: torch.device
) -> torch.Tensor:
    """CLIP features of the character, penultimate layer (= the official 31-of-32 blocks).

    ``official``: the letterboxed reference squashed to CLIP's input size with
    bicubic interpolation and no crop, as Wan2.2's ``clip.visual``. ``diffusers``:
    the raw image through the CLIP image processor (short-side resize + centre crop).
    """
    if mode == "diffusers":
        return pipe.encode_image(reference, device)
    processor = pipe.image_processor
    size = processor.crop_size
    if isinstance(size, int):
        side = (size, size)
    else:
        side = (size["height"], size["width"]) if isinstance(size, dict) else (size.height, size.width)
    pixels = F.interpolate(fitted.float() * 0.5 + 0.5, size=side, mode="bicubic", align_corners=False)
    mean = torch.tensor(processor.image_mean, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std, device=pixels.device).view(1, 3, 1, 1)
    pixels = ((pixels - mean) / std).to(device=device, dtype=pipe.image_encoder.dtype)
    out = pipe.image_encoder(pixel_values=pixels, output_hidden_states=True)
    return out.hidden_states[-2].to(device)


def decode_latents(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Un-normalise Wan latents and VAE-decode them to pixels in [-1, 1]."""
    latents = latents.to(vae.dtype)
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    recip_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
    return vae.decode(latents / recip_std + mean, return_dict=False)[0]


class AnimateSegments:
    """The Wan2.2-Animate part of :class:`~wanimate.generate.engine.SegmentGenerator`."""

    def __init__(
        self, pipe: WanAnimatePipeline, materials: Materials, settings: GenerateSettings, device: torch.device
    ) -> None:
        self.pipe = pipe
        self.materials = materials
        self.device = device
        self.mode = settings.mode or materials.mode
        # Speed/memory options (quantize, offload, attention, cache, compile), applied once per pipeline.
        self.settings = settings = settings_for_pipeline(settings, pipe, materials.height, materials.width)
        prepare_pipeline(pipe, settings, device)
        self.scheduler = make_scheduler(pipe.scheduler.config, settings.sampler, settings.shift)
        self.do_cfg = settings.guidance > 1.0
        self.dtype = pipe.transformer.dtype
        self.job_inputs: dict[str, torch.Tensor | None] = {}
        self.segment_inputs: dict[str, torch.Tensor] = {}

    def begin(self, generator: torch.Generator) -> None:
        """Once per run: prompts, the reference's latents and CLIP features, the material streams."""
        pipe, s, device, m = self.pipe, self.settings, self.device, self.materials
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            prompt=s.prompt,
            negative_prompt=s.negative_prompt,
            do_classifier_free_guidance=self.do_cfg,
            max_sequence_length=512,
            device=torch.device("cpu") if s.text_encoder_cpu else device,
        )
        with Image.open(m.path("ref")) as raw:
            reference = raw.convert("RGB")
        fitted = pipe.vae_image_processor.preprocess(reference, height=m.height, width=m.width, resize_mode="fill")
        fitted = fitted.to(device, dtype=torch.float32)
        self.job_inputs = {
            "prompt": prompt_embeds.to(device, self.dtype),
            "negative": negative_embeds.to(device, self.dtype) if negative_embeds is not None else None,
            "image": clip_image_embeds(pipe, reference, fitted, s.clip_input, device).to(self.dtype),
        }
        self.reference_latents = pipe.prepare_reference_image_latents(fitted, 1, generator=generator, device=device)
        self.windows = {
            name: FrameWindow(m.path(name), m.num_frames, binary=name == "mask") for name in m.video_names()
        }

    def start_segment(
        self, segment: Segment, indices: list[int], tail: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Noise latents of the segment; its pose/face/temporal-guidance conditioning is kept until ``end_segment``."""
        pipe, s, device, m = self.pipe, self.settings, self.device, self.materials
        latents = pipe.prepare_latents(
            1,
            num_channels_latents=pipe.vae.config.z_dim,
            height=m.height,
            width=m.width,
            num_frames=segment.length,
            dtype=torch.float32,
            device=device,
            generator=generator,
        )

        def video(name: str, size: tuple[int, int]) -> torch.Tensor:
            processor = pipe.video_processor_for_mask if name == "mask" else pipe.video_processor
            frames = _to_pil(self.windows[name].frames(indices))
            return processor.preprocess_video(frames, height=size[0], width=size[1]).to(device, torch.float32)

        face_size = pipe.transformer.config.motion_encoder_size
        pose = video("pose", (m.height, m.width))
        face = video("face", (face_size, face_size)).to(self.dtype)
        background = video("bg", (m.height, m.width)) if self.mode == "replace" else None
        mask = video("mask", (m.height, m.width)) if self.mode == "replace" else None
        pose_latents = pipe.prepare_pose_latents(pose, 1, generator=generator, device=device).to(self.dtype)
        cond_latents = pipe.prepare_prev_segment_cond_latents(
            tail.clone() if tail is not None else None,
            background_video=background,
            mask_video=mask,
            batch_size=1,
            segment_frame_length=segment.length,
            start_frame=segment.start,
            height=m.height,
            width=m.width,
            prev_segment_cond_frames=s.overlap,
            task=self.mode,
            generator=generator,
            device=device,
        )
        # Memory: the pixel videos are encoded; holding them into the next segment doubles them at the boundary.
        self.segment_inputs = {
            "conditioning": torch.cat([self.reference_latents, cond_latents], dim=2),
            "pose": pose_latents,
            "face": face,
        }
        return latents

    def timesteps(self) -> torch.Tensor:
        set_schedule(self.scheduler, self.settings.sampler, self.settings.steps, self.device)
        reset_step_cache(self.pipe.transformer)  # a segment is a fresh denoise: no residuals from the last one
        return self.scheduler.timesteps

    def _common(self, latents: torch.Tensor, t: torch.Tensor) -> dict[str, Any]:
        """The transformer arguments both passes share."""
        seg = self.segment_inputs
        return dict(
            hidden_states=torch.cat([latents, seg["conditioning"]], dim=1).to(self.dtype),
            timestep=t.expand(latents.shape[0]),
            encoder_hidden_states_image=self.job_inputs["image"],
            pose_hidden_states=seg["pose"],
            return_dict=False,
        )

    def predict(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if self.do_cfg and s.batch_cfg:
            noise, noise_uncond = self._guided_batch(self._common(latents, t))
            return guide(noise, noise_uncond, s.guidance)
        noise = self.conditional(latents, t)
        if not self.do_cfg:
            return noise
        return guide(noise, self.unconditional(latents, t), s.guidance)

    def conditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        transformer, face = self.pipe.transformer, self.segment_inputs["face"]
        with transformer.cache_context("cond"):
            return transformer(
                encoder_hidden_states=self.job_inputs["prompt"], face_pixel_values=face, **self._common(latents, t)
            )[0]

    def unconditional(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The official "face CFG": the negative prompt AND a blanked face (all -1)."""
        transformer, face = self.pipe.transformer, self.segment_inputs["face"]
        with transformer.cache_context("uncond"):
            blank = face * 0 - 1
            return transformer(
                encoder_hidden_states=self.job_inputs["negative"], face_pixel_values=blank, **self._common(latents, t)
            )[0]

    def _guided_batch(self, common: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditional and unconditional passes as one batch of two.

        One forward of batch 2 keeps the GPU busier than two of batch 1 and reads
        every weight once instead of twice (what matters under offloading and
        quantization). The uncond half is the official "face CFG": the negative
        prompt AND a blanked face (all -1). Both prompt embeddings are padded to the
        same length by ``encode_prompt``, so they stack.
        """
        face, job = self.segment_inputs["face"], self.job_inputs
        pair = dict(common)
        for name in ("hidden_states", "encoder_hidden_states_image", "pose_hidden_states"):
            pair[name] = torch.cat([common[name], common[name]])
        pair["timestep"] = torch.cat([common["timestep"], common["timestep"]])
        with self.pipe.transformer.cache_context("cond_uncond"):
            both = self.pipe.transformer(
                encoder_hidden_states=torch.cat([job["prompt"], job["negative"]]),
                face_pixel_values=torch.cat([face, face * 0 - 1]),
                **pair,
            )[0]
        cond, uncond = both.chunk(2)
        return cond, uncond

    def end_segment(self) -> None:
        """Free the step state (and cached residuals / face encodings) before the VAE decode's own peak."""
        self.segment_inputs = {}
        reset_step_cache(self.pipe.transformer)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        # Latent frame 0 is the reference image: it is conditioning, not output.
        return decode_latents(self.pipe.vae, latents[:, :, 1:])
