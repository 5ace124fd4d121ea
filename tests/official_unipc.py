"""A reference of the official ``FlowUniPCMultistepScheduler`` (Wan2.2 ``wan/utils/fm_solvers_unipc.py``).

Written for the tests from the facts of that file, for the configuration the official
``WanAnimate.generate`` uses (``shift=1`` at construction, ``set_timesteps(steps, shift=s)``,
order 2, bh2, x0-prediction, lower order on the last step, final sigma 0, no corrector
disabled). Kept deliberately plain: one function per formula, nothing shared with wanimate.
"""

from __future__ import annotations

import numpy as np
import torch


class OfficialFlowUniPC:
    def __init__(self, steps: int, shift: float, num_train_timesteps: int = 1000) -> None:
        alphas = np.linspace(1, 1 / num_train_timesteps, num_train_timesteps)[::-1].copy()
        train_sigmas = torch.from_numpy(1.0 - alphas).to(torch.float32)  # shift 1 at construction
        sigma_max, sigma_min = train_sigmas[0].item(), train_sigmas[-1].item()
        sigmas = np.linspace(sigma_max, sigma_min, steps + 1).copy()[:-1]
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        self.timesteps = torch.from_numpy(sigmas * num_train_timesteps).to(torch.int64)
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [0.0]]).astype(np.float32))
        self.model_outputs: list[torch.Tensor | None] = [None, None]
        self.lower_order_nums = 0
        self.last_sample: torch.Tensor | None = None
        self.this_order = 1
        self.index = 0

    def _lambda(self, i: int) -> torch.Tensor:
        sigma = self.sigmas[i]
        return torch.log(1 - sigma) - torch.log(sigma)

    def _coefficients(self, lambda_t, lambda_s0, rks_in, order):
        h = lambda_t - lambda_s0
        rks = torch.tensor([*[(r - lambda_s0) / h for r in rks_in], 1.0])
        hh = -h
        h_phi_1 = torch.expm1(hh)
        h_phi_k = h_phi_1 / hh - 1
        factorial = 1
        b_h = torch.expm1(hh)
        rows, b = [], []
        for i in range(1, order + 1):
            rows.append(torch.pow(rks, i - 1))
            b.append(h_phi_k * factorial / b_h)
            factorial *= i + 1
            h_phi_k = h_phi_k / hh - 1 / factorial
        return h_phi_1, b_h, torch.stack(rows), torch.tensor(b)

    def _predict(self, x: torch.Tensor, order: int) -> torch.Tensor:
        i = self.index
        m0 = self.model_outputs[-1]
        sigma_t, sigma_s0 = self.sigmas[i + 1], self.sigmas[i]
        lambda_t, lambda_s0 = self._lambda(i + 1), self._lambda(i)
        previous = [self._lambda(i - 1)] if order == 2 else []
        h_phi_1, b_h, _, _ = self._coefficients(lambda_t, lambda_s0, previous, order)
        x_t = sigma_t / sigma_s0 * x - (1 - sigma_t) * h_phi_1 * m0
        if order == 2:
            rk = (previous[0] - lambda_s0) / (lambda_t - lambda_s0)
            d1 = (self.model_outputs[-2] - m0) / rk
            x_t = x_t - (1 - sigma_t) * b_h * (0.5 * d1)
        return x_t.to(x.dtype)

    def _correct(self, model_t: torch.Tensor, last: torch.Tensor, order: int) -> torch.Tensor:
        i = self.index
        m0 = self.model_outputs[-1]
        sigma_t, sigma_s0 = self.sigmas[i], self.sigmas[i - 1]
        lambda_t, lambda_s0 = self._lambda(i), self._lambda(i - 1)
        previous = [self._lambda(i - 2)] if order == 2 else []
        h_phi_1, b_h, rows, b = self._coefficients(lambda_t, lambda_s0, previous, order)
        rhos = torch.tensor([0.5]) if order == 1 else torch.linalg.solve(rows, b)
        x_t = sigma_t / sigma_s0 * last - (1 - sigma_t) * h_phi_1 * m0
        correction = rhos[-1] * (model_t - m0)
        if order == 2:
            rk = (previous[0] - lambda_s0) / (lambda_t - lambda_s0)
            correction = correction + rhos[0] * (self.model_outputs[-2] - m0) / rk
        return (x_t - (1 - sigma_t) * b_h * correction).to(last.dtype)

    def step(self, flow: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        x0 = sample - self.sigmas[self.index] * flow  # flow prediction -> x0
        if self.index > 0 and self.last_sample is not None:
            sample = self._correct(x0, self.last_sample, self.this_order)
        self.model_outputs = [self.model_outputs[-1], x0]
        order = min(2, len(self.timesteps) - self.index)  # lower order on the last step
        self.this_order = min(order, self.lower_order_nums + 1)
        self.last_sample = sample
        out = self._predict(sample, self.this_order)
        self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        self.index += 1
        return out
