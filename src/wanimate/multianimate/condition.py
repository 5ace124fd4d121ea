"""The additive token condition: MultiAnimate's pose + identity features enter the DiT after the patch embedding.

The reference adds ``cond`` to the patchified tokens right before block 0. diffusers'
``WanTransformer3DModel`` patchifies with a Conv3d and then flattens in the same ``(f h w)`` order,
so adding the 5-D feature to the Conv3d's output is the same sum. :class:`PatchCondition` owns the
one forward hook that does it; the condition is given per call with :meth:`PatchCondition.adding`,
so a pass without it (the negative CFG pass) is simply a call outside the block. The hook stays
before ``_cp_plan``'s split at block 0 and outside the compiled blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from wanimate.errors import WanimateError


class PatchCondition:
    """Adds a feature ``(b, dim, f, h, w)`` to the first ``b`` rows of the patch embedding's output."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self._condition: torch.Tensor | None = None
        self._handle = transformer.patch_embedding.register_forward_hook(self._add)

    def _add(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        condition = self._condition
        if condition is None:
            return output
        if condition.shape[1:] != output.shape[1:]:
            raise WanimateError(
                f"the pose/identity condition has shape {tuple(condition.shape[1:])} but the DiT's patch grid is "
                f"{tuple(output.shape[1:])}; the adapters do not fit this base model"
            )
        rows = condition.shape[0]
        added = output[:rows] + condition.to(output.device, output.dtype)
        return added if rows == output.shape[0] else torch.cat([added, output[rows:]])

    @contextmanager
    def adding(self, condition: torch.Tensor) -> Iterator[None]:
        """Within the block, every transformer call adds ``condition`` to its first rows (the cond pass)."""
        if self._condition is not None:
            raise WanimateError("a condition is already being added; conditions do not nest")
        self._condition = condition
        try:
            yield
        finally:
            self._condition = None

    def remove(self) -> None:
        """Take the hook off the transformer (the model no longer adds anything)."""
        self._handle.remove()
