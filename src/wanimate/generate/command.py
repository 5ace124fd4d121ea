"""``wanimate generate`` and ``wanimate bench generate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wanimate.errors import WanimateError

MODELS = ("auto", "animate", "multianimate")


def materials_model(materials: Path) -> str:
    """``multianimate`` for an N-character folder (ours or MultiAnimate's demo layout), else ``animate``."""
    from wanimate.materials.folder import is_character_folder, read_meta

    if materials.is_dir() and is_character_folder(materials, read_meta(materials)):
        return "multianimate"
    return "animate"


def settings_for(model: str, per_model: dict[str, Any], shared: dict[str, Any]) -> Any:
    """The model's settings class with its own defaults wherever ``per_model`` leaves an option unset (None)."""
    from wanimate.generate.settings import GenerateSettings
    from wanimate.multianimate.settings import MultiAnimateSettings

    cls = MultiAnimateSettings if model == "multianimate" else GenerateSettings
    return cls(**{k: v for k, v in per_model.items() if v is not None}, **shared)


def generate_command(
    materials: Path = typer.Argument(..., help="Materials folder (from `wanimate preprocess` or the official one)."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .mp4 file."),
    model: str = typer.Option(
        "auto", help="auto (from the materials), animate (Wan2.2-Animate-14B) or multianimate (several characters)."
    ),
    mode: str | None = typer.Option(None, help="animate or replace (default: the materials' mode)."),
    weights: str | None = typer.Option(
        None,
        help="Hub repo id, local folder, single file, or random:tiny (default: Wan-AI/Wan2.2-Animate-14B; for "
        "multianimate the Wan2.1-I2V base, Wan-AI/Wan2.1-I2V-14B-720P).",
    ),
    adapter: str = typer.Option(
        "auto",
        help="multianimate: the MultiAnimate checkpoint: auto (smallest release that fits the characters), "
        "multianimate-3, multianimate-7, a checkpoint folder or .safetensors, or random[:N].",
    ),
    base: str | None = typer.Option(
        None, help="For a single-file transformer: where the VAE and encoders come from (hub id or folder)."
    ),
    steps: int | None = typer.Option(None, help="Denoising steps per segment (default: 20; multianimate 50)."),
    guidance: float | None = typer.Option(
        None, help="CFG scale; above 1 adds a negative pass (default: 1.0; multianimate 1.5)."
    ),
    shift: float = typer.Option(5.0, help="Flow-matching timestep shift."),
    seed: int = typer.Option(42, help="Random seed."),
    segment_frames: int | None = typer.Option(None, help="Frames per segment, 4n+1 (default: 77; multianimate 81)."),
    overlap: int = typer.Option(1, help="Temporal-guidance frames from the previous segment: 1 or 5."),
    relight: bool | None = typer.Option(
        None, "--relight/--no-relight", help="Relighting LoRA (default: on in replace mode when present)."
    ),
    relight_scale: float = typer.Option(1.0, help="Relighting LoRA strength."),
    prompt: str | None = typer.Option(
        None, help="Text prompt (default: the official one; multianimate: 'N person are dancing')."
    ),
    negative_prompt: str | None = typer.Option(None, help="Negative prompt, used when guidance > 1."),
    dtype: str = typer.Option("bf16", help="bf16, fp16 or fp32."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps ..."),
    clip_input: str = typer.Option(
        "official", help="official (squash letterboxed reference) or diffusers (centre crop)."
    ),
    sampler: str = typer.Option(
        "official", help="UniPC schedule: official (Wan2.2's, sigma from 0.9998) or diffusers (WanAnimatePipeline's)."
    ),
    color_correction: float = typer.Option(
        0.0, help="Match each new segment's Lab colour statistics to the first segment's: 0 (off) to 1 (full)."
    ),
    save_frames: Path | None = typer.Option(None, help="Also write every frame as PNG into this folder."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Re-mux the driving video's audio."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Reuse finished segments of an interrupted run."),
    work_dir: Path | None = typer.Option(None, help="Where finished segments are kept (default: <output stem>.work)."),
    keep_work: bool = typer.Option(False, help="Keep the work folder after the video is written."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output (and --save-frames PNGs)."),
    offload: str = typer.Option("none", help="none, model, group (layer streaming) or sequential."),
    quantize: str = typer.Option(
        "none",
        help="DiT weights, quantized layer by layer while loading: none, fp8 (storage, bf16 compute) or int8 "
        "(torchao). Pre-quantized weights load as stored.",
    ),
    vram_budget: float | None = typer.Option(
        None, help="GB of VRAM to fit in: picks offload/quantize/text-encoder/VAE options and says which."
    ),
    ram_budget: float | None = typer.Option(
        None, help="GB of host RAM to fit in (with or without --vram-budget): picks quantization and offload."
    ),
    text_encoder_cpu: bool = typer.Option(False, help="Run the umT5 text encoder on the CPU (saves ~11 GB)."),
    vae_tiling: bool = typer.Option(False, help="Tiled VAE decode (bounded memory at high resolution)."),
    attention: str = typer.Option("native", help="Attention backend: native, flash, sage, xformers, flex ..."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the repeated transformer blocks."),
    cache: str = typer.Option("none", help="Step cache: none, fbc (face-aware first-block) or taylorseer."),
    cache_threshold: float = typer.Option(0.05, help="fbc: relative change below which a step is cached."),
    cache_interval: int = typer.Option(3, help="taylorseer: full step every N steps."),
    distill_lora: str | None = typer.Option(None, help="Step-distill LoRA file (lightx2v-style Wan I2V 14B)."),
    distill_scale: float = typer.Option(1.0, help="Step-distill LoRA strength."),
    preset: str | None = typer.Option(
        None, help="lightx2v: 4 steps, guidance 1 (use with --distill-lora); overrides --steps/--guidance/--shift."
    ),
    batch_cfg: bool = typer.Option(
        True, "--batch-cfg/--no-batch-cfg", help="With guidance > 1, run cond and uncond as one batch."
    ),
    gpus: int = typer.Option(
        1, help="Ranks to spawn on this machine (one per GPU; CPU ranks with --device cpu). Under torchrun: ignored."
    ),
    cfg_parallel: str = typer.Option(
        "auto", help="With guidance > 1 and an even rank count: cond and uncond on different ranks (auto, on, off)."
    ),
    fsdp: bool = typer.Option(False, "--fsdp", help="Shard the DiT weights across the ranks (FSDP2)."),
) -> None:
    """Generate a video from a materials folder, segment by segment (resumable); on several GPUs with --gpus."""
    from rich.console import Console

    from wanimate.generate.progress import RichProgress
    from wanimate.parallel.layout import ParallelSettings
    from wanimate.parallel.run import RankJob, run_generation

    if model not in MODELS:
        raise WanimateError(f"--model must be one of {', '.join(MODELS)}, not {model!r}")
    chosen_model = materials_model(materials) if model == "auto" else model
    if preset is not None:
        from wanimate.models.distill import preset_settings

        chosen = preset_settings(preset)
        steps, guidance, shift = chosen["steps"], chosen["guidance"], chosen["shift"]
    per_model = dict(
        steps=steps, guidance=guidance, segment_frames=segment_frames, prompt=prompt, negative_prompt=negative_prompt
    )
    shared = dict(
        mode=mode,
        shift=shift,
        seed=seed,
        overlap=overlap,
        relight=relight,
        relight_scale=relight_scale,
        dtype=dtype,
        device=device,
        clip_input=clip_input,  # type: ignore[arg-type]
        sampler=sampler,  # type: ignore[arg-type]
        color_correction=color_correction,
        batch_cfg=batch_cfg,
        offload=offload,
        quantize=quantize,
        text_encoder_cpu=text_encoder_cpu,
        vae_tiling=vae_tiling,
        vram_budget=vram_budget,
        ram_budget=ram_budget,
        attention=attention,
        compile=compile,
        cache=cache,
        cache_threshold=cache_threshold,
        cache_interval=cache_interval,
        distill_lora=distill_lora,
        distill_scale=distill_scale,
    )
    settings = settings_for(chosen_model, per_model, shared)
    from wanimate.cast.folder import is_cast_folder, load_cast

    if is_cast_folder(materials) and load_cast(materials).mode == "replace":
        from wanimate.cast.replace import generate_cast_replace
        from wanimate.generate.settings import DEFAULT_WEIGHTS

        if gpus > 1:
            raise WanimateError("a replace-mode cast runs its passes on one device; drop --gpus")
        with RichProgress() as progress:
            path = generate_cast_replace(
                materials,
                output,
                settings=settings,
                weights=weights or DEFAULT_WEIGHTS,
                work_dir=work_dir,
                resume=resume,
                keep_work=keep_work,
                audio=audio,
                overwrite=overwrite,
                progress=progress,
            )
        Console(stderr=True).print(f"wrote {path}")
        return
    parallel = ParallelSettings(gpus=gpus, cfg_parallel=cfg_parallel, fsdp=fsdp)  # type: ignore[arg-type]
    parallel.validate()
    job = RankJob(
        materials=materials,
        output=output,
        settings=settings,
        parallel=parallel,
        weights=weights,
        adapter=adapter,
        base=base,
        work_dir=work_dir,
        resume=resume,
        keep_work=keep_work,
        save_frames=save_frames,
        audio=audio,
        overwrite=overwrite,
    )
    with RichProgress() as progress:
        path = run_generation(job, progress=progress)
    if path is not None:  # None on the ranks of a torchrun launch that do not write
        Console(stderr=True).print(f"wrote {path}")


def bench_generate_command(
    model: str = typer.Option("animate", help="animate (Wan2.2-Animate-14B) or multianimate."),
    config: str = typer.Option("tiny", help="Model size: tiny, mid or full (random weights)."),
    res: str = typer.Option("256x256", help="WIDTHxHEIGHT, or 480p / 720p."),
    frames: int | None = typer.Option(None, help="Driving frames (default: 77; multianimate 81)."),
    segment_frames: int | None = typer.Option(None, help="Frames per segment (default: 77; multianimate 81)."),
    steps: int = typer.Option(4, help="Denoising steps per segment (the per-step time is reported)."),
    guidance: float | None = typer.Option(
        None, help="CFG scale (above 1: two passes, batched in ours; default 1.0, multianimate 1.5)."
    ),
    characters: int = typer.Option(3, help="multianimate: characters in the synthetic materials."),
    dtype: str = typer.Option("fp32", help="bf16, fp16 or fp32."),
    device: str = typer.Option("auto", help="auto, cpu, cuda ..."),
    mode: str = typer.Option("animate", help="animate or replace."),
    baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Also run plain WanAnimatePipeline."),
    offload: str = typer.Option("none", help="none, model, group or sequential."),
    quantize: str = typer.Option("none", help="none, fp8 or int8."),
    text_encoder_cpu: bool = typer.Option(False, help="Text encoder on the CPU."),
    vae_tiling: bool = typer.Option(False, help="Tiled VAE decode."),
    attention: str = typer.Option("native", help="Attention backend."),
    compile: bool = typer.Option(False, "--compile", help="Compile the repeated transformer blocks."),
    cache: str = typer.Option("none", help="none, fbc or taylorseer."),
    cache_threshold: float = typer.Option(0.05, help="fbc threshold."),
) -> None:
    """Seconds per step, total, peak RSS/VRAM and weight memory: ours vs plain diffusers (random weights)."""
    from rich.console import Console

    from wanimate.bench import print_metrics
    from wanimate.bench.generate import bench_generate, parse_resolution

    if model not in ("animate", "multianimate"):
        raise WanimateError(f"--model must be animate or multianimate, not {model!r}")
    multi = model == "multianimate"
    default_frames = 81 if multi else 77
    frames = frames or default_frames
    segment_frames = segment_frames or default_frames
    guidance = guidance if guidance is not None else (1.5 if multi else 1.0)
    width, height = parse_resolution(res)
    chosen = dict(
        offload=offload,
        quantize=quantize,
        text_encoder_cpu=text_encoder_cpu,
        vae_tiling=vae_tiling,
        attention=attention,
        compile=compile,
        cache=cache,
        cache_threshold=cache_threshold,
    )
    defaults = dict(
        offload="none", quantize="none", text_encoder_cpu=False, vae_tiling=False, attention="native",
        compile=False, cache="none", cache_threshold=0.05,
    )  # fmt: skip
    options = {k: v for k, v in chosen.items() if v != defaults[k]}
    title = f"wanimate bench generate --model {model} --config {config} --res {res} --frames {frames}"
    if multi:
        from wanimate.bench.multianimate import bench_multianimate

        metrics = bench_multianimate(
            config, height=height, width=width, frames=frames, segment_frames=segment_frames, steps=steps,
            guidance=guidance, dtype=dtype, device=device, characters=characters, options=options,
        )  # fmt: skip
        print_metrics(title, metrics)
        return
    result = bench_generate(
        config,
        height=height,
        width=width,
        frames=frames,
        segment_frames=segment_frames,
        steps=steps,
        guidance=guidance,
        dtype=dtype,
        device=device,
        mode=mode,
        baseline=baseline,
        options=options,
    )
    print_metrics(title, result)
    if baseline:
        Console().print(
            f"ours vs diffusers: {result['speedup_per_step']:.2f}x per step, {result['speedup_total']:.2f}x total, "
            f"{result['weight_memory_ratio']:.2f}x less weight memory"
        )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    bench_app.command("generate")(bench_generate_command)
