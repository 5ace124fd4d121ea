"""The HTML page: summary table, plots and a contact sheet, all inside one file (readable offline).

Plots are matplotlib figures embedded as PNG data URIs, so the page needs no network, no
script and no other file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np

from wanimate.evaluate.report import HTML_MARK

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f2f2f2;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%}.note{color:#a60;font-size:13px}h2{margin-top:28px;border-bottom:1px solid #ddd}
"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _image_uri(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _series(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def _figure(rows: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=(10, 2.2 * rows), squeeze=False)
    return fig, [a[0] for a in axes]


def _mark_seams(ax, report: dict) -> None:
    for b in report["inputs"].get("segment_boundaries", []):
        ax.axvline(b, color="#999", lw=0.8, ls=":")


def report_plots(reports: Sequence[dict], names: Sequence[str]) -> list[tuple[str, str]]:
    """(title, PNG data URI) per plot; several reports are overlaid, one colour each."""
    out = []
    fig, (ax,) = _figure()
    for report, name in zip(reports, names, strict=True):
        ax.plot(_series(report["motion"]["per_frame_error"]), lw=1, label=name)
        for f in report["motion"]["not_found_frames"]:
            ax.axvline(f, color="red", alpha=0.15, lw=1)
    _mark_seams(ax, reports[0])
    ax.set(xlabel="frame", ylabel="body error (body sizes)")
    ax.legend(fontsize=8)
    out.append(("Motion: per-frame body keypoint error (red: character not found; dotted: seams)", _png(fig)))

    fig, axes = _figure(5)
    for ax, measure in zip(axes, ("mouth", "eyes", "yaw", "pitch", "roll"), strict=True):
        ax.plot(_series(reports[0]["expression"]["driver"][measure]), color="black", lw=1.2, label="driver")
        for report, name in zip(reports, names, strict=True):
            ax.plot(_series(report["expression"]["output"][measure]), lw=1, label=name)
        ax.set_ylabel(measure)
    axes[0].legend(fontsize=8, ncol=len(names) + 1)
    axes[-1].set_xlabel("frame")
    out.append(("Expression: driver vs output (mouth and eye opening ratios, head angles in degrees)", _png(fig)))

    fig, (ax,) = _figure()
    for report, name in zip(reports, names, strict=True):
        ident = report["identity"]
        if ident["summary"]["method"] == "face":
            ax.plot(ident["frames"], _series(ident["face_distance"]), lw=1, label=f"{name} face distance")
        ax.plot(ident["frames"], _series(ident["appearance"]), lw=1, ls="--", label=f"{name} appearance")
    ax.axhline(reports[0]["identity"]["threshold"], color="red", lw=0.8, ls=":")
    ax.set(xlabel="frame", ylabel="distance / correlation")
    ax.legend(fontsize=8)
    out.append(("Identity: face distance to the character (below the red line: same person) and appearance", _png(fig)))

    fig, (ax1, ax2) = _figure(2)
    for report, name in zip(reports, names, strict=True):
        ax1.plot(report["temporal"]["per_second"]["delta_e"], marker=".", lw=1, label=name)
        ax2.plot(_series(report["temporal"]["flicker"]), lw=0.8, label=name)
    ax1.set(xlabel="second", ylabel="ΔE vs first second")
    ax1.legend(fontsize=8)
    _mark_seams(ax2, reports[0])
    ax2.set(xlabel="frame", ylabel="flicker (grey levels)")
    out.append(("Temporal: colour drift per second and flicker per frame (dotted: seams)", _png(fig)))

    if all("reference" in r for r in reports):
        fig, (ax1, ax2) = _figure(2)
        for report, name in zip(reports, names, strict=True):
            ax1.plot(report["reference"]["ssim"], lw=1, label=name)
            ax2.plot(report["reference"]["psnr"], lw=1, label=name)
        ax1.set_ylabel("SSIM")
        ax2.set(xlabel="frame", ylabel="PSNR (dB)")
        ax1.legend(fontsize=8)
        out.append(("Against the ground truth: SSIM and PSNR per frame", _png(fig)))
    return out


def contact_sheet(tiles: Sequence[tuple[int, np.ndarray]]) -> np.ndarray | None:
    import cv2

    if not tiles:
        return None
    height = max(t.shape[0] for _, t in tiles)
    row = []
    for index, tile in tiles:
        tile = tile.copy()
        cv2.putText(tile, str(index), (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
        row.append(np.pad(tile, ((0, height - tile.shape[0]), (0, 4), (0, 0)), constant_values=255))
    return np.hstack(row)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: dict[str, list], names: Sequence[str]) -> str:
    head = "<tr><th>metric</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"
    body = "".join(
        f"<tr><td>{html.escape(key)}</td>" + "".join(f'<td class="n">{_fmt(v)}</td>' for v in values) + "</tr>"
        for key, values in rows.items()
    )
    return f"<table>{head}{body}</table>"


def render_page(
    reports: Sequence[dict], tiles: Sequence[Sequence[tuple[int, np.ndarray]]], names: Sequence[str], title: str
) -> str:
    """One page for one report, or a side-by-side page for several."""
    keys: list[str] = []
    for report in reports:
        keys += [k for k in report["summary"] if k not in keys]
    rows = {k: [r["summary"].get(k) for r in reports] for k in keys}
    parts = [HTML_MARK, f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"]
    parts.append(f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    first = reports[0]["inputs"]
    parts.append(
        f"<p>{first['frames']} frames, {first['width']}x{first['height']} at {first['fps']:.3f} fps. "
        f"Skeleton: {html.escape(str(first.get('skeleton')))}. Character: {html.escape(str(first.get('character')))}. "
        f"Segments: {html.escape(str(first.get('segments', 'unknown (no work folder or --segment-frames)')))}.</p>"
    )
    for family in ("expression", "identity", "reference"):
        for report, name in zip(reports, names, strict=True):
            note = report.get(family, {}).get("note")
            if note:
                parts.append(f"<p class='note'>{html.escape(name)}: {html.escape(note)}</p>")
    parts.append("<h2>Summary</h2>" + _table(rows, names))
    for caption, uri in report_plots(reports, names):
        parts.append(f"<h2>{html.escape(caption)}</h2><img src='{uri}' alt='{html.escape(caption)}'>")
    for report_tiles, name in zip(tiles, names, strict=True):
        sheet = contact_sheet(report_tiles)
        if sheet is not None:
            parts.append(
                f"<h2>Contact sheet: {html.escape(name)}</h2><p>Green: body points given to the model; "
                f"red: re-estimated on the output.</p><img src='{_image_uri(sheet)}' alt='contact sheet'>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)
