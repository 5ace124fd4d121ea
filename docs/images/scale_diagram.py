"""Draws docs/images/scale.png (who runs what in docs/scale.md): python docs/images/scale_diagram.py"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

BLUE, GREEN, ORANGE, GREY = "#dbe9f6", "#dff2e1", "#fde7d3", "#eeeeee"


def box(ax, x, y, w, h, text, color, size=8, weight="normal"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="#555"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight, wrap=True)


def arrow(ax, x0, y0, x1, y1, text=""):
    ax.annotate("", (x1, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color="#333", lw=1.1))
    if text:
        ax.text((x0 + x1) / 2 + 0.05, (y0 + y1) / 2, text, fontsize=7.5, color="#333")


fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6.2), dpi=80)
for ax, title in ((left, "Inside a node: one video on N GPUs  (generate --gpus N / torchrun)"),
                  (right, "Across machines: many videos on a Ray cluster  (batch --ray / serve --ray)")):
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axis("off")
    ax.set_title(title, fontsize=10, weight="bold")

box(left, 0.2, 7.6, 4.3, 1.8, "rank 0 (the model's segment part)\ntext + CLIP encoders, VAE encode,\nMultiAnimate adapters, random draws\n→ broadcast; VAE decode, work folder, mp4", ORANGE)
box(left, 5.2, 7.6, 4.5, 1.8, "ranks 1 … N-1\nno encoders, no files:\nreceive inputs, denoise", GREY)
box(left, 0.2, 3.4, 9.5, 3.4, "", BLUE)
left.text(5, 6.45, "every rank, every step: the DiT", ha="center", fontsize=9, weight="bold")
box(left, 0.5, 3.7, 4.3, 2.3, "CFG group 0: conditional pass\nUlysses: tokens split over the group,\nall-to-all → heads in attention,\nAnimate: frame-local face adapters\n(no communication),\ngather at proj_out", "white", 7.5)
box(left, 5.1, 3.7, 4.3, 2.3, "CFG group 1: unconditional pass\n(negative prompt; Animate: blank face)\nsame split, same blocks\n(FSDP: weights 1/N per rank,\ngathered block by block)", "white", 7.5)
arrow(left, 4.8, 4.85, 5.1, 4.85)
arrow(left, 5.1, 4.6, 4.8, 4.6)
left.text(4.1, 3.45, "swap noise: all-gather", fontsize=7.5)
arrow(left, 2.3, 7.6, 2.3, 6.0, "inputs")
arrow(left, 7.4, 7.6, 7.4, 6.0)
box(left, 0.2, 0.6, 9.5, 2.2, "every rank: same guidance + scheduler step\non the same numbers → identical latents\n"
    "rank 0: decode → segment saved atomically → a killed run resumes (with any N)", GREEN, 8)

box(right, 0.2, 7.9, 4.2, 1.6, "driver: wanimate batch jobs.jsonl\nlive table, summary", ORANGE)
box(right, 5.4, 7.9, 4.4, 1.6, "wanimate serve --ray\nSQLite queue + worker process\n(same API, SSE, restart safety)", ORANGE)
box(right, 0.2, 3.3, 9.6, 4.0, "", BLUE)
right.text(5, 6.95, "Ray cluster", ha="center", fontsize=9, weight="bold")
box(right, 0.5, 3.6, 4.2, 3.0, "CPU tasks: preprocess\n(pose, face, masks)\nall submitted at once:\nthey fan out beside\nthe GPU work", "white", 7.5)
box(right, 5.3, 3.6, 4.2, 3.0, "GPU tasks: generate\n(--gpus-per-job each;\n>1 → sequence parallel)\nworker killed → Ray retries\nelsewhere → resumes", "white", 7.5)
arrow(right, 4.7, 5.1, 5.3, 5.1, "materials")
arrow(right, 2.3, 7.9, 2.3, 6.6, "submit")
arrow(right, 7.6, 7.9, 7.6, 6.6, "dispatch")
box(right, 0.2, 0.6, 9.6, 2.0, "shared storage: <output>.work/ = materials, segments,\nlease.lock (one writer at a time)\n"
    "outputs .mp4 (written atomically; an existing output is never redone)", GREEN, 8)
arrow(right, 7.4, 3.6, 7.4, 2.6)
arrow(right, 2.6, 3.6, 2.6, 2.6)

fig.tight_layout()
fig.savefig(Path(__file__).with_name("scale.png"))
