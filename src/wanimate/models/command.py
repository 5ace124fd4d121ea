"""``wanimate convert`` and ``wanimate info``.

Both import torch/diffusers inside the command bodies so ``wanimate --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the weight commands (convert, info) and ``wanimate bench load`` to the app."""

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

        from wanimate.errors import WanimateError
        from wanimate.generate.settings import DTYPES
        from wanimate.models.convert import convert_weights

        if dtype not in DTYPES:
            raise WanimateError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        out = convert_weights(src, dst, quantize=quantize, dtype=getattr(torch, DTYPES[dtype]))
        typer.echo(f"wrote {out}")

    @app.command("info")
    def info() -> None:
        """Versions, device, attention backends and the Wan-Animate/MultiAnimate weights found in the hub cache."""
        from wanimate.models.info import collect_info, format_info

        typer.echo(format_info(collect_info()))

    @bench_app.command("load")
    def bench_load_command(
        config: str = typer.Option("mid", help="Random model size: tiny, mid or full (the 14B DiT)."),
        quantize: str = typer.Option("int8", help="none, int8 or fp8: applied layer by layer while building."),
        dtype: str = typer.Option(
            "fp32", help="Compute dtype: fp32 (CPU: bf16 convolutions are slow there), bf16 or fp16."
        ),
        res: str = typer.Option("64x64", help="WIDTHxHEIGHT of the denoising step."),
        frames: int = typer.Option(5, help="Pixel frames of the denoising step (4n+1)."),
    ) -> None:
        """Build a random DiT streamed (quantized as it is built), run one denoising step: time and peak RSS."""
        import torch

        from wanimate.bench import print_metrics
        from wanimate.bench.generate import parse_resolution
        from wanimate.bench.load import bench_load
        from wanimate.errors import WanimateError
        from wanimate.generate.settings import DTYPES
        from wanimate.models.streaming import check_quantize

        check_quantize(quantize)
        if dtype not in DTYPES:
            raise WanimateError(f"--dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if frames < 1 or frames % 4 != 1:
            raise WanimateError(f"--frames must be 4n+1 (e.g. 5 or 9), not {frames}")
        width, height = parse_resolution(res)
        result = bench_load(
            config, quantize=quantize, dtype=getattr(torch, DTYPES[dtype]), height=height, width=width, frames=frames
        )
        print_metrics(f"wanimate bench load --config {config} --quantize {quantize} --dtype {dtype}", result)
