"""Vector output of a class map: one polygon per connected region of a class, as GeoPackage."""

from __future__ import annotations

from pathlib import Path

import fiona
import numpy as np
import rasterio
from fiona.crs import CRS as FionaCRS
from rasterio.features import shapes
from rasterio.windows import Window
from shapely.geometry import mapping, shape

from flairlc import nomenclature
from flairlc.mapping._common import map_class_names
from flairlc.mapping.inputs import MappingInputError
from flairlc.outputs import atomic_path, check_writable

_SCHEMA = {
    "geometry": "Polygon",
    "properties": {"class_index": "int", "class_name": "str", "area_m2": "float"},
}


def polygonize_map(
    map_path: str | Path,
    out_gpkg: str | Path,
    min_area_m2: float = 0.0,
    tile_size: int | None = None,
    layer: str = "landcover",
) -> Path:
    """Polygonize a class map into a GeoPackage (4-connected regions of equal class).

    Memory trade-off: by default the whole map is read at once (``height x width`` bytes plus
    the polygons), which gives whole polygons. With ``tile_size`` the map is polygonized per
    ``tile_size x tile_size`` tile (memory bounded by the tile), but polygons are cut at tile
    edges and the area threshold then applies to the pieces.

    Args:
        map_path: uint8 class map (nodata 255 is skipped).
        out_gpkg: GeoPackage to write (replaced atomically).
        min_area_m2: polygons smaller than this area (m²) are dropped.
        tile_size: optional tile side in pixels (see above).
        layer: layer name.

    Returns:
        ``out_gpkg``. Each feature has ``class_index``, ``class_name`` and ``area_m2``.
    """
    map_path, out_gpkg = Path(map_path), Path(out_gpkg)
    if not map_path.exists():
        raise MappingInputError(f"class map {map_path} does not exist")
    check_writable(out_gpkg, "GeoPackage")
    with rasterio.open(map_path) as ds, atomic_path(out_gpkg, keep_suffix=True) as tmp:
        if ds.count != 1:
            raise MappingInputError(f"class map {map_path} has {ds.count} bands, expected 1")
        names = map_class_names(ds)
        size = tile_size or max(ds.width, ds.height)
        crs = FionaCRS.from_wkt(ds.crs.to_wkt()) if ds.crs else None
        tmp.unlink(missing_ok=True)  # left by a killed run of this process id
        with fiona.open(tmp, "w", driver="GPKG", schema=_SCHEMA, crs=crs, layer=layer) as dst:
            for y in range(0, ds.height, size):
                for x in range(0, ds.width, size):
                    w = Window(x, y, min(size, ds.width - x), min(size, ds.height - y))
                    dst.writerecords(_polygons(ds.read(1, window=w), ds.window_transform(w), names, min_area_m2))
    return out_gpkg


def _polygons(data: np.ndarray, transform, names: list[str], min_area_m2: float):
    valid = data != nomenclature.NODATA_VALUE
    for geom, value in shapes(data, mask=valid, transform=transform, connectivity=4):
        poly = shape(geom)
        area = poly.area
        if area < min_area_m2:
            continue
        k = int(value)
        yield {
            "geometry": mapping(poly),
            "properties": {"class_index": k, "class_name": names[k] if k < len(names) else str(k), "area_m2": area},
        }
