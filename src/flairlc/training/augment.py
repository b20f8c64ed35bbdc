"""Flip and rot90 augmentation applied identically to every spatial input of a sample."""

from __future__ import annotations

from typing import Any

import torch

#: Batch keys whose last two axes are spatial and move together (FLAIR-HUB's SPOT image and
#: Sentinel-1 series too: each covers the patch's footprint, as its aerial image does).
SPATIAL_KEYS = ("aerial", "mask", "sentinel", "spot", "sentinel1_asc", "sentinel1_desc")


def augment_batch(
    batch: dict[str, Any], p_hflip: float = 0.5, p_vflip: float = 0.5, p_rot90: float = 0.5,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Randomly flip and rotate each sample of a batch, the same way for all its spatial inputs.

    The aerial patch ``(B, C, H, W)``, its mask ``(B, H, W)`` and the Sentinel-2 window
    ``(B, T, C, S, S)`` (centred on the patch, so the same transform keeps them aligned) receive
    the same horizontal flip, vertical flip and 90° rotation, each drawn per sample with its
    probability. Returns a new dict; other keys are passed through.
    """
    keys = [k for k in SPATIAL_KEYS if k in batch]
    size = len(batch[keys[0]])
    draws = torch.rand(size, 3, generator=generator)
    out = dict(batch)
    for key in keys:
        about_pixel = key.startswith("sentinel")  # Sentinel-1 windows lie on Sentinel-2's grid
        out[key] = torch.stack(
            [transform(x, bool(d[0] < p_hflip), bool(d[1] < p_vflip), bool(d[2] < p_rot90), about_pixel)
             for x, d in zip(batch[key], draws)]
        )
    return out


def transform(x: torch.Tensor, hflip: bool, vflip: bool, rot90: bool, about_pixel: bool = False) -> torch.Tensor:
    """Apply a horizontal flip, a vertical flip, then a 90° rotation to the last two axes.

    With ``about_pixel``, the transform is about the pixel at index ``(s // 2, s // 2)`` rather
    than the array's geometric centre: a Sentinel-2 window of even side ``s`` is centred on the
    pixel holding the patch centre, and that pixel must stay under the patch. The row or column
    rolled in at the border is the one that left at the other border.
    """
    shift_rows = int(about_pixel and x.shape[-2] % 2 == 0)
    shift_cols = int(about_pixel and x.shape[-1] % 2 == 0)
    if hflip:
        x = x.flip(-1).roll(shift_cols, -1)
    if vflip:
        x = x.flip(-2).roll(shift_rows, -2)
    if rot90:
        # (a, b) -> (n - 1 - b, a): the centre pixel lands one row up for an even side.
        x = x.rot90(1, dims=(-2, -1)).roll(shift_rows, -2)
    return x
