"""The flow-matching UniPC sampler, as the official Wan2.2 code or as diffusers schedules it.

Both run the same UniPC-bh2 predictor-corrector (order 2, x0-prediction, lower order on the
last step) on sigma' = s·σ / (1 + (s − 1)·σ); they differ in the σ they start from.

- ``official`` (``FlowUniPCMultistepScheduler`` in ``wan/utils/fm_solvers_unipc.py``): the
  training sigmas are 1 − linspace(1, 1/1000, 1000)[::-1], so σ runs from 0.999 (as float32)
  to 0; ``set_timesteps`` takes linspace(0.999, 0, steps + 1) without its last point, shifts
  it, and truncates σ'·1000 to integer timesteps. With shift 5 the first σ' is 0.9998.
- ``diffusers`` (``UniPCMultistepScheduler(use_flow_sigmas=True)``, what ``WanAnimatePipeline``
  ships): linspace(1, 1/1000, steps + 1) without its last point, shifted; σ' = 1 nudged by
  1e-6. At 20 steps 9 of the 20 integer timesteps differ from the official ones by 1 to 3.

``official`` is the default: it is what the released weights were sampled with in the
official ``generate.py``. Both are diffusers' own ``UniPCMultistepScheduler``; the official
schedule is passed to it as explicit sigmas, which it shifts with its ``flow_shift``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from diffusers import UniPCMultistepScheduler

Sampler = Literal["official", "diffusers"]
SAMPLERS: tuple[str, ...] = ("official", "diffusers")
NUM_TRAIN_TIMESTEPS = 1000
# FlowUniPCMultistepScheduler's settings that the official code leaves at their defaults.
SOLVER = dict(
    prediction_type="flow_prediction",
    use_flow_sigmas=True,
    solver_order=2,
    solver_type="bh2",
    predict_x0=True,
    lower_order_final=True,
    final_sigmas_type="zero",
    use_dynamic_shifting=False,
    use_karras_sigmas=False,
    use_exponential_sigmas=False,
    use_beta_sigmas=False,
    thresholding=False,
    disable_corrector=[],
    shift_terminal=None,
    num_train_timesteps=NUM_TRAIN_TIMESTEPS,
)


def official_base_sigmas(steps: int, num_train_timesteps: int = NUM_TRAIN_TIMESTEPS) -> np.ndarray:
    """The official schedule before the shift: linspace(σ_max, σ_min, steps + 1)[:-1] in float64.

    σ_max and σ_min are the ends of the float32 training sigmas 1 − alphas, alphas =
    linspace(1, 1/N, N) reversed: float32(0.999) and 0.
    """
    alphas = np.linspace(1, 1 / num_train_timesteps, num_train_timesteps)[::-1].copy()
    train = (1.0 - alphas).astype(np.float32)
    return np.linspace(float(train[0]), float(train[-1]), steps + 1)[:-1]


def make_scheduler(config: Any, sampler: Sampler, shift: float) -> UniPCMultistepScheduler:
    """A fresh flow UniPC for one generator (the pipeline's own scheduler is left untouched)."""
    base = dict(config) if sampler == "diffusers" else {}
    settings = {**base, **SOLVER, "flow_shift": shift} if sampler == "official" else {**base, "flow_shift": shift}
    return UniPCMultistepScheduler.from_config({k: v for k, v in settings.items() if not k.startswith("_")})


def set_schedule(scheduler: UniPCMultistepScheduler, sampler: Sampler, steps: int, device: Any) -> None:
    """Reset ``scheduler`` for a fresh denoise of ``steps`` steps on the chosen schedule."""
    if sampler == "official":
        scheduler.set_timesteps(sigmas=official_base_sigmas(steps, scheduler.config.num_train_timesteps), device=device)
    else:
        scheduler.set_timesteps(steps, device=device)
