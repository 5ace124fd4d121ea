"""``wanimate convert``: official weights to a diffusers folder, optionally with a pre-quantized DiT.

Both families (Wan2.2-Animate-14B and Wan2.1-I2V-14B) are read from the folder itself. An official
folder (or hub repo) becomes a diffusers folder; with ``quantize`` its DiT is written
already quantized (:mod:`wanimate.models.quantized`), and a plain diffusers folder can be given a
pre-quantized copy the same way (its other components are hard-linked, not copied, when the file
system allows). Output goes to ``DST.partial`` and is renamed at the end, so an interrupted run
leaves no half folder; an existing ``DST`` is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from wanimate.errors import WanimateError
from wanimate.models import hub, official, official_io, quantized
from wanimate.models.families import ANIMATE, ModelFamily
from wanimate.models.loading import (
    DIFFUSERS_PARTS,
    detect_diffusers_family,
    detect_layout,
    detect_official_family,
    progress_bars,
    transformer_config,
)
from wanimate.models.official_io import LORA_FILE, LORA_PEFT_DIR, find_relight_lora
from wanimate.models.streaming import check_quantize, read_safetensors
from wanimate.paths import check_apart, make_parents, os_faults, output_folder, remove_empty, temp_sibling


def convert_weights(
    src: str | Path,
    dst: Path,
    *,
    quantize: str = "none",
    dtype: torch.dtype = torch.bfloat16,
    progress: bool = True,
) -> Path:
    """Write ``src`` as a diffusers folder at ``dst``; with ``quantize`` the DiT is int8/fp8 for ``dtype`` compute.

    Components are converted one at a time and the DiT tensor by tensor into shards of at most
    5 GB, so peak memory stays at one shard plus the text encoder. The relighting LoRA is placed at
    ``dst/relighting_lora.ckpt`` (or ``dst/relighting_lora/``) where :func:`load_model` finds it again.
    Without ``quantize`` the stored dtypes are kept.
    """
    dst = Path(dst)
    check_quantize(quantize)
    if os.path.lexists(dst):
        raise WanimateError(f"{dst} already exists; choose a new output folder")
    output_folder(dst, "DST")
    src_path = Path(src).expanduser()
    if src_path.is_dir():
        folder = src_path.resolve()
    elif src_path.exists():
        raise WanimateError(f"{src} is a file; convert reads an official-layout folder or a hub repo id")
    elif hub.looks_like_repo_id(str(src)):
        use = f"run `wanimate convert {{local}} {dst}`"
        folder = hub.resolve_repo(str(src), None, progress, use=use)
    else:
        raise WanimateError(f"{src} is not a folder or a hub repo id")
    check_apart({"SRC folder": folder}, {"DST": dst})
    layout = detect_layout(folder)
    family = detect_official_family(folder) if layout == "official" else detect_diffusers_family(folder)
    if layout == "diffusers":
        if quantize == "none":
            raise WanimateError(
                f"{src} is already in the diffusers layout; pass it to --weights directly "
                "(or add --quantize int8|fp8 to write a pre-quantized copy)"
            )
        stored, _ = quantized.stored_quantization(transformer_config(folder, layout, family), str(folder))
        if stored != "none":
            raise WanimateError(f"{src} is already pre-quantized to {stored}; convert the unquantized weights")
    partial = temp_sibling(dst)
    if os.path.lexists(partial):
        raise WanimateError(f"{partial} is in the way (left by an interrupted convert?); remove it and run again")
    with os_faults():
        created = make_parents(dst)
        partial.mkdir()
        try:
            with progress_bars(progress):
                if layout == "official":
                    _write_from_official(folder, partial, family, quantize, dtype, progress)
                else:
                    _write_from_diffusers(folder, partial, family, quantize, dtype)
            partial.rename(dst)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)  # made by this call, moments ago
            remove_empty(created)
            raise
    return dst


def _write_from_official(
    folder: Path, out: Path, family: ModelFamily, quantize: str, dtype: torch.dtype, progress: bool
) -> None:
    import diffusers
    from tqdm.auto import tqdm

    steps = ["transformer", "vae", "text_encoder", "image_encoder", "tokenizer", "scheduler", "relighting LoRA"]
    bar = tqdm(steps, desc="converting", disable=not progress)
    _write_official_transformer(folder, out / "transformer", family, quantize, dtype)
    bar.update()
    official_io.load_official_vae(folder).save_pretrained(out / "vae")
    bar.update()
    text_encoder = official_io.load_official_text_encoder(folder, None)
    text_encoder.save_pretrained(out / "text_encoder", max_shard_size="5GB")
    del text_encoder
    bar.update()
    image_encoder = official_io.load_official_image_encoder(folder, None)
    image_encoder.save_pretrained(out / "image_encoder")
    official_io.official_image_processor(image_encoder).save_pretrained(out / "image_processor")
    bar.update()
    tokenizer = official_io.load_official_tokenizer(folder)
    tokenizer.save_pretrained(out / "tokenizer")
    bar.update()
    scheduler = family.build_scheduler()
    scheduler.save_pretrained(out / "scheduler")
    bar.update()
    if family is ANIMATE:
        _place_lora(folder, out)
    bar.update()
    bar.close()
    index = {
        "_class_name": family.pipeline_class,
        "_diffusers_version": diffusers.__version__,
        "image_encoder": ["transformers", type(image_encoder).__name__],
        "image_processor": ["transformers", "CLIPImageProcessor"],
        "scheduler": ["diffusers", type(scheduler).__name__],
        "text_encoder": ["transformers", "UMT5EncoderModel"],
        "tokenizer": ["transformers", type(tokenizer).__name__],
        "transformer": ["diffusers", family.transformer_class],
        "vae": ["diffusers", "AutoencoderKLWan"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def _write_official_transformer(
    folder: Path, out: Path, family: ModelFamily, quantize: str, dtype: torch.dtype
) -> None:
    """The native DiT renamed tensor by tensor into diffusers' sharded layout (stored dtype kept unless quantized)."""
    shards = official_io.dit_shards(folder)
    all_keys = list(official_io.safetensors_shapes(shards))
    tensors = (item for shard in shards for item in official.dit_native_to_diffusers(read_safetensors(shard), all_keys))
    quantized.write_transformer(
        family.transformer_cls(),
        official_io.official_dit_config(folder, family),
        tensors,
        out,
        quantize=quantize,
        dtype=None if quantize == "none" else dtype,
    )


def _write_from_diffusers(folder: Path, out: Path, family: ModelFamily, quantize: str, dtype: torch.dtype) -> None:
    """A pre-quantized copy of a diffusers folder: the DiT rewritten, everything else hard-linked."""
    config = transformer_config(folder, "diffusers", family)
    source = folder / "transformer"
    tensors = (item for shard in official_io.dit_shards(source) for item in read_safetensors(shard))
    quantized.write_transformer(
        family.transformer_cls(), config, tensors, out / "transformer", quantize=quantize, dtype=dtype
    )
    for part in DIFFUSERS_PARTS:
        if part != "transformer":
            shutil.copytree(folder / part, out / part, copy_function=_link_or_copy)
    _link_or_copy(folder / "model_index.json", out / "model_index.json")
    _place_lora(folder, out)


def _place_lora(folder: Path, out: Path) -> None:
    lora = find_relight_lora(folder)
    if lora is not None and lora.is_file():
        _link_or_copy(lora, out / LORA_FILE)
    elif lora is not None:
        shutil.copytree(lora, out / LORA_PEFT_DIR, copy_function=_link_or_copy)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Hard-link when possible: the 1.4 GB LoRA or an 11 GB text encoder then costs no extra disk."""
    try:
        os.link(Path(src).resolve(), dst)
    except OSError:
        shutil.copy2(src, dst)
