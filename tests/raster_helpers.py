"""The mapping tests' grid (Lambert-93, 0.2 m pixels) and small raster writers and readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from flairlc import nomenclature

L93 = CRS.from_epsg(2154)
ORIGIN_X, ORIGIN_Y = 650_000.0, 6_860_000.0
PIXEL_M = 0.2
K = nomenclature.NUM_BASELINE_CLASSES


def write_raster(path: Path, data: np.ndarray, transform: Affine | None = None, crs=L93, nodata=None, **kw) -> Path:
    """Write ``data`` ``(count, h, w)`` as a GeoTIFF (default: at the grid's origin, 0.2 m)."""
    transform = transform or Affine(PIXEL_M, 0, ORIGIN_X, 0, -PIXEL_M, ORIGIN_Y)
    count, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=count, dtype=data.dtype,
                       crs=crs, transform=transform, nodata=nodata, **kw) as ds:
        ds.write(data)
    return path


def read_band(path: Path) -> np.ndarray:
    """Band 1 of a raster."""
    with rasterio.open(path) as ds:
        return ds.read(1)
