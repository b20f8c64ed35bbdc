"""Writing Cloud-Optimized GeoTIFFs: a tiled working file first, then an atomic COG copy.

Class maps are written window by window into an uncompressed, tiled, sparse GeoTIFF (partial
writes of compressed tiles would make the file grow); the final product is then copied with
GDAL's ``COG`` driver (tiled 512 x 512, deflate, internal overviews) to a temporary name and
renamed (:func:`flairlc.outputs.atomic_path`), so nothing half-written ever sits under the
final name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rasterio.windows
from rasterio.env import Env

from flairlc.outputs import atomic_path

#: Tile side of the final COGs, pixels.
COG_BLOCK_SIZE = 512
#: Tile side of working files, pixels.
WORK_BLOCK_SIZE = 256


def working_profile(template: dict[str, Any], count: int, dtype: str, nodata: float | None) -> dict[str, Any]:
    """Profile of an uncompressed, tiled, sparse working GeoTIFF on the grid of ``template``.

    ``template`` must hold ``crs``, ``transform``, ``width`` and ``height`` (copied, never
    recomputed).
    """
    return {
        "driver": "GTiff",
        "crs": template["crs"],
        "transform": template["transform"],
        "width": template["width"],
        "height": template["height"],
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": WORK_BLOCK_SIZE,
        "blockysize": WORK_BLOCK_SIZE,
        "sparse_ok": True,
        "interleave": "band" if count > 1 else "pixel",
        "BIGTIFF": "IF_SAFER",
    }


def _cog_available() -> bool:
    with Env() as env:
        return "COG" in env.drivers()


def finalize_cog(work_path: str | Path, final_path: str | Path, resampling: str = "nearest") -> Path:
    """Copy a working GeoTIFF to a COG under ``final_path`` (via a temporary name + rename).

    Args:
        work_path: the tiled working file (its colour table, nodata and tags are kept).
        final_path: destination; replaced atomically.
        resampling: overview resampling (``"nearest"`` or ``"mode"`` for classes,
            ``"average"`` for probabilities).

    Returns:
        ``final_path``.
    """
    final_path = Path(final_path)
    with atomic_path(final_path) as tmp:
        _copy_cog(work_path, tmp, resampling)
    return final_path


def _copy_cog(work_path: str | Path, tmp: Path, resampling: str) -> None:
    if _cog_available():
        rasterio.shutil.copy(
            str(work_path), str(tmp), driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=COG_BLOCK_SIZE,
            OVERVIEW_RESAMPLING=resampling.upper(), BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
        )
    else:  # pragma: no cover - GDAL < 3.1: tiled GTiff + overviews copied in front
        with rasterio.open(work_path, "r+") as ds:
            factors = []
            f = 2
            while max(ds.width, ds.height) / f >= COG_BLOCK_SIZE // 2:
                factors.append(f)
                f *= 2
            ds.build_overviews(factors or [2], getattr(rasterio.enums.Resampling, resampling))
        rasterio.shutil.copy(
            str(work_path), str(tmp), driver="GTiff", TILED=True, BLOCKXSIZE=COG_BLOCK_SIZE,
            BLOCKYSIZE=COG_BLOCK_SIZE, COMPRESS="DEFLATE", COPY_SRC_OVERVIEWS=True, BIGTIFF="IF_SAFER",
        )


def crop_to_cog(
    source_path: str | Path,
    window: rasterio.windows.Window,
    final_path: str | Path,
    resampling: str = "nearest",
    outside: np.ndarray | None = None,
    tags: dict[str, str] | None = None,
    slab_rows: int = 1024,
) -> Path:
    """Write the pixel ``window`` of a raster as a COG under ``final_path`` (atomically).

    The colour table, nodata value, band descriptions and tags are kept; ``tags`` are added.

    Args:
        source_path: the raster to cut.
        window: the part to keep, in ``source_path``'s pixels.
        final_path: the COG to write.
        resampling: overview resampling (see :func:`finalize_cog`).
        outside: optional bool ``(window.height, window.width)``: pixels set to nodata (0 when
            the raster has none), e.g. outside a zone.
        tags: metadata to add.
        slab_rows: rows copied at once (memory: ``slab_rows x width x bands`` values).
    """
    final_path = Path(final_path)
    work_path = final_path.with_name(final_path.name + ".crop.partial")
    final_path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(source_path) as src:
        profile = working_profile({"crs": src.crs, "transform": src.window_transform(window),
                                   "width": int(window.width), "height": int(window.height)},
                                  src.count, src.dtypes[0], src.nodata)
        fill = src.nodata if src.nodata is not None else 0
        try:
            with rasterio.open(work_path, "w", **profile) as dst:
                dst.update_tags(**{**src.tags(), **(tags or {})})
                try:
                    dst.write_colormap(1, src.colormap(1))
                except ValueError:
                    pass  # no colour table
                for b, description in enumerate(src.descriptions, start=1):
                    if description:
                        dst.set_band_description(b, description)
                for row in range(0, int(window.height), slab_rows):
                    rows = min(slab_rows, int(window.height) - row)
                    data = src.read(window=rasterio.windows.Window(window.col_off, window.row_off + row,
                                                                   window.width, rows))
                    if outside is not None:
                        data[:, outside[row : row + rows]] = fill
                    dst.write(data, window=rasterio.windows.Window(0, row, window.width, rows))
            finalize_cog(work_path, final_path, resampling)
        finally:
            work_path.unlink(missing_ok=True)
    return final_path
