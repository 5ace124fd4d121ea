"""Face-adapter attention on one rank's slice of the token sequence, exact without communication.

Wan-Animate's face adapters attend *per latent frame*: each frame's spatial tokens
attend only to that frame's 5 motion tokens (diffusers reshapes the query into
``(frames, tokens_per_frame)`` groups). Under Ulysses a rank holds a contiguous run of
the frame-major sequence that may start and end inside a frame, so the stock
processor either fails to reshape or, with the context-parallel config it is given by
``enable_parallelism``, attends across the wrong frames (see
docs/scale.md). This processor pads the local run out to whole frames, attends those
frames' queries against those frames' motion tokens only, and drops the padding. Each
query row's softmax involves only its own frame's keys, so the padded rows change
nothing: the result equals the single-process one, with no collective at all.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_dispatch import dispatch_attention_fn

from wanimate.parallel.shard import SequenceShard


class FrameLocalFaceProcessor:
    """Drop-in for ``WanAnimateFaceBlockAttnProcessor`` on a rank that holds ``shard`` of the sequence."""

    _attention_backend = None
    _parallel_config = None  # per-frame attention never crosses ranks

    def __init__(self, shard: SequenceShard, backend: str | None = None) -> None:
        self.shard = shard
        self._attention_backend = backend

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if attention_mask is not None:  # the model never passes one; a sliced multiplicative mask is untested
            raise ValueError("FrameLocalFaceProcessor does not take a face attention mask")
        hidden = attn.pre_norm_q(hidden_states)
        motion = attn.pre_norm_kv(encoder_hidden_states)
        batch, frames, per_frame, _ = motion.shape
        motion = motion.flatten(1, 2)
        query = attn.norm_q(attn.to_q(hidden).unflatten(2, (attn.heads, -1)))
        key = attn.norm_k(attn.to_k(motion).view(batch, frames, per_frame, attn.heads, -1))
        value = attn.to_v(motion).view(batch, frames, per_frame, attn.heads, -1)

        hw, start, local = self.shard.tokens_per_frame, self.shard.start, query.shape[1]
        first, last = start // hw, (start + local - 1) // hw + 1
        front, back = start - first * hw, last * hw - start - local
        query = F.pad(query, (0, 0, 0, 0, front, back)).unflatten(1, (last - first, hw)).flatten(0, 1)
        out = dispatch_attention_fn(
            query,
            key[:, first:last].flatten(0, 1),
            value[:, first:last].flatten(0, 1),
            attn_mask=None,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=None,
        )
        out = out.flatten(2, 3).type_as(query).unflatten(0, (batch, last - first)).flatten(1, 2)
        return attn.to_out(out[:, front : front + local])
