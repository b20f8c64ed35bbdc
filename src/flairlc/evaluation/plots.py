"""PNG figures of an evaluation, drawn with matplotlib's Agg canvas and returned as bytes.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly (not pyplot),
so drawing neither changes the global backend nor leaks figures in long runs.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _png(fig: Figure, dpi: int) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def confusion_png(normalized: np.ndarray, class_names: Sequence[str], dpi: int = 120) -> bytes:
    """Heat map of a row-normalized ``(K, K)`` confusion matrix, each cell annotated.

    Rows with no truth pixels (NaN) are left blank.
    """
    k = len(class_names)
    size = 2.0 + 0.55 * k
    fig = Figure(figsize=(size + 1.5, size))
    ax = fig.add_subplot()
    masked = np.ma.masked_invalid(normalized)
    im = ax.imshow(masked, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_xticks(range(k), labels=class_names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=class_names)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title("Confusion matrix (row-normalized)")
    fontsize = 7 if k <= 13 else 5
    for t in range(k):
        if np.isnan(normalized[t]).all():
            ax.text((k - 1) / 2, t, "no truth pixels", ha="center", va="center", fontsize=fontsize)
            continue
        for p in range(k):
            v = normalized[t, p]
            ax.text(
                p,
                t,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if v > 0.5 else "black",
            )
    return _png(fig, dpi)


def iou_png(
    iou: np.ndarray,
    class_names: Sequence[str],
    colors: Sequence[str],
    miou: float,
    exclude: Sequence[int] = (),
    dpi: int = 120,
) -> bytes:
    """Bar chart of per-class IoU ``(K,)`` in the class colours, with the mIoU as a dashed line.

    Excluded classes are hatched; undefined IoUs (NaN) are marked ``n/a``.
    """
    k = len(class_names)
    fig = Figure(figsize=(2.0 + 0.6 * k, 4.5))
    ax = fig.add_subplot()
    heights = np.nan_to_num(np.asarray(iou, dtype=np.float64), nan=0.0)
    bars = ax.bar(range(k), heights, color=list(colors), edgecolor="black", linewidth=0.6)
    for i, bar in enumerate(bars):
        if i in exclude:
            bar.set_hatch("//")
        label = "n/a" if math.isnan(iou[i]) else f"{iou[i]:.2f}"
        ax.text(i, heights[i] + 0.01, label, ha="center", va="bottom", fontsize=7)
    if not math.isnan(miou):
        ax.axhline(miou, color="black", linestyle="--", linewidth=1.0, label=f"mIoU {miou:.3f}")
        ax.legend(loc="upper right")
    ax.set_xticks(range(k), labels=class_names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_ylim(0.0, 1.08)
    ax.set_ylabel("IoU")
    ax.set_title("IoU per class" + (" (hatched: excluded from mIoU)" if exclude else ""))
    return _png(fig, dpi)


def domain_png(
    domains: Sequence[str], mious: Sequence[float], overall_miou: float, dpi: int = 120
) -> bytes:
    """Bar chart of the mIoU of each domain, with the overall mIoU as a dashed line."""
    n = len(domains)
    fig = Figure(figsize=(2.0 + 0.45 * max(n, 1), 4.5))
    ax = fig.add_subplot()
    heights = np.nan_to_num(np.asarray(mious, dtype=np.float64), nan=0.0)
    ax.bar(range(n), heights, color="#4c72b0", edgecolor="black", linewidth=0.6)
    for i, m in enumerate(mious):
        ax.text(
            i,
            heights[i] + 0.01,
            "n/a" if math.isnan(m) else f"{m:.2f}",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    if not math.isnan(overall_miou):
        ax.axhline(
            overall_miou,
            color="black",
            linestyle="--",
            linewidth=1.0,
            label=f"overall mIoU {overall_miou:.3f}",
        )
        ax.legend(loc="upper right")
    ax.set_xticks(range(n), labels=list(domains), rotation=60, ha="right", rotation_mode="anchor")
    ax.set_ylim(0.0, 1.08)
    ax.set_ylabel("mIoU")
    ax.set_title("mIoU per domain")
    return _png(fig, dpi)
