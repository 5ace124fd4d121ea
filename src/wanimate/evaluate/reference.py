"""Metrics against a ground-truth video (self-driven runs): SSIM, PSNR and FVD.

SSIM is computed on luma (BT.601 grey, as FFmpeg's and most papers' Y-channel SSIM) with
scikit-image's Gaussian-window implementation; PSNR on RGB. Identical frames have infinite
PSNR, which JSON cannot hold: it is capped at ``PSNR_CAP`` dB. LPIPS is not offered: every
packaged LPIPS backbone (AlexNet, VGG) comes from torchvision's download at run time, and
nothing offline ships one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from wanimate.evaluate.fvd import ClipFeatures, fvd

PSNR_CAP = 100.0
LPIPS_NOTE = "LPIPS not computed: its AlexNet/VGG backbones are only available as run-time downloads"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP if mse == 0 else min(10 * np.log10(255.0**2 / mse), PSNR_CAP)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    return float(structural_similarity(ga, gb, data_range=255, gaussian_weights=True, sigma=1.5))


@dataclass
class ReferenceMetrics:
    with_fvd: bool = True
    ssim: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    _output: ClipFeatures | None = None
    _truth: ClipFeatures | None = None

    def __post_init__(self) -> None:
        if self.with_fvd:
            from wanimate.evaluate.i3d import load_i3d

            model = load_i3d()
            self._output, self._truth = ClipFeatures(model), ClipFeatures(model)

    def add(self, output: np.ndarray, truth: np.ndarray) -> None:
        self.ssim.append(ssim(output, truth))
        self.psnr.append(psnr(output, truth))
        if self._output is not None and self._truth is not None:
            self._output.add(output)
            self._truth.add(truth)

    def result(self) -> dict:
        summary: dict = {
            "ssim_mean": float(np.mean(self.ssim)) if self.ssim else None,
            "psnr_mean": float(np.mean(self.psnr)) if self.psnr else None,
            "lpips": None,
        }
        notes = [LPIPS_NOTE]
        if self._output is not None and self._truth is not None:
            result = fvd(self._output, self._truth)
            summary["fvd"] = result["fvd"]
            summary["fvd_clips"] = result["clips"]
            if "note" in result:
                notes.append(result["note"])
        else:
            summary["fvd"] = None
            notes.append("FVD skipped (--no-fvd)")
        return {
            "summary": summary,
            "ssim": [round(v, 5) for v in self.ssim],
            "psnr": [round(v, 3) for v in self.psnr],
            "note": "; ".join(notes),
        }
