"""Zone polygons over a synthetic territory, for ``flairlc areas --zones``."""

from __future__ import annotations

from pathlib import Path

import fiona
import rasterio
from fiona.crs import CRS as FionaCRS

from flairlc.outputs import atomic_path

#: Names of the zones of a 2 x 2 grid, row by row from the north-west.
_GRID_NAMES = {(2, 2): ("north-west", "north-east", "south-west", "south-east")}


def generate_zones(path: str | Path, raster: str | Path, rows: int = 2, cols: int = 2) -> Path:
    """Write a GeoPackage of ``rows x cols`` rectangular zones tiling the extent of ``raster``.

    Each zone has a ``name`` attribute (``"north-west"`` … for 2 x 2, else ``"zone r-c"``), like
    the communes of a real territory; the GeoPackage has the raster's CRS.

    Args:
        path: the GeoPackage to write (atomically).
        raster: a raster of the territory (e.g. a year's ``aerial.tif``).
        rows, cols: the grid.

    Returns:
        ``path``.
    """
    with rasterio.open(raster) as ds:
        (left, bottom, right, top), crs_wkt = ds.bounds, ds.crs.to_wkt()
    dx, dy = (right - left) / cols, (top - bottom) / rows
    names = _GRID_NAMES.get((rows, cols)) or [f"zone {r + 1}-{c + 1}" for r in range(rows) for c in range(cols)]
    schema = {"geometry": "Polygon", "properties": {"name": "str"}}
    with atomic_path(path, keep_suffix=True) as tmp:
        tmp.unlink(missing_ok=True)
        with fiona.open(tmp, "w", driver="GPKG", schema=schema, crs=FionaCRS.from_wkt(crs_wkt), layer="zones") as dst:
            for r in range(rows):
                for c in range(cols):
                    x0, y1 = left + c * dx, top - r * dy
                    ring = [(x0, y1 - dy), (x0 + dx, y1 - dy), (x0 + dx, y1), (x0, y1), (x0, y1 - dy)]
                    dst.write({"geometry": {"type": "Polygon", "coordinates": [ring]},
                               "properties": {"name": names[r * cols + c]}})
    return Path(path)
