"""``--sampler official`` reproduces the official Wan2.2 FlowUniPC schedule and update exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from official_unipc import OfficialFlowUniPC

from wanimate.generate.sampler import make_scheduler, set_schedule
from wanimate.models.factory import build_scheduler


def _flow(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A stand-in velocity model that depends on both the sample and the timestep."""
    return 0.7 * x + torch.sin(t.float() / 97.0) * torch.linspace(-1, 1, x.numel()).reshape(x.shape)


def _sample(scheduler, timesteps, steps: int) -> list[torch.Tensor]:
    x = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(0))
    out = []
    for t in timesteps:
        x = scheduler(x, t)
        out.append(x)
    return out


@pytest.mark.parametrize(("steps", "shift"), [(20, 5.0), (4, 5.0), (7, 3.0)])
def test_official_sampler_matches_the_reference(steps, shift):
    ours = make_scheduler(build_scheduler().config, "official", shift)
    set_schedule(ours, "official", steps, "cpu")
    reference = OfficialFlowUniPC(steps, shift)
    assert ours.timesteps.tolist() == reference.timesteps.tolist()
    assert torch.equal(ours.sigmas, reference.sigmas)
    a = _sample(lambda x, t: ours.step(_flow(x, t), t, x, return_dict=False)[0], ours.timesteps, steps)
    b = _sample(lambda x, t: reference.step(_flow(x, t), x), reference.timesteps, steps)
    for got, want in zip(a, b, strict=True):
        assert torch.allclose(got, want, rtol=0, atol=1e-6)


def test_official_schedule_facts_and_the_diffusers_difference():
    official = make_scheduler(build_scheduler().config, "official", 5.0)
    set_schedule(official, "official", 20, "cpu")
    diffusers = make_scheduler(build_scheduler().config, "diffusers", 5.0)
    set_schedule(diffusers, "diffusers", 20, "cpu")
    assert official.sigmas[0].item() == pytest.approx(0.9998, abs=5e-5)
    assert diffusers.sigmas[0].item() == pytest.approx(1.0, abs=2e-6)
    differ = np.abs(official.timesteps.numpy() - diffusers.timesteps.numpy())
    assert (differ > 0).sum() == 9 and differ.max() == 3  # as the issue found
    assert official.timesteps[0].item() == diffusers.timesteps[0].item() == 999


def test_generation_differs_between_samplers(tiny_materials, one_thread):
    from engine_runs import run_engine

    from wanimate.models.factory import build_pipeline

    pipe = build_pipeline("tiny", seed=0)
    official = run_engine(pipe, tiny_materials, steps=3, sampler="official")
    diffusers = run_engine(pipe, tiny_materials, steps=3, sampler="diffusers")
    assert official.shape == diffusers.shape
    assert np.abs(official - diffusers).max() > 1e-4
    assert pipe.scheduler.config.flow_shift == 5.0  # the pipeline's own scheduler is left as loaded
