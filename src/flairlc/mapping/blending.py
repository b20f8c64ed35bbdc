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


def fit_window(height: int, width: int, max_window: int, overlap: int, multiple: int = 32) -> int:
    """The window side that covers a raster with the fewest pixels predicted.

    With windows of ``max_window`` the last row and column of windows are shifted inward and
    overlap their neighbours by far more than ``overlap`` (on 2 048 px, windows of 1 024 with 128
    of overlap start at 0, 896 and 1 024: 2.25 passes per pixel). Fewer, evenly spread windows
    cost less: this is the smallest side, a multiple of ``multiple`` and at most ``max_window``,
    that covers the longer side of the raster with as few windows as ``max_window`` needs, each
    overlapping the next by at least ``overlap`` (on 2 048 px: 3 windows of 768, 1.27 passes).
    A raster no longer than ``max_window`` gets one window (its side rounded up to ``multiple``).

    Args:
        height, width: raster size, pixels.
        max_window: largest window side, pixels (a multiple of ``multiple``).
        overlap: least overlap between neighbouring windows, pixels.
        multiple: the side the network needs windows to be a multiple of (32 for ResNets).
    """
    if max_window % multiple or not 0 <= overlap < max_window:
        raise ValueError(f"max_window ({max_window}) must be a multiple of {multiple} and exceed the overlap ({overlap})")
    length = max(height, width)
    if length <= max_window:
        return -(-length // multiple) * multiple
    count = -(-(length - overlap) // (max_window - overlap))
    side = -(-(length - overlap) // count) + overlap
    return min(max_window, -(-side // multiple) * multiple)


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
