"""An independent MultiAnimate reference, written from shared/notes/multianimate-facts.md (§1.2-1.4, §4).

Nothing here imports wanimate's MultiAnimate code: the three adapters are raw ``F.conv*`` calls on
the checkpoint's tensors, the label map is a loop over masks, the DiT forward re-does
``WanTransformer3DModel.forward`` with the condition added to the patch tokens in the
``b (f h w) c`` layout the reference uses, and the sampler is DiffSynth's ``FlowMatchScheduler``
formula. Only the unchanged Wan parts (blocks, VAE, text and image encoders) are the base
components themselves.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# §1.2: convs at even Sequential indices; (stride, padding) per conv.
STACK_3D = [
    ((1, 1, 1), 1), ((1, 1, 1), 1), ((1, 1, 1), 1), ((1, 2, 2), 1), ((2, 2, 2), 1), ((2, 2, 2), 1), ((1, 2, 2), 0),
]  # fmt: skip
STACK_2D = [1, 1, 1, 2, 2, 2]


def stack_3d(state: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    for i, (stride, padding) in enumerate(STACK_3D):
        w, b = state[f"{name}.{2 * i}.weight"], state[f"{name}.{2 * i}.bias"]
        x = F.conv3d(x.to(w.dtype), w, b, stride=stride, padding=padding)
        if i < len(STACK_3D) - 1:
            x = F.silu(x)
    return x


def stack_2d(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    for i, stride in enumerate(STACK_2D):
        w, b = state[f"randomref_embedding_pose.{2 * i}.weight"], state[f"randomref_embedding_pose.{2 * i}.bias"]
        x = F.conv2d(x.to(w.dtype), w, b, stride=stride, padding=1)
        if i < len(STACK_2D) - 1:
            x = F.silu(x)
    return x


def label_map(masks: list[np.ndarray], num_classes: int) -> torch.Tensor:
    """§1.4 generate_label_map: masks (3, T, H, W) 0..255; (m > 127.5).any(channel); person i -> i+1, later wins."""
    _, t, h, w = masks[0].shape
    index = torch.zeros(1, t, h, w, dtype=torch.long)
    for i, mask in enumerate(masks):
        index[torch.from_numpy((mask > 127.5).any(axis=0))[None]] = i + 1
    return F.one_hot(index, num_classes).permute(0, 4, 1, 2, 3).float()


def repeat_first(video: torch.Tensor) -> torch.Tensor:
    return torch.cat([video[:, :, :1].repeat(1, 1, 3, 1, 1), video], dim=2)


def motion_condition(state: dict[str, torch.Tensor], pose: np.ndarray, masks: list[np.ndarray]) -> torch.Tensor:
    """§1.3 step 2: dwpose_embedding(pose/255) + label_embedding(label map), both with frame 0 repeated 3x."""
    num_classes = state["label_embedding.0.weight"].shape[1]
    pose_t = torch.from_numpy(pose).float()[None]  # (1, 3, T, H, W) 0..255
    labels = label_map(masks, num_classes)
    return stack_3d(state, "label_embedding", repeat_first(labels)) + stack_3d(
        state, "dwpose_embedding", repeat_first(pose_t) / 255.0
    )


def dit_forward(transformer, x, t, context, clip, add_condition=None) -> torch.Tensor:
    """``model_fn_wan_video``: patchify, ``x = add_condition + x`` in (b, f*h*w, c), the blocks, head, unpatchify."""
    b, _, f, h, w = x.shape
    p_t, p_h, p_w = transformer.config.patch_size
    rotary = transformer.rope(x)
    tokens = transformer.patch_embedding(x).flatten(2).transpose(1, 2)
    if add_condition is not None:
        bb, c = add_condition.shape[:2]
        tokens = add_condition.reshape(bb, c, -1).transpose(1, 2) + tokens  # rearrange 'b c f h w -> b (f h w) c'
    temb, proj, text, image = transformer.condition_embedder(t, context, clip)
    proj = proj.unflatten(1, (6, -1))
    context_all = torch.cat([image, text], dim=1)
    for block in transformer.blocks:
        tokens = block(tokens, context_all, proj, rotary)
    shift, scale = (transformer.scale_shift_table + temb.unsqueeze(1)).chunk(2, dim=1)
    tokens = (transformer.norm_out(tokens.float()) * (1 + scale) + shift).type_as(tokens)
    tokens = transformer.proj_out(tokens)
    out = tokens.reshape(b, f // p_t, h // p_h, w // p_w, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return out.flatten(6, 7).flatten(4, 5).flatten(2, 3)


def guided(transformer, x, t, positive, negative, clip, condition, scale: float) -> torch.Tensor:
    """§1.3 step 4: the negative pass gets the negative prompt, the same clip and y, and no condition."""
    pos = dit_forward(transformer, x, t, positive, clip, condition)
    if scale == 1.0:
        return pos
    neg = dit_forward(transformer, x, t, negative, clip, None)
    return neg + scale * (pos - neg)


def i2v_condition(vae, image: torch.Tensor, num_frames: int) -> torch.Tensor:
    """§1.3 step 1: concat(msk 4ch [frame 0 given], normalised VAE mean of [image, zeros])."""
    _, _, height, width = image.shape
    video = torch.cat([image[:, :, None], torch.zeros(1, 3, num_frames - 1, height, width)], dim=2)
    latent = vae.encode(video).latent_dist.mode()
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1)
    latent = (latent - mean) / std
    msk = torch.ones(1, num_frames, height // 8, width // 8)
    msk[:, 1:] = 0
    msk = torch.cat([msk[:, :1].repeat(1, 4, 1, 1), msk[:, 1:]], dim=1)
    msk = msk.view(1, msk.shape[1] // 4, 4, height // 8, width // 8).transpose(1, 2)
    return torch.cat([msk, latent], dim=1)


def clip_features(image_encoder, image: torch.Tensor, size: int, mean, std) -> torch.Tensor:
    """§1.3 step 1: the whole image (in [-1, 1]) squashed bicubic to size², then CLIP mean/std, penultimate layer."""
    pixels = F.interpolate(image, size=(size, size), mode="bicubic", align_corners=False) * 0.5 + 0.5
    pixels = (pixels - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return image_encoder(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]


def flow_match_sigmas(steps: int, shift: float) -> torch.Tensor:
    """§4 sampler: DiffSynth FlowMatchScheduler(shift, sigma_min=0, extra_one_step=True)."""
    sigmas = torch.linspace(1.0, 0.0, steps + 1)[:-1]
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def sample(transformer, vae, noise, y, positive, negative, clip, condition, steps, shift, scale) -> torch.Tensor:
    """The Euler loop on DiffSynth's sigmas (t = 1000 sigma, the last step goes to 0), then the VAE decode."""
    sigmas = flow_match_sigmas(steps, shift)
    latents = noise
    for i, sigma in enumerate(sigmas):
        t = (sigma * 1000).reshape(1)
        v = guided(transformer, torch.cat([latents, y], dim=1), t, positive, negative, clip, condition, scale)
        following = sigmas[i + 1] if i + 1 < len(sigmas) else torch.tensor(0.0)
        latents = latents + v * (following - sigma)
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1)
    return vae.decode(latents * std + mean).sample
