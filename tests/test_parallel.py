"""One video on several CPU ranks (gloo, 127.0.0.1) equals the single-process video.

Each world size spawns its ranks once and runs every case in that group (process
start-up is what costs). The references run in this process with the same engine.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_runs import run_engine
from parallel_ranks import Case, model_of, run_on_ranks, settings_of
from safetensors.torch import load_file

from wanimate.errors import WanimateError
from wanimate.generate import GenerateSettings, generate
from wanimate.generate.engine import SegmentGenerator
from wanimate.materials import load_materials
from wanimate.materials.synthetic import write_character_materials, write_materials
from wanimate.models.factory import build_pipeline
from wanimate.parallel.layout import ParallelSettings, choose_layout
from wanimate.parallel.run import RankJob, run_generation

TOLERANCE = 1e-5
STEPS = dict(steps=2)


@pytest.fixture(scope="module")
def materials(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel-materials")
    # 25 frames = 3 segments of 9; 32x32 gives 16 tokens per segment (even on 2 ranks, uneven on 3).
    folders = {mode: write_materials(root / mode, num_frames=25, mode=mode) for mode in ("animate", "replace")}
    # MultiAnimate: 2 characters, 17 frames = 2 segments of 9 (the second continues from the first's last frame).
    folders["characters"] = write_character_materials(root / "characters", characters=2, num_frames=17)
    return folders


def _reference(case: Case) -> np.ndarray:
    if case.multianimate:
        model, mats, _ = model_of(case)
        generator = SegmentGenerator(model, mats, settings_of(case), torch.device("cpu"))
        return torch.cat([out.frames for out in generator.run()]).numpy()
    return run_engine(build_pipeline(case.model), load_materials(case.materials), **case.settings)


def _check(cases: list[Case], out: Path, one_thread) -> dict[str, float]:
    errors = {}
    for case in cases:
        ref = _reference(case)
        got = np.load(out / f"{case.name}.npy")
        assert got.shape == ref.shape == ((17, 32, 48, 3) if case.multianimate else (25, 32, 32, 3))
        errors[case.name] = float(np.abs(got - ref).max())
    return errors


def _same_segments(one: Path, many: Path, count: int) -> None:
    """Two work folders hold the same segments: same random state, float tails within TOLERANCE, uint8 ±1."""
    for index in range(count):
        a, b = load_file(str(one / f"{index:05d}.safetensors")), load_file(str(many / f"{index:05d}.safetensors"))
        assert torch.equal(a["rng_state"], b["rng_state"])
        assert (a["tail"] - b["tail"]).abs().max() <= TOLERANCE  # the decoded float frames
        assert (a["frames"].int() - b["frames"].int()).abs().max() <= 1  # uint8: at most one rounding step


def test_two_ranks_equal_one_for_both_models_with_and_without_cfg_parallel(materials, tmp_path, one_thread):
    a, r, c = materials["animate"], materials["replace"], materials["characters"]
    multi = dict(steps=2, guidance=1.5)
    cases = [
        Case("ulysses-animate", a, dict(STEPS, guidance=1.0)),
        Case("cfg-parallel-replace", r, dict(STEPS, guidance=2.0), cfg_parallel="on"),
        Case("ulysses-batched-cfg-animate", a, dict(STEPS, guidance=2.0), cfg_parallel="off"),
        Case("ulysses-fsdp-replace", r, dict(STEPS, guidance=1.0), fsdp=True),
        Case("stock-face-processors", a, dict(STEPS, guidance=1.0), stock_face=True),
        Case("multianimate-ulysses", c, dict(steps=2, guidance=1.0), multianimate=True),
        Case("multianimate-cfg-parallel", c, multi, cfg_parallel="on", multianimate=True),
        Case("multianimate-ulysses-batched-cfg", c, multi, cfg_parallel="off", multianimate=True),
        # Last: what `generate --gpus 2 --model multianimate` runs on each rank (loading, work folder, video), FSDP on.
        Case("multianimate-job", c, multi, multianimate=True, fsdp=True, job=True),
    ]
    run_on_ranks(2, cases, tmp_path)
    engine_cases = [case for case in cases if not case.job]
    layouts = {c.name: (tmp_path / f"{c.name}.layout").read_text() for c in engine_cases}
    assert layouts["ulysses-animate"] == layouts["multianimate-ulysses"] == "2 ranks: Ulysses x2"
    cfg_split = "2 ranks: CFG parallel (cond | uncond)"
    assert layouts["cfg-parallel-replace"] == layouts["multianimate-cfg-parallel"] == cfg_split
    # Block 0 sees half the sequence under Ulysses (Animate: 4 latent frames x 4 patches; MultiAnimate: 3 x 6).
    tokens = {c.name: int((tmp_path / f"{c.name}.tokens").read_text()) for c in engine_cases}
    assert (tokens["ulysses-animate"], tokens["cfg-parallel-replace"]) == (8, 16)
    assert (tokens["multianimate-ulysses"], tokens["multianimate-cfg-parallel"]) == (9, 18)
    errors = _check(engine_cases, tmp_path, one_thread)
    for name, error in errors.items():
        if name != "stock-face-processors":
            assert error <= TOLERANCE, (name, error)
    # The trap the frame-local face processor avoids: diffusers' own face attention on a shard mixes frames.
    assert errors["stock-face-processors"] > 1e-2

    job = cases[-1]
    one = tmp_path / "one.mp4"
    generate(c, one, settings=settings_of(job), weights="random:tiny", adapter="random:3", keep_work=True, audio=False)
    assert (tmp_path / "multianimate-job.mp4").is_file()
    _same_segments(tmp_path / "one.work" / "segments", tmp_path / "multianimate-job.work" / "segments", 2)


def test_three_ranks_uneven_shards_equal_one(materials, tmp_path, one_thread):
    cases = [
        Case("ulysses3-replace", materials["replace"], dict(STEPS, guidance=1.0), model="tiny6"),
        Case("ulysses3-cfg-animate", materials["animate"], dict(STEPS, guidance=2.0), model="tiny6"),
    ]
    run_on_ranks(3, cases, tmp_path)
    # 16 tokens do not divide by 3: diffusers' uneven Ulysses, our uneven gather and face offsets.
    assert (tmp_path / "ulysses3-replace.layout").read_text() == "3 ranks: Ulysses x3 (uneven)"
    for name, error in _check(cases, tmp_path, one_thread).items():
        assert error <= TOLERANCE, (name, error)


@pytest.mark.parametrize(
    ("world", "guidance", "heads", "tokens", "expected"),
    [
        (8, 1.0, 40, 75600, "8 ranks: Ulysses x8"),
        (8, 5.0, 40, 75600, "8 ranks: CFG parallel (cond | uncond) + Ulysses x4"),
        (3, 5.0, 40, 75600, "3 ranks: Ulysses x3 (uneven)"),
        (2, 5.0, 40, 32760, "2 ranks: CFG parallel (cond | uncond)"),
    ],
)
def test_layout_for_the_14b_model(world, guidance, heads, tokens, expected):
    assert choose_layout(world, guidance=guidance, heads=heads, tokens=tokens).describe() == expected


@pytest.mark.parametrize(
    ("world", "guidance", "heads", "cfg", "message"),
    [
        (4, 1.0, 2, "auto", "2 attention heads and 16 tokens per segment cannot be split across 4 sequence shards; "
         "use --gpus 2"),
        (3, 2.0, 6, "on", "--cfg-parallel on needs an even rank count; use --gpus 2 or 4"),
        (2, 1.0, 6, "on", "--cfg-parallel on needs --guidance above 1"),
    ],
)  # fmt: skip
def test_impossible_layouts_are_refused_naming_what_works(world, guidance, heads, cfg, message):
    with pytest.raises(WanimateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        choose_layout(world, guidance=guidance, heads=heads, tokens=16, cfg_parallel=cfg)


def _rank_pids() -> list[int]:
    return [p.pid for p in multiprocessing.active_children() if p.pid is not None]


def test_killed_rank_then_resumed_run_equals_one_process(tmp_path, one_thread):
    """Kill one rank of a 2-rank run mid-job; ``generate --gpus 2`` again resumes and matches one process."""
    mats = write_materials(tmp_path / "m", num_frames=33)  # 4 segments of 9
    settings = GenerateSettings(
        steps=6, segment_frames=9, dtype="fp32", device="cpu", prompt="w1 w2", negative_prompt="w4", seed=3
    )
    reference = tmp_path / "one.mp4"
    generate(mats, reference, settings=settings, weights="random:tiny", keep_work=True, audio=False)

    output = tmp_path / "two.mp4"
    segments = tmp_path / "two.work" / "segments"
    job = RankJob(mats, output, settings, ParallelSettings(gpus=2), weights="random:tiny", keep_work=True)
    failure: list[BaseException] = []
    before = set(_rank_pids())

    def killed_run() -> None:
        try:
            run_generation(job)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=killed_run)
    thread.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(segments.glob("*.safetensors")) and thread.is_alive():
        time.sleep(0.02)
    ranks = [pid for pid in _rank_pids() if pid not in before]
    assert thread.is_alive() and len(ranks) == 2, "the run finished before a rank could be killed"
    os.kill(max(ranks), signal.SIGKILL)  # the rank that was started last: not the writer
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert failure and isinstance(failure[0], WanimateError) and "run the same command again" in str(failure[0])
    assert not any(_alive(pid) for pid in ranks), "a rank outlived the failed run"
    assert not output.exists()
    finished = sorted(segments.glob("*.safetensors"))
    assert 1 <= len(finished) < 4
    stamps = {p.name: p.stat().st_mtime_ns for p in finished}

    resumed = subprocess.run(
        [sys.executable, "-m", "wanimate", "generate", str(mats), "-o", str(output), "--gpus", "2",
         "--weights", "random:tiny", "--segment-frames", "9", "--dtype", "fp32", "--device", "cpu",
         "--steps", "6", "--prompt", "w1 w2", "--negative-prompt", "w4", "--seed", "3", "--keep-work"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    for name, stamp in stamps.items():  # finished segments were not recomputed
        assert (segments / name).stat().st_mtime_ns == stamp
    _same_segments(tmp_path / "one.work" / "segments", segments, 4)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split()[2] != "Z"
