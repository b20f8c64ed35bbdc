"""The U-T&T fusion module: a Sentinel-2 embedding → one additive term per U-Net encoder level.

Two paths, summed (Garioud et al., FLAIR #2, 2023):

- *cropped*: the embedding is centre-cropped to the aerial patch's footprint, projected by a 1×1
  convolution to each level's channel count and resized (bilinear) to each level's size;
- *collapsed*: the spatial mean of the whole embedding goes through a small MLP per level (3 linear
  layers, ReLU, dropout) and is broadcast over that level. Per sample: the reference code used
  the first sample of the batch for the whole batch.

The footprint is derived from the geometry (:func:`sentinel_footprint_px`), not hard-coded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: FLAIR aerial pixel size (BD ORTHO), metres.
AERIAL_RESOLUTION_M = 0.2
#: Sentinel-2 pixel size of the bands used (resampled to 10 m), metres.
SENTINEL_RESOLUTION_M = 10.0
#: Dropout of the collapsed-path MLPs.
COLLAPSED_DROPOUT = 0.3


def sentinel_footprint_px(
    aerial_size_px: int,
    aerial_resolution_m: float = AERIAL_RESOLUTION_M,
    sentinel_resolution_m: float = SENTINEL_RESOLUTION_M,
) -> int:
    """Number of Sentinel-2 pixels covering an aerial patch side (rounded, at least 1).

    ``512 px × 0.2 m = 102.4 m → 10`` Sentinel pixels of 10 m; ``256 px → 5``.
    """
    return max(1, round(aerial_size_px * aerial_resolution_m / sentinel_resolution_m))


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop of ``(..., h, w)`` to ``size`` (clamped to the map) around the centroid pixel.

    A FLAIR Sentinel-2 window of side ``s`` is centred on the pixel holding the patch centre, at
    index ``s // 2`` (rows ``row - s/2 … row + s/2 - 1``). The crop keeps that pixel at its own
    centre: rows ``h // 2 - ch // 2 …`` (for an odd ``ch`` in an even window, ``(h - ch) // 2``
    would be one pixel off).
    """
    h, w = x.shape[-2:]
    ch, cw = min(size[0], h), min(size[1], w)
    top, left = min(h // 2 - ch // 2, h - ch), min(w // 2 - cw // 2, w - cw)
    return x[..., top : top + ch, left : left + cw]


def _collapsed_mlp(in_channels: int, out_channels: int, dropout: float) -> nn.Sequential:
    """3 linear layers whose widths go linearly from ``in_channels`` to ``out_channels``."""
    if in_channels == out_channels:
        widths = [in_channels, 2 * in_channels, 2 * in_channels, out_channels]
    else:
        step = int((out_channels - in_channels) / 3)  # truncated towards 0, as the reference
        widths = [in_channels, in_channels + step, in_channels + 2 * step, out_channels]
    return nn.Sequential(
        nn.Linear(widths[0], widths[1]), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(widths[1], widths[2]), nn.ReLU(inplace=True), nn.Dropout(dropout),
        nn.Linear(widths[2], widths[3]),
    )  # fmt: skip


class FusionModule(nn.Module):
    """Turns a Sentinel-2 embedding into additive terms for each U-Net encoder level.

    Args:
        in_channels: channels ``F`` of the embedding.
        level_channels: channels of each U-Net encoder level, highest resolution first.
        dropout: dropout of the collapsed-path MLPs.
        zero_init: start the last layer of both paths at 0, so that the fusion adds nothing
            before training and each term grows only as far as it helps the U-Net.
    """

    def __init__(
        self,
        in_channels: int,
        level_channels: Sequence[int],
        dropout: float = COLLAPSED_DROPOUT,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.cropped = nn.ModuleList(
            nn.Conv2d(in_channels, c, kernel_size=1) for c in level_channels
        )
        self.collapsed = nn.ModuleList(
            _collapsed_mlp(in_channels, c, dropout) for c in level_channels
        )
        if zero_init:
            for layer in [*self.cropped, *(mlp[-1] for mlp in self.collapsed)]:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(
        self,
        embedding: torch.Tensor,
        footprint_px: tuple[int, int],
        level_sizes: Sequence[tuple[int, int]],
    ) -> list[torch.Tensor]:
        """Additive terms.

        Args:
            embedding: ``(B, F, S, S)`` Sentinel-2 embedding (U-TAE's last decoder map).
            footprint_px: ``(rows, cols)`` of Sentinel pixels covered by the aerial patch.
            level_sizes: ``(h_l, w_l)`` of each encoder level.

        Returns:
            one ``(B, C_l, h_l, w_l)`` tensor per level.
        """
        crop = center_crop(embedding, footprint_px)
        pooled = embedding.mean(dim=(-2, -1))  # (B, F): per sample
        terms = []
        for conv, mlp, size in zip(self.cropped, self.collapsed, level_sizes):
            local = F.interpolate(
                conv(crop), size=tuple(size), mode="bilinear", align_corners=False
            )
            terms.append(local + mlp(pooled)[:, :, None, None])
        return terms
