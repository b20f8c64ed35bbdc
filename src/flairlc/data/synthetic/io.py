"""Writers for the generator: GeoTIFFs, JSON and NumPy files appear whole or not at all.

All go through :mod:`flairlc.outputs` (temporary name in the same folder, then rename).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

from flairlc import outputs

#: Lambert-93, the CRS of every FLAIR raster.
LAMBERT93 = CRS.from_epsg(2154)


def _block(size: int) -> int | None:
    """GeoTIFF tile side: a multiple of 16, at most 256 and half the image (so it reads tiled)."""
    for b in (256, 128, 64, 32, 16):
        if 2 * b <= size:
            return b
    return None


def write_geotiff(
    path: Path, array: np.ndarray, transform: Affine, colormap: dict[int, tuple] | None = None
) -> None:
    """Write a ``(bands, H, W)`` array as a tiled, uncompressed GeoTIFF in EPSG:2154."""
    bands, height, width = array.shape
    block = _block(min(height, width))
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": bands,
        "dtype": array.dtype.name,
        "crs": LAMBERT93,
        "transform": transform,
    }
    if block is not None:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with outputs.atomic_path(path) as part, rasterio.open(part, "w", **profile) as dst:
        dst.write(array)
        if colormap is not None:
            dst.write_colormap(1, colormap)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temporary name, then rename)."""
    outputs.write_json(path, obj, sort_keys=True)


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write a ``.npy`` file atomically."""
    with outputs.atomic_path(path) as part, open(part, "wb") as f:
        np.save(f, array)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    outputs.write_text(path, text)
