"""``wanimate convert`` and ``wanimate info``.

Both import torch/diffusers inside the command bodies so ``wanimate --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the weight commands to the ``wanimate`` app."""

    @app.command("convert")
    def convert(
        src: str = typer.Argument(
            ..., help="Official-layout folder or hub repo id (or a diffusers folder to quantize)."
        ),
        dst: Path = typer.Argument(..., help="Output diffusers folder (must not exist)."),
        quantize: str = typer.Option(
            "none", help="Write the DiT pre-quantized: none (stored dtypes kept), int8 (torchao) or fp8 (storage)."
        ),
        dtype: str = typer.Option("bf16", help="Compute dtype a pre-quantized DiT is made for: bf16, fp16 or fp32."),
    ) -> None:
        """Convert official Wan2.2-Animate-14B (with its relighting LoRA) or Wan2.1-I2V-14B weights to diffusers.

        With --quantize the DiT is written pre-quantized (a diffusers folder can be given such a copy too).
        """
        import torch

        from wanimate.models.convert import convert_weights
        from wanimate.models.modes import DTYPES, check_dtype

        check_dtype(dtype)
        out = convert_weights(src, dst, quantize=quantize, dtype=getattr(torch, DTYPES[dtype]))
        typer.echo(f"wrote {out}")

    @app.command("info")
    def info() -> None:
        """Versions, device, attention backends and the Wan-Animate/MultiAnimate weights found in the hub cache."""
        from wanimate.models.info import collect_info, format_info

        typer.echo(format_info(collect_info()))
