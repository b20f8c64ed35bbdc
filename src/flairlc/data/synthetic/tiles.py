"""Cutting a large raster into tiles as IGN delivers orthophotos and elevation (a "département").

:func:`cut_into_tiles` writes a raster as a regular grid of GeoTIFF or JPEG2000 tiles, optionally
at another pixel size, with its own tiling origin (elevation tiles rarely line up with orthophoto
tiles), and leaving some tiles out (an area with missing tiles).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import from_bounds

from flairlc.outputs import atomic_path

#: Tile formats: rasterio driver and file suffix.
TILE_FORMATS = {"tif": ("GTiff", ".tif"), "jp2": ("JP2OpenJPEG", ".jp2")}


def cut_into_tiles(
    raster: str | Path,
    out_dir: str | Path,
    tile_m: float,
    prefix: str,
    pixel_m: float | None = None,
    origin_shift_m: tuple[float, float] = (0.0, 0.0),
    fmt: str = "tif",
    skip: Iterable[tuple[int, int]] = (),
) -> list[Path]:
    """Write ``raster`` as tiles of ``tile_m`` metres named ``{prefix}_{x}_{y}`` (upper-left
    corner, metres), each with the raster's metadata items (e.g. its acquisition date).

    Args:
        raster: the raster to cut (north-up, projected CRS in metres).
        out_dir: the folder of tiles (created).
        tile_m: tile side, metres.
        prefix: file name prefix, e.g. ``ORTHO_2022``.
        pixel_m: the tiles' pixel size, metres (default the raster's; another one is resampled,
            averaging).
        origin_shift_m: the tiling's origin from the raster's upper-left corner, metres (x right,
            y down): tiles at the edges are then partial.
        fmt: ``"tif"`` (deflate GeoTIFF, bands not flagged RGB/alpha) or ``"jp2"`` (lossless
            JPEG2000).
        skip: ``(row, col)`` of tiles to leave out.

    Returns:
        the tiles written, row-major.
    """
    driver, suffix = TILE_FORMATS[fmt]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    skip = set(skip)
    paths = []
    with rasterio.open(raster) as src:
        left, bottom, right, top = src.bounds
        pixel_m = pixel_m or src.transform.a
        x_start = left + origin_shift_m[0] - (tile_m if origin_shift_m[0] > 0 else 0)
        y_start = top - origin_shift_m[1] + (tile_m if origin_shift_m[1] > 0 else 0)
        ys = np.arange(y_start, bottom, -tile_m)
        xs = np.arange(x_start, right, tile_m)
        for row, y0 in enumerate(ys):
            for col, x0 in enumerate(xs):
                if (row, col) in skip:
                    continue
                x_lo, x_hi = max(x0, left), min(x0 + tile_m, right)
                y_hi, y_lo = min(y0, top), max(y0 - tile_m, bottom)
                width, height = round((x_hi - x_lo) / pixel_m), round((y_hi - y_lo) / pixel_m)
                if width < 1 or height < 1:
                    continue
                window = from_bounds(x_lo, y_lo, x_hi, y_hi, src.transform)
                if abs(pixel_m - src.transform.a) < 1e-9:
                    data = src.read(window=window)  # the pixels themselves (no mask applied)
                else:
                    data = src.read(window=window, out_shape=(src.count, height, width), resampling=Resampling.average)
                path = out_dir / f"{prefix}_{x0:.0f}_{y0:.0f}{suffix}"
                profile = {"driver": driver, "width": width, "height": height, "count": src.count,
                           "dtype": src.dtypes[0], "crs": src.crs,
                           "transform": Affine(pixel_m, 0.0, x_lo, 0.0, -pixel_m, y_hi)}
                if fmt == "tif":
                    profile.update(compress="deflate", tiled=True, blockxsize=256, blockysize=256,
                                   photometric="minisblack")
                else:
                    profile.update(QUALITY=100, REVERSIBLE="YES", WRITE_METADATA="YES")
                with atomic_path(path, keep_suffix=True) as temporary:
                    with rasterio.open(temporary, "w", **profile) as dst:
                        dst.write(data)
                        dst.update_tags(**src.tags())  # e.g. the acquisition date
                paths.append(path)
    return paths

