"""MultiAnimate's three small networks beside the DiT, and the identifier label map.

- **pose guider** (``dwpose_embedding``, the paper's 3D pose encoder): the skeleton video, every
  character drawn in one frame, /255 → one token feature per DiT patch.
- **identifier adapter** (``label_embedding``): the one-hot label map (background 0, character i =
  channel i, ``max_p + 1`` channels) → the same token grid. Each input channel's slice of the first
  conv is one character's identity: there are no per-character embeddings.
- **ref-pose encoder** (``randomref_embedding_pose``): the reference frame's skeleton image /255 →
  20 channels at the latent grid, added to the I2V condition ``y`` of every latent frame.

The attribute names are the checkpoint's, so the released state dicts load strictly and by name.
The layer stacks follow ``WanUniAnimateVideoPipeline.fetch_models``; sizes (DiT width, ``max_p``)
come from the weights, not from constants, so tiny test models use the same code.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

HIDDEN = 16  # ``concat_dim * 4`` in the reference
REF_POSE_CHANNELS = 20  # the I2V condition y: 4 mask + 16 latent channels
# (stride, kernel) of the 3D stacks' convs; every conv but the last is followed by SiLU.
_STACK_3D = (
    ((1, 1, 1), (3, 3, 3)),
    ((1, 1, 1), (3, 3, 3)),
    ((1, 1, 1), (3, 3, 3)),
    ((1, 2, 2), (3, 3, 3)),
    ((2, 2, 2), (3, 3, 3)),
    ((2, 2, 2), (3, 3, 3)),
)
_STACK_2D_STRIDES = (1, 1, 1, 2, 2, 2)
# The first pose / label frame is repeated this many extra times in front, so 4k+1 frames become
# 4k+4 and the two temporal stride-2 convs give exactly the k+1 latent frames.
LEADING_REPEATS = 3


def _stack_3d(in_channels: int, dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = in_channels
    for stride, kernel in _STACK_3D:
        layers += [nn.Conv3d(channels, HIDDEN, kernel, stride=stride, padding=1), nn.SiLU()]
        channels = HIDDEN
    layers.append(nn.Conv3d(HIDDEN, dim, (1, 2, 2), stride=(1, 2, 2), padding=0))
    return nn.Sequential(*layers)


def _stack_2d() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for i, stride in enumerate(_STACK_2D_STRIDES):
        out = REF_POSE_CHANNELS if i == len(_STACK_2D_STRIDES) - 1 else HIDDEN
        layers.append(nn.Conv2d(channels, out, 3, stride=stride, padding=1))
        if i < len(_STACK_2D_STRIDES) - 1:
            layers.append(nn.SiLU())
        channels = out
    return nn.Sequential(*layers)


def with_leading_repeats(video: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` → ``(B, C, T + 3, H, W)`` with frame 0 repeated in front, as the reference does."""
    return torch.cat([video[:, :, :1].repeat(1, 1, LEADING_REPEATS, 1, 1), video], dim=2)


class MultiAnimateAdapters(nn.Module):
    """The pose guider, identifier adapter and ref-pose encoder of one MultiAnimate checkpoint."""

    def __init__(self, dim: int, max_characters: int) -> None:
        super().__init__()
        self.dim = dim
        self.max_characters = max_characters
        self.dwpose_embedding = _stack_3d(3, dim)
        self.label_embedding = _stack_3d(max_characters + 1, dim)
        self.randomref_embedding_pose = _stack_2d()

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> MultiAnimateAdapters:
        """Sizes from the shapes (DiT width: the last conv's outputs; ``max_p``: label channels − 1), strict load."""
        dim = int(state["dwpose_embedding.12.weight"].shape[0])
        max_characters = int(state["label_embedding.0.weight"].shape[1]) - 1
        with torch.device("meta"):
            adapters = cls(dim, max_characters)
        adapters.load_state_dict(dict(state), strict=True, assign=True)
        return adapters.eval().requires_grad_(False)

    def match_dit_dtype(self, dtype: torch.dtype) -> MultiAnimateAdapters:
        """Cast the identifier adapter to the DiT's dtype and keep the other two as stored, as the reference does.

        (``WanUniAnimateVideoPipeline`` casts ``label_embedding`` to bf16 after loading; the pose guider
        and ref-pose encoder keep the checkpoint's fp32.)
        """
        self.label_embedding.to(dtype)
        return self

    def motion_condition(self, pose: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Pose guider + identifier adapter: ``(1, dim, k+1, H/16, W/16)``, added to the patch tokens.

        ``pose`` is ``(1, 3, 4k+1, H, W)`` in [0, 1] (pixels /255), ``labels`` the one-hot label map
        ``(1, max_p + 1, 4k+1, H, W)``. Each stack runs in its own weights' dtype; the two outputs are
        summed in ``dtype`` (the DiT's).
        """
        guider = self.dwpose_embedding[0].weight
        identifier = self.label_embedding[0].weight
        pose_feature = self.dwpose_embedding(with_leading_repeats(pose).to(guider.device, guider.dtype))
        label_feature = self.label_embedding(with_leading_repeats(labels).to(identifier.device, identifier.dtype))
        return label_feature.to(dtype) + pose_feature.to(dtype)

    def reference_pose_feature(self, ref_pose: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Ref-pose encoder: ``(1, 3, H, W)`` in [0, 1] → ``(1, 20, 1, H/8, W/8)``, broadcast over latent frames."""
        weight = self.randomref_embedding_pose[0].weight
        return self.randomref_embedding_pose(ref_pose.to(weight.device, weight.dtype)).unsqueeze(2).to(dtype)
