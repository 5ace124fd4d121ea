"""The Wan model families wanimate loads, and how each is recognised in every layout.

Wan2.2-Animate-14B and Wan2.1-I2V-14B (MultiAnimate's base) ship in the same official layout
(same file names, the same VAE, umT5 and CLIP files, native DiT keys) and in the same diffusers
layout (the same component folders). They differ in the DiT class, the pipeline class and the
scheduler their diffusers folders declare. One loader serves both, parameterised by a
:class:`ModelFamily`; each family also says how to recognise *another* family's weights, so
passing the wrong base is one clear line instead of a transformer with random holes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wanimate.errors import WanimateError
from wanimate.models.hub import DEFAULT_REPO, I2V_REPO

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModelFamily:
    """One family: its diffusers classes, its hub default and its official ``config.json`` marker."""

    key: str
    title: str
    default_repo: str
    pipeline_class: str  # diffusers pipeline class, as model_index.json names it
    transformer_class: str  # diffusers transformer class
    official_class: str  # ``_class_name`` of the official config.json
    official_model_type: str | None  # ``model_type`` of the official config.json (Wan2.1 sets it)

    def transformer_cls(self) -> Any:
        import diffusers

        return getattr(diffusers, self.transformer_class)

    def pipeline_cls(self) -> Any:
        import diffusers

        return getattr(diffusers, self.pipeline_class)

    def diffusers_config(self, official_config: Mapping[str, Any], shapes: Mapping[str, torch.Size]) -> dict:
        """The diffusers transformer config of an official DiT, read from its config.json and tensor shapes."""
        from wanimate.models import official

        if self is ANIMATE:
            return official.dit_diffusers_config(official_config, shapes)
        return official.i2v_diffusers_config(official_config, shapes)

    def build_scheduler(self) -> Any:
        """The scheduler a converted folder of this family is written with (generation sets its own)."""
        from wanimate.models.factory import build_scheduler

        if self is ANIMATE:
            return build_scheduler()
        from diffusers import FlowMatchEulerDiscreteScheduler

        return FlowMatchEulerDiscreteScheduler(shift=5.0)


ANIMATE = ModelFamily(
    key="wan-animate",
    title="Wan2.2-Animate-14B",
    default_repo=DEFAULT_REPO,
    pipeline_class="WanAnimatePipeline",
    transformer_class="WanAnimateTransformer3DModel",
    official_class="WanAnimateModel",
    official_model_type=None,
)
I2V = ModelFamily(
    key="wan-i2v",
    title="Wan2.1-I2V-14B",
    default_repo=I2V_REPO,
    pipeline_class="WanImageToVideoPipeline",
    transformer_class="WanTransformer3DModel",
    official_class="WanModel",
    official_model_type="i2v",
)
FAMILIES = (ANIMATE, I2V)


def describe_official(config: Mapping[str, Any], keys: set[str]) -> str:
    """What an official DiT is, in words: its class and model type, and whether it has the image branch."""
    cls = config.get("_class_name", "unknown class")
    kind = config.get("model_type")
    label = f"{cls}, model_type {kind}" if kind else str(cls)
    if not any(k.removeprefix("model.diffusion_model.").startswith("img_emb.") for k in keys):
        label += ", no CLIP image branch"
    return label


def check_official(family: ModelFamily, config: Mapping[str, Any], keys: set[str], where: str) -> None:
    """Refuse an official DiT of another family (``keys`` are its tensor names)."""
    cls = config.get("_class_name")
    native = {k.removeprefix("model.diffusion_model.") for k in keys}
    has_image = any(k.startswith("img_emb.") for k in native)
    has_motion = any(k.startswith("motion_encoder.") for k in native)
    if family is ANIMATE:
        ok = has_motion and cls in (None, family.official_class)
    else:
        kind = config.get("model_type")
        ok = has_image and not has_motion and cls in (None, family.official_class) and kind in (None, "i2v")
        ok = ok and int(config.get("in_dim", 36)) == 36
    if not ok:
        raise WanimateError(
            f"{where} is not {family.title} ({describe_official(config, keys)}); "
            f"use {family.title} weights such as {family.default_repo}"
        )


def check_diffusers(
    family: ModelFamily, model_index: Mapping[str, Any], transformer_config: Mapping, where: str
) -> None:
    """Refuse a diffusers folder of another family: another pipeline class, or a DiT without the image branch."""
    pipeline = model_index.get("_class_name")
    two_experts = model_index.get("transformer_2") not in (None, [None, None])
    ok = pipeline == family.pipeline_class and not two_experts
    if family is I2V:
        ok = ok and transformer_config.get("image_dim") is not None and transformer_config.get("in_channels") == 36
    if not ok:
        what = f"a {pipeline}" + (" with two expert transformers (Wan2.2)" if two_experts else "")
        if family is I2V and pipeline == family.pipeline_class and transformer_config.get("image_dim") is None:
            what += " without a CLIP image branch (Wan2.2-I2V)"
        raise WanimateError(
            f"{where} holds {what}, not {family.title} ({family.pipeline_class}); "
            f"use {family.title} weights such as {family.default_repo}"
        )
