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
from parallel_ranks import Case, run_on_ranks
from safetensors.torch import load_file

from wanimate.errors import WanimateError
from wanimate.generate import GenerateSettings, generate
from wanimate.materials import load_materials
from wanimate.materials.synthetic import write_materials
from wanimate.models.factory import build_pipeline
from wanimate.parallel.layout import ParallelSettings, choose_layout
from wanimate.parallel.run import RankJob, run_generation

TOLERANCE = 1e-5
STEPS = dict(steps=2)


@pytest.fixture(scope="module")
def materials(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel-materials")
    # 25 frames = 3 segments of 9; 32x32 gives 16 tokens per segment (even on 2 ranks, uneven on 3).
    return {mode: write_materials(root / mode, num_frames=25, mode=mode) for mode in ("animate", "replace")}


def _reference(case: Case) -> np.ndarray:
    return run_engine(build_pipeline(case.model), load_materials(case.materials), **case.settings)


def _check(cases: list[Case], out: Path, one_thread) -> dict[str, float]:
    errors = {}
    for case in cases:
        ref = _reference(case)
        got = np.load(out / f"{case.name}.npy")
        assert got.shape == ref.shape == (25, 32, 32, 3)
        errors[case.name] = float(np.abs(got - ref).max())
    return errors


def test_two_ranks_equal_one_in_both_modes_with_and_without_cfg_parallel(materials, tmp_path, one_thread):
    a, r = materials["animate"], materials["replace"]
    cases = [
        Case("ulysses-animate", a, dict(STEPS, guidance=1.0)),
        Case("cfg-parallel-replace", r, dict(STEPS, guidance=2.0), cfg_parallel="on"),
        Case("ulysses-batched-cfg-animate", a, dict(STEPS, guidance=2.0), cfg_parallel="off"),
        Case("ulysses-fsdp-replace", r, dict(STEPS, guidance=1.0), fsdp=True),
        Case("stock-face-processors", a, dict(STEPS, guidance=1.0), stock_face=True),
    ]
    run_on_ranks(2, cases, tmp_path)
    layouts = {c.name: (tmp_path / f"{c.name}.layout").read_text() for c in cases}
    assert layouts["ulysses-animate"] == "2 ranks: Ulysses x2"
    assert layouts["cfg-parallel-replace"] == "2 ranks: CFG parallel (cond | uncond)"
    errors = _check(cases, tmp_path, one_thread)
    for name, error in errors.items():
        if name != "stock-face-processors":
            assert error <= TOLERANCE, (name, error)
    # The trap the frame-local face processor avoids: diffusers' own face attention on a shard mixes frames.
    assert errors["stock-face-processors"] > 1e-2


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
    one, two = tmp_path / "one.work" / "segments", segments
    for index in range(4):
        a, b = load_file(str(one / f"{index:05d}.safetensors")), load_file(str(two / f"{index:05d}.safetensors"))
        assert torch.equal(a["rng_state"], b["rng_state"])
        assert (a["tail"] - b["tail"]).abs().max() <= TOLERANCE  # the decoded float frames
        assert (a["frames"].int() - b["frames"].int()).abs().max() <= 1  # uint8: at most one rounding step


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, only not yet reaped
        return stat.read().split()[2] != "Z"
