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

import rasterio
import rasterio.shutil
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
