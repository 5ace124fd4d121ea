"""Random DiT weights drawn tensor by tensor, so a model can be built (and quantized) layer by layer.

:func:`wanimate.models.factory.build_transformer` runs the model's own constructor, which initialises the
whole model at once in float32: 64 GiB for the 14B configuration. Here each checkpoint tensor is drawn
from its own generator, seeded by the model seed and the tensor's name, and fed to the streaming builder
(:mod:`wanimate.models.streaming`) like a tensor read from a file: peak memory is the finished model plus
one tensor, in whatever quantization was asked for. The values are a different draw from the whole-model
build's, with the same distributions where the layers have a standard init.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import torch

from wanimate.models.factory import ModelConfig, i2v_transformer_config
from wanimate.models.families import ANIMATE, ModelFamily


def random_tensors(skeleton: torch.nn.Module, seed: int = 0) -> Iterator[tuple[str, torch.Tensor]]:
    """Random float32 values for every checkpoint tensor of ``skeleton`` (shapes only are read), in order.

    Torch's Linear and Conv layers get their default init (weights and biases uniform in
    ±1/sqrt(fan_in)); norm scales are 1 and other biases 0; other weights are standard normal (the
    motion encoder's equalized-learning-rate layers scale by 1/sqrt(fan_in) in their forward); the
    remaining tables (modulation, motion directions, padding tokens) are normal with std 1/sqrt(last dim).
    """
    layers = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    names = set(skeleton.state_dict())
    for owner, module in skeleton.named_modules():
        for name, tensor in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            key = f"{owner}.{name}" if owner else name
            if key not in names:
                continue
            g = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(key.encode()))
            shape = tuple(tensor.shape)
            if isinstance(module, layers):
                fan_in = module.weight[0].numel()
                bound = 1 / fan_in**0.5
                value = torch.empty(shape).uniform_(-bound, bound, generator=g)
            elif name == "bias":
                value = torch.zeros(shape)
            elif name == "weight" and len(shape) == 1:
                value = torch.ones(shape)
            elif name == "weight":
                value = torch.randn(shape, generator=g)
            else:
                value = torch.randn(shape, generator=g) / max(shape[-1], 1) ** 0.5
            yield key, value


def build_streamed_transformer(
    cfg: ModelConfig,
    seed: int = 0,
    *,
    family: ModelFamily = ANIMATE,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    quantize: str = "none",
) -> Any:
    """The family's random DiT of ``cfg`` built layer by layer from :func:`random_tensors`, quantized as it goes.

    Peak memory is the finished model plus one tensor, so ``full`` (the 14B config) builds in int8 on
    a 24 GB machine. Its values are a different draw from ``factory.build_transformer``'s.
    """
    from wanimate.models.streaming import StreamingBuilder, build_skeleton

    config = cfg.transformer if family is ANIMATE else i2v_transformer_config(cfg)
    builder = StreamingBuilder(
        build_skeleton(family.transformer_cls(), config),
        dtype=dtype,
        device=torch.device(device),
        quantize=quantize,
    )
    for key, value in random_tensors(builder.model, seed):
        builder.add(key, value)
    return builder.finish()
