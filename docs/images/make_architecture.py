"""Draws docs/images/architecture.png: the data path, the settings each stage reads, who owns the model.

Run from the repository root: ``python docs/images/make_architecture.py``. The stage and settings names
are read from the package, so the picture cannot drift from the code's option definitions.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from wanimate import options
from wanimate.generate.settings import GenerateSettings
from wanimate.preprocess.settings import PreprocessSettings
from wanimate.run.settings import RunSettings
from wanimate.serve.config import ServeConfig

OUT = Path(__file__).with_name("architecture.png")
DATA = "#dbe9f6"
STAGE = "#fce5cd"
SPEC = "#e2f0d9"
OWNER = "#ead1dc"


def box(ax, x, y, w, h, text, color, size=9, weight="normal"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#555"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, wrap=True)


def arrow(ax, start, end, text="", style="-|>", color="#333", dashed=False):
    ax.add_patch(
        FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, lw=1.2,
                        linestyle="--" if dashed else "-")
    )  # fmt: skip
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text, fontsize=7.5, color="#333", va="center")


def count(cls) -> int:
    return len(options.flat_options(cls))


def main() -> None:
    fig, ax = plt.subplots(figsize=(11, 6.2), dpi=110)
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 6.2)
    ax.axis("off")

    # The data path (left to right).
    box(ax, 0.1, 4.6, 1.6, 0.9, "character image\n+ driving video", DATA)
    box(ax, 2.2, 4.6, 1.7, 0.9, "preprocess\nwanimate.preprocess", STAGE, weight="bold")
    box(ax, 4.4, 4.6, 1.6, 0.9, "materials folder\n(mode lives here)", DATA)
    box(ax, 6.5, 4.6, 1.7, 0.9, "generate\nwanimate.generate", STAGE, weight="bold")
    box(ax, 8.7, 4.6, 2.2, 0.9, "work folder (segments,\nresumable) → out.mp4", DATA)
    arrow(ax, (1.7, 5.05), (2.2, 5.05))
    arrow(ax, (3.9, 5.05), (4.4, 5.05))
    arrow(ax, (6.0, 5.05), (6.5, 5.05))
    ax.text(6.25, 4.4, "load_materials(path, mode=)", ha="center", fontsize=7.5, color="#333")
    arrow(ax, (8.2, 5.05), (8.7, 5.05))

    # One settings class per stage, each field an option (wanimate.options).
    n_pre, n_gen = count(PreprocessSettings), count(GenerateSettings)
    box(ax, 2.0, 3.0, 2.1, 0.9, f"PreprocessSettings\n{n_pre} options", SPEC)
    box(ax, 6.3, 3.0, 2.1, 0.9, f"GenerateSettings\n{n_gen} options", SPEC)
    box(ax, 4.0, 1.6, 2.4, 0.9, f"RunSettings = renderer\n+ both ({count(RunSettings)} options)", SPEC)
    box(ax, 0.1, 1.6, 2.3, 0.9, f"ServeConfig\n{count(ServeConfig)} options", SPEC)
    arrow(ax, (3.05, 3.9), (3.05, 4.6), "reads")
    arrow(ax, (7.35, 3.9), (7.35, 4.6), "reads")
    arrow(ax, (4.6, 2.5), (3.3, 3.0), style="-", dashed=True)
    arrow(ax, (5.8, 2.5), (7.0, 3.0), style="-", dashed=True)
    ax.text(
        5.2, 0.95,
        "derived from the fields: CLI flags (generate, preprocess, run, serve, bench generate), validation,\n"
        "resume/cache keys (pixels=True), server job options (serve=True, GET /options), Python kwargs",
        ha="center", fontsize=8, style="italic",
    )  # fmt: skip

    # Who owns the model.
    box(ax, 8.7, 2.6, 2.2, 1.4, "ModelSession\nwanimate.models.session\nowns the pipeline +\nLoRAs, offload, quantize,\nattention, caches, compile", OWNER, size=8)  # noqa: E501
    arrow(ax, (8.7, 3.6), (8.2, 4.75), "prepare()")
    box(ax, 8.7, 0.9, 2.2, 1.0, "serve worker:\none warm session\nper GPU slot", OWNER, size=8)
    arrow(ax, (9.8, 1.9), (9.8, 2.6), "reuses")
    arrow(ax, (6.4, 2.05), (8.7, 1.4), "job options: the serve=True fields")
    arrow(ax, (2.4, 1.75), (8.7, 1.1), "configures", dashed=True)
    box(ax, 0.1, 0.2, 3.2, 0.55, "wanimate.testing: fixtures for tests and benchmarks only", "#eeeeee", size=7.5)

    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
