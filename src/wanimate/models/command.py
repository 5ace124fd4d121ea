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
        src: str = typer.Argument(..., help="Official-layout folder or hub repo id."),
        dst: Path = typer.Argument(..., help="Output diffusers folder (must not exist)."),
    ) -> None:
        """Convert official Wan2.2-Animate-14B (with its relighting LoRA) or Wan2.1-I2V-14B weights to diffusers."""
        from wanimate.models.loading import convert_weights

        out = convert_weights(src, dst)
        typer.echo(f"wrote {out}")

    @app.command("info")
    def info() -> None:
        """Versions, device, attention backends and the Wan-Animate/MultiAnimate weights found in the hub cache."""
        from wanimate.models.info import collect_info, format_info

        typer.echo(format_info(collect_info()))
