"""Window layout and blending weights for tiled inference over large rasters."""

from __future__ import annotations

import numpy as np

#: Smallest blending weight (at window borders), so the raster's own edges are still covered.
MIN_BLEND_WEIGHT = 1e-3


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets (pixels) of windows of side ``window`` covering ``[0, length)``.

    Windows step by ``stride``; the last one is shifted inward so that it ends exactly at
    ``length`` (every window is full-size when ``length >= window``). A raster shorter than one
    window gets a single window at 0, which the caller pads.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"window ({window}) and stride ({stride}) must be positive")
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    starts.append(length - window)
    return sorted(set(starts))


def blend_weights(window: int) -> np.ndarray:
    """2-D blending weights ``(window, window)`` float32: a Hann taper, > 0 everywhere.

    Predictions near a window's border see less context, so they count less where windows
    overlap; the floor :data:`MIN_BLEND_WEIGHT` keeps pixels covered by a single window (raster
    edges) defined.
    """
    t = (np.arange(window, dtype=np.float64) + 0.5) / window
    w1 = np.sin(np.pi * t) ** 2
    w = np.outer(w1, w1)
    return np.maximum(w, MIN_BLEND_WEIGHT).astype(np.float32)
