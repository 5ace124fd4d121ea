"""Load MultiAnimate: the Wan2.1-I2V-14B base (any layout) plus one released checkpoint's LoRA and adapters.

The base goes through :func:`wanimate.models.loading.load_model` with the Wan2.1-I2V family, so the
official hub repo is converted once and cached, the ``-Diffusers`` repo and local folders load as they
are, and a base of another family is refused before anything is read. The checkpoint is indexed
from its headers first: the number of characters it supports is checked against the materials before
the 14B base is touched, and only the adapter and LoRA tensors are ever read from its shards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from wanimate.errors import WanimateError
from wanimate.models import hub
from wanimate.models.families import I2V
from wanimate.multianimate.adapters import MultiAnimateAdapters
from wanimate.multianimate.checkpoint import (
    RELEASES,
    AdapterCheckpoint,
    checkpoint_files,
    merge_lora,
    read_adapter_state,
    releases_text,
    scan_checkpoint,
    tensor_reader,
)
from wanimate.multianimate.condition import PatchCondition

if TYPE_CHECKING:
    pass

log = logging.getLogger("wanimate")

DEFAULT_BASE = I2V.default_repo
DEFAULT_ADAPTER = "auto"
RANDOM_SEED_OFFSET = 4  # random adapters are seeded after the base's components (seed .. seed + 3)


@dataclass(frozen=True)
class RandomAdapters:
    """``--adapter random[:N]``: random adapters sized for the base, supporting ``max_characters``."""

    max_characters: int

    @property
    def name(self) -> str:
        return f"random:{self.max_characters}"


AdapterSpec = AdapterCheckpoint | RandomAdapters


@dataclass
class MultiAnimateModel:
    """The base pipeline (LoRA merged), the adapters and the condition hook, owned together.

    The speed and memory options are applied by the model session that holds it
    (:class:`~wanimate.models.session.ModelSession`), which places the adapters with the pipeline.
    """

    pipeline: Any  # diffusers.WanImageToVideoPipeline
    adapters: MultiAnimateAdapters
    layout: str
    source: str
    adapter_name: str
    adapter_source: str
    lora_layers: int
    condition: PatchCondition = field(init=False)

    def __post_init__(self) -> None:
        self.condition = PatchCondition(self.pipeline.transformer)

    @property
    def max_characters(self) -> int:
        return self.adapters.max_characters

    def check_characters(self, characters: int) -> None:
        if characters > self.max_characters:
            raise WanimateError(too_many_characters(characters, self.adapter_name, self.max_characters))


def too_many_characters(characters: int, adapter: str, supported: int) -> str:
    return (
        f"the materials have {characters} characters but the MultiAnimate checkpoint {adapter} supports up to "
        f"{supported}; released checkpoints: {releases_text()}"
    )


def resolve_adapter(spec: str, *, characters: int | None, random_base: bool, progress: bool = True) -> AdapterSpec:
    """What ``--adapter`` names, indexed from headers only.

    ``auto`` picks the smallest released checkpoint that supports ``characters`` (random adapters
    when the base is random); ``random`` / ``random:N`` builds random ones; a release name
    (``multianimate-3``, ``multianimate-7``), a hub ``org/repo/folder``, a local checkpoint folder or a
    ``.safetensors`` file name a real checkpoint.
    """
    wanted = characters or 1
    if spec == "auto":
        fits = [name for name, r in RELEASES.items() if r.max_characters >= wanted]
        if not fits:
            raise WanimateError(
                f"the materials have {wanted} characters; no released MultiAnimate checkpoint supports that many "
                f"({releases_text()})"
            )
        if random_base:
            return RandomAdapters(RELEASES[fits[0]].max_characters)
        spec = fits[0]
    if spec == "random" or spec.startswith("random:"):
        count = spec.removeprefix("random").removeprefix(":") or "3"
        if not count.isdigit() or int(count) < 1:
            raise WanimateError(f"--adapter random:N needs a number of characters N >= 1, not {spec!r}")
        return RandomAdapters(int(count))
    return _real_checkpoint(spec, progress)


def _real_checkpoint(spec: str, progress: bool) -> AdapterCheckpoint:
    path = Path(spec).expanduser()
    if path.exists():
        files = checkpoint_files(path.resolve())
        stamp = ",".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
        return scan_checkpoint(files, path.name, f"{path.resolve()}[{stamp}]")
    if spec in RELEASES:
        release = RELEASES[spec]
        repo, folder = release.repo, release.folder
    else:
        parts = spec.split("/")
        if len(parts) < 3 or not hub.looks_like_repo_id("/".join(parts[:2])):
            raise WanimateError(
                f"--adapter {spec!r} is not a checkpoint folder or file, a release ({releases_text()}), "
                "or a hub repo folder like N00B0DY/MultiAnimate/epoch=39-step=7000.ckpt"
            )
        repo, folder = "/".join(parts[:2]), "/".join(parts[2:])
    snapshot = hub.resolve_repo(repo, None, progress, folder=folder, option="--adapter")
    files = checkpoint_files(snapshot / folder)
    return scan_checkpoint(files, spec, f"{repo}@{snapshot.name}/{folder}")


def load_multianimate(
    weights: str | None = None,
    adapter: str = DEFAULT_ADAPTER,
    *,
    characters: int | None = None,
    dtype: torch.dtype = torch.bfloat16,
    device: str | torch.device = "cpu",
    progress: bool = True,
    base: str | None = None,
    seed: int = 0,
) -> MultiAnimateModel:
    """The MultiAnimate model for ``weights`` (the Wan2.1-I2V base) and ``adapter`` (the checkpoint).

    ``characters`` (when known) is checked against what the checkpoint supports before the base loads.
    ``base`` supplies the other components when ``weights`` is a single transformer file.
    """
    from wanimate.models.loading import load_model

    weights = weights or DEFAULT_BASE
    random_base = weights.startswith("random:")
    spec = resolve_adapter(adapter, characters=characters, random_base=random_base, progress=progress)
    if characters is not None and characters > spec.max_characters:
        raise WanimateError(too_many_characters(characters, spec.name, spec.max_characters))
    if isinstance(spec, AdapterCheckpoint):
        log.info("MultiAnimate checkpoint %s: up to %d characters, LoRA rank %s", spec.name, spec.max_characters,
                 spec.lora_rank)  # fmt: skip
    loaded = load_model(weights, family=I2V, dtype=dtype, device=device, progress=progress, base=base)
    transformer = loaded.pipeline.transformer
    dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    if isinstance(spec, RandomAdapters):
        torch.manual_seed(seed + RANDOM_SEED_OFFSET)
        adapters = MultiAnimateAdapters(dim, spec.max_characters).eval().requires_grad_(False)
        lora_layers, adapter_source = 0, spec.name
    else:
        if spec.dim != dim:
            raise WanimateError(
                f"the MultiAnimate checkpoint {spec.name} was trained on a DiT {spec.dim} wide, but the base "
                f"{loaded.source} is {dim} wide; use {DEFAULT_BASE}"
            )
        with tensor_reader() as reader:
            lora_layers = merge_lora(transformer, spec, reader)
            adapters = MultiAnimateAdapters.from_state_dict(read_adapter_state(spec, reader))
        adapter_source = spec.source
    adapters.to(torch.device(device)).match_dit_dtype(transformer.dtype)
    return MultiAnimateModel(
        pipeline=loaded.pipeline,
        adapters=adapters,
        layout=loaded.layout,
        source=loaded.source,
        adapter_name=spec.name,
        adapter_source=adapter_source,
        lora_layers=lora_layers,
    )
