"""Quantizing while loading never holds the full-precision weights: peak RSS, each load in its own process.

The checkpoint is an 8-block DiT of dim 1024 (about 320 MB in bf16, a small motion encoder) so that the
weights dominate the noise of a fresh Python process. The eager load is diffusers' ``from_pretrained``
followed by the same int8 quantizer; the streamed one must peak lower by at least what quantization
saves (the bf16 size minus the int8 size), since it never holds more than one full-precision tensor.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wanimate.models import factory
from wanimate.models.memory import weight_bytes
from wanimate.models.random_weights import build_streamed_transformer

PROBE = """
import json, sys
import diffusers, peft, torch, torchao.quantization
from diffusers import WanAnimateTransformer3DModel
from pathlib import Path
from wanimate.models.loading import load_transformer
from wanimate.models.memory import quantize_transformer, weight_bytes

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

def rss():
    return status("VmRSS")

folder, how = Path(sys.argv[1]), sys.argv[2]
torch.set_num_threads(1)
before = rss()
if how == "eager":
    model = WanAnimateTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=torch.bfloat16)
    quantize_transformer(model, "int8", torch.bfloat16)
else:
    model, _ = load_transformer(folder, "diffusers", torch.bfloat16, torch.device("cpu"), "int8")
# VmHWM, not ru_maxrss: a forked child inherits its parent's ru_maxrss (a big pytest process would mask
# both peaks), while the high-water mark belongs to this process's own memory since exec.
peak = status("VmHWM")
print(json.dumps({"peak_over_start": peak - before, "weights": weight_bytes(model)}))
"""


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, int]:
    cfg = factory.model_config("tiny")
    wide = {**cfg.transformer, "num_attention_heads": 8, "attention_head_dim": 128, "ffn_dim": 4096,
            "num_layers": 8, "added_kv_proj_dim": 1024, "inject_face_latents_blocks": 4}  # fmt: skip
    transformer = build_streamed_transformer(dataclasses.replace(cfg, transformer=wide), dtype=torch.bfloat16)
    folder = tmp_path_factory.mktemp("wide")
    transformer.save_pretrained(folder / "transformer")
    return folder, weight_bytes(transformer)


def _peak(folder: Path, how: str) -> dict[str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(folder), how], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_streamed_int8_load_peaks_below_eager_by_the_saving(checkpoint) -> None:
    folder, bf16_bytes = checkpoint
    eager, streamed = _peak(folder, "eager"), _peak(folder, "streamed")
    # (diffusers also casts the two blur-kernel buffers to bf16: a few bytes apart.)
    assert abs(eager["weights"] - streamed["weights"]) < 4096 and streamed["weights"] < bf16_bytes
    saving = bf16_bytes - streamed["weights"]
    assert saving > 100 * 2**20
    assert streamed["peak_over_start"] <= eager["peak_over_start"] - saving, (eager, streamed, saving)
