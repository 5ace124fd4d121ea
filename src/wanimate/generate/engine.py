"""The segment loop on diffusers' Wan-Animate components.

It calls the same helpers as ``diffusers.WanAnimatePipeline`` (prompt encoding,
reference/pose/conditioning latents, the transformer, UniPC) so its numbers match
the pipeline's; what it adds is streaming (a segment's frames are read when the
segment starts and leave memory when it is saved), resumability (every finished
segment can be restored exactly), and progress events.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import WanAnimatePipeline
from PIL import Image

from wanimate.generate.caching import reset_step_cache
from wanimate.generate.color_match import lab_stats, match_segment
from wanimate.generate.runtime import prepare_pipeline, resolve_vram_budget
from wanimate.generate.sampler import make_scheduler, set_schedule
from wanimate.generate.segments import Segment, SegmentPlan, plan_segments
from wanimate.generate.settings import GenerateSettings
from wanimate.generate.sources import FrameWindow
from wanimate.materials import Materials
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


def _to_pil(frames: list[np.ndarray]) -> list[Image.Image]:
    return [Image.fromarray(f) for f in frames]


def clip_image_embeds(
    pipe: WanAnimatePipeline, reference: Image.Image, fitted: torch.Tensor, mode: str, device: torch.device
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


class SegmentGenerator:
    """Generates the segments of one materials folder, one at a time."""

    def __init__(
        self,
        pipe: WanAnimatePipeline,
        materials: Materials,
        settings: GenerateSettings,
        device: torch.device,
        *,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.pipe = pipe
        self.materials = materials
        self.settings = settings
        self.device = device
        self.mode = settings.mode or materials.mode
        # Speed/memory options (quantize, offload, attention, cache, compile), applied once per pipeline.
        self.settings = settings = resolve_vram_budget(settings, pipe.transformer, materials.height, materials.width)
        prepare_pipeline(pipe, settings, device)
        self.plan: SegmentPlan = plan_segments(materials.num_frames, settings.segment_frames, settings.overlap)
        # Our own scheduler (official or diffusers schedule, the settings' shift): the pipeline's stays as loaded.
        self.scheduler = make_scheduler(pipe.scheduler.config, settings.sampler, settings.shift)
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
        pipe, s, device, m = self.pipe, self.settings, self.device, self.materials
        height, width = m.height, m.width
        do_cfg = s.guidance > 1.0
        transformer_dtype = pipe.transformer.dtype
        generator = torch.Generator("cpu").manual_seed(s.seed)
        if resume is not None:
            generator.set_state(resume.rng_state)

        self._emit("encode")
        prompt_embeds, negative_embeds = pipe.encode_prompt(
            prompt=s.prompt,
            negative_prompt=s.negative_prompt,
            do_classifier_free_guidance=do_cfg,
            max_sequence_length=512,
            device=torch.device("cpu") if s.text_encoder_cpu else device,
        )
        prompt_embeds = prompt_embeds.to(device, transformer_dtype)
        if negative_embeds is not None:
            negative_embeds = negative_embeds.to(device, transformer_dtype)
        with Image.open(m.path("ref")) as raw:
            reference = raw.convert("RGB")
        fitted = pipe.vae_image_processor.preprocess(reference, height=height, width=width, resize_mode="fill")
        fitted = fitted.to(device, dtype=torch.float32)
        image_embeds = clip_image_embeds(pipe, reference, fitted, s.clip_input, device).to(transformer_dtype)
        reference_latents = pipe.prepare_reference_image_latents(fitted, 1, generator=generator, device=device)

        windows = {name: FrameWindow(m.path(name), m.num_frames, binary=name == "mask") for name in m.video_names()}
        face_size = pipe.transformer.config.motion_encoder_size
        tail = resume.tail.to(device) if resume is not None else None
        color_reference = resume.color_reference if resume is not None else None
        for segment in self.plan.segments[start:]:
            self._emit("segment", segment.index)
            latents = pipe.prepare_latents(
                1,
                num_channels_latents=pipe.vae.config.z_dim,
                height=height,
                width=width,
                num_frames=segment.length,
                dtype=torch.float32,
                device=device,
                generator=generator,
            )
            indices = self.plan.source_indices(segment)

            def video(name: str, size: tuple[int, int], indices: list[int] = indices) -> torch.Tensor:
                processor = pipe.video_processor_for_mask if name == "mask" else pipe.video_processor
                frames = _to_pil(windows[name].frames(indices))
                return processor.preprocess_video(frames, height=size[0], width=size[1]).to(device, torch.float32)

            pose = video("pose", (height, width))
            face = video("face", (face_size, face_size)).to(transformer_dtype)
            background = video("bg", (height, width)) if self.mode == "replace" else None
            mask = video("mask", (height, width)) if self.mode == "replace" else None
            pose_latents = pipe.prepare_pose_latents(pose, 1, generator=generator, device=device)
            pose_latents = pose_latents.to(transformer_dtype)
            cond_latents = pipe.prepare_prev_segment_cond_latents(
                tail.clone() if tail is not None else None,
                background_video=background,
                mask_video=mask,
                batch_size=1,
                segment_frame_length=segment.length,
                start_frame=segment.start,
                height=height,
                width=width,
                prev_segment_cond_frames=s.overlap,
                task=self.mode,
                generator=generator,
                device=device,
            )
            conditioning = torch.cat([reference_latents, cond_latents], dim=2)
            # Memory: the pixel videos are encoded; holding them into the next segment doubles them at the boundary.
            del pose, background, mask, cond_latents

            set_schedule(self.scheduler, s.sampler, s.steps, device)
            reset_step_cache(pipe.transformer)  # a segment is a fresh denoise: no residuals from the last one
            self._emit("denoise", segment.index)
            for step, t in enumerate(self.scheduler.timesteps):
                model_input = torch.cat([latents, conditioning], dim=1).to(transformer_dtype)
                timestep = t.expand(latents.shape[0])
                common = dict(
                    hidden_states=model_input,
                    timestep=timestep,
                    encoder_hidden_states_image=image_embeds,
                    pose_hidden_states=pose_latents,
                    return_dict=False,
                )
                if do_cfg and s.batch_cfg:
                    noise, noise_uncond = self._guided_batch(common, prompt_embeds, negative_embeds, face)
                    noise = noise_uncond + s.guidance * (noise - noise_uncond)
                else:
                    with pipe.transformer.cache_context("cond"):
                        noise = pipe.transformer(encoder_hidden_states=prompt_embeds, face_pixel_values=face, **common)[
                            0
                        ]
                    if do_cfg:
                        with pipe.transformer.cache_context("uncond"):
                            # The official "face CFG": negative prompt AND a blanked face (all -1).
                            noise_uncond = pipe.transformer(
                                encoder_hidden_states=negative_embeds, face_pixel_values=face * 0 - 1, **common
                            )[0]
                        noise = noise_uncond + s.guidance * (noise - noise_uncond)
                latents = self.scheduler.step(noise, t, latents, return_dict=False)[0]
                self._emit("step", segment.index, step + 1)

            # Free the step state (and cached residuals / face encodings) before the VAE decode's own peak.
            del model_input, common, noise, conditioning, pose_latents, face
            reset_step_cache(pipe.transformer)
            self._emit("decode", segment.index, s.steps)
            decoded = self._decode(latents)
            if s.color_correction > 0 and color_reference is not None:
                decoded = match_segment(decoded, color_reference, s.color_correction)
            tail = decoded[:, :, -s.overlap :].clone()
            keep_to = min(segment.length, m.num_frames - self._output_offset(segment) + segment.keep_from)
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

    def _guided_batch(
        self,
        common: dict[str, Any],
        prompt_embeds: torch.Tensor,
        negative_embeds: torch.Tensor,
        face: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The conditional and unconditional passes as one batch of two.

        One forward of batch 2 keeps the GPU busier than two of batch 1 and reads
        every weight once instead of twice (what matters under offloading and
        quantization). The uncond half is the official "face CFG": the negative
        prompt AND a blanked face (all -1). Both prompt embeddings are padded to the
        same length by ``encode_prompt``, so they stack.
        """
        pair = dict(common)
        for name in ("hidden_states", "encoder_hidden_states_image", "pose_hidden_states"):
            pair[name] = torch.cat([common[name], common[name]])
        pair["timestep"] = torch.cat([common["timestep"], common["timestep"]])
        with self.pipe.transformer.cache_context("cond_uncond"):
            both = self.pipe.transformer(
                encoder_hidden_states=torch.cat([prompt_embeds, negative_embeds]),
                face_pixel_values=torch.cat([face, face * 0 - 1]),
                **pair,
            )[0]
        cond, uncond = both.chunk(2)
        return cond, uncond

    def _output_offset(self, segment: Segment) -> int:
        """Index in the final video of this segment's first kept frame."""
        return segment.start + segment.keep_from

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        latents = latents.to(vae.dtype)
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
        recip_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1).to(latents.device, latents.dtype)
        latents = latents / recip_std + mean
        # Latent frame 0 is the reference image: it is conditioning, not output.
        return vae.decode(latents[:, :, 1:], return_dict=False)[0]
