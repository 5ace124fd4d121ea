"""Budgets pick quantization and offload from sizes known before loading, and say what they chose.

The sizes come from configs only (the DiT counted on the meta device, the encoders from headers or
parameter counts). A budget no plan meets is one error line naming the smallest budget that works.
"""

from __future__ import annotations

import logging

import pytest
import torch

from wanimate.cli import main
from wanimate.errors import WanimateError
from wanimate.generate.runtime import resolve_budget
from wanimate.generate.settings import GenerateSettings
from wanimate.materials.synthetic import write_materials
from wanimate.models.budget import Workload, estimate_ram_gib, estimate_vram_gib, plan_for_budget
from wanimate.models.factory import model_config
from wanimate.models.memory import MemoryOptions
from wanimate.models.sizes import REAL_ENCODERS, model_sizes, weights_sizes

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
AT_480P = Workload(height=480, width=832, frames=77, batch=1)


@pytest.fixture(scope="module")
def full_sizes():
    """The 14B DiT (its real config) with the real encoders' sizes, bf16."""
    from diffusers import WanAnimateTransformer3DModel

    return model_sizes(WanAnimateTransformer3DModel, model_config("full").transformer, torch.bfloat16, REAL_ENCODERS)


def test_full_model_sizes_come_from_its_config(full_sizes) -> None:
    gib = 2**30
    assert 32.0 < full_sizes.dit["none"] / gib < 33.0  # 17.3B parameters, bf16 (+ fp32 modules)
    assert 16.0 < full_sizes.dit["int8"] / gib < 17.0  # ~98% of them in int8
    assert full_sizes.dit["fp8"] < full_sizes.dit["int8"]  # int8 also keeps a scale per row
    assert 10.5 < full_sizes.text_encoder / gib < 10.7  # umT5-XXL in bf16


def test_vram_planner_trades_speed_for_memory_as_the_budget_shrinks(full_sizes) -> None:
    roomy = plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=80)
    assert roomy.options == MemoryOptions() and roomy.vram_gib <= 80
    tight = plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=12)
    assert tight.options.offload in ("group", "sequential") and tight.options.quantize == "fp8"
    assert tight.vram_gib <= 12
    order = [plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=b).options for b in (80, 48, 40, 24, 12, 8)]
    ranks = [
        ["none", "model", "group", "sequential"].index(o.offload) * 10 + (o.quantize != "none") + o.text_encoder_cpu
        for o in order
    ]
    assert ranks == sorted(ranks)
    # 720p needs more than 480p under the same plan; CFG batching doubles activations.
    lean = MemoryOptions(offload="group", quantize="fp8", text_encoder_cpu=True, vae_tiling=True)
    at720 = Workload(height=720, width=1280, frames=77, batch=1)
    at720_cfg = Workload(height=720, width=1280, frames=77, batch=2)
    assert (
        estimate_vram_gib(lean, full_sizes, AT_480P)
        < estimate_vram_gib(lean, full_sizes, at720)
        < estimate_vram_gib(lean, full_sizes, at720_cfg)
    )


def test_ram_budget_trades_vram_for_host_memory(full_sizes) -> None:
    """Offloading moves weights to the host: a RAM budget steers the plan away from it."""
    group = plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=12)
    model_off = MemoryOptions(offload="model", quantize="fp8", text_encoder_cpu=True, vae_tiling=True)
    assert estimate_ram_gib(model_off, full_sizes, AT_480P, CUDA) < group.ram_gib  # group pins a second copy
    picked = plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=12, ram_budget=group.ram_gib - 1)
    assert picked.options.offload == "sequential" and picked.ram_gib <= group.ram_gib - 1
    with pytest.raises(WanimateError) as err:
        plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=12, ram_budget=8)
    message = str(err.value)
    assert "\n" not in message and "--vram-budget 12 and --ram-budget 8" in message
    smallest = float(message.split("smallest that works is --ram-budget ")[1].split()[0])
    assert plan_for_budget(full_sizes, AT_480P, CUDA, vram_budget=12, ram_budget=smallest).ram_gib <= smallest


def test_cpu_ram_budget_picks_int8_and_an_unmeetable_one_names_the_minimum() -> None:
    sizes = weights_sizes("random:mid", dtype=torch.float32)
    work = Workload(height=256, width=256, frames=17, batch=1)
    plain = plan_for_budget(sizes, work, CPU, ram_budget=100)
    assert plain.options == MemoryOptions()
    int8 = MemoryOptions(quantize="int8", vae_tiling=True)
    lean = estimate_ram_gib(int8, sizes, work, CPU)
    assert lean < plain.ram_gib
    assert plan_for_budget(sizes, work, CPU, ram_budget=(lean + plain.ram_gib) / 2).options == int8
    with pytest.raises(WanimateError) as err:
        plan_for_budget(sizes, work, CPU, ram_budget=lean - 0.2)
    message = str(err.value)
    assert "\n" not in message and "int8 DiT" in message
    smallest = float(message.split("smallest that works is --ram-budget ")[1].split()[0])
    assert lean <= smallest <= lean + 0.1
    assert plan_for_budget(sizes, work, CPU, ram_budget=smallest).options == int8


def test_prequantized_weights_are_planned_as_stored(full_sizes) -> None:
    from dataclasses import replace

    stored = replace(full_sizes, dit=dict.fromkeys(full_sizes.dit, full_sizes.dit["int8"]), stored="int8")
    plan = plan_for_budget(stored, AT_480P, CUDA, vram_budget=12)
    assert plan.options.quantize == "int8" and "int8 DiT" in plan.explanation


def test_budget_resolves_into_concrete_options_and_says_so(caplog) -> None:
    sizes = weights_sizes("random:tiny", dtype=torch.float32)
    settings = GenerateSettings(ram_budget=100.0, device="cpu", dtype="fp32")
    with caplog.at_level(logging.WARNING, logger="wanimate"):
        resolved = resolve_budget(settings, sizes, 32, 32)
    assert resolved.ram_budget is None and resolved.vram_budget is None
    assert "--ram-budget 100 GB: picked offload=none quantize=none" in caplog.text
    # The budget itself never enters the resume key; the options it picked do.
    assert settings.result_key() == GenerateSettings(ram_budget=3.0, device="cpu", dtype="fp32").result_key()
    assert GenerateSettings(vram_budget=3.0).result_key() == GenerateSettings().result_key()
    assert GenerateSettings(offload="group").result_key() == GenerateSettings().result_key()
    assert GenerateSettings(quantize="int8").result_key() != GenerateSettings().result_key()


def test_too_small_budget_on_the_command_line_is_one_line(tmp_path, capsys) -> None:
    materials = write_materials(tmp_path / "m", num_frames=9)
    args = ["generate", str(materials), "-o", str(tmp_path / "out.mp4"), "--weights", "random:tiny"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--device", "cpu", "--dtype", "fp32", "--ram-budget", "0.2"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err.count("\n") == 0 and "no memory plan fits --ram-budget 0.2" in err and "--ram-budget 1." in err
    assert not (tmp_path / "out.mp4").exists()
