"""Land-cover area statistics of a class map, overall and per zone polygon."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import fiona
import numpy as np
import rasterio
from fiona.transform import transform_geom
from rasterio.features import rasterize
from rasterio.windows import Window, from_bounds
from shapely.geometry import shape

from flairlc import nomenclature
from flairlc.mapping._common import (
    STRIP_ROWS,
    area_decimals,
    class_colors_for,
    map_class_names,
    map_nomenclature,
)
from flairlc.mapping.inputs import MappingInputError
from flairlc.outputs import check_writable_dir, save_figure, write_text

M2_PER_HA = 10_000.0
#: Decimals of the percentages written to JSON.
PERCENT_DECIMALS = 4


@dataclass
class ZoneAreas:
    """Areas of each class inside one zone (or the whole map).

    Attributes:
        name: zone name (``"all"`` for the whole map).
        pixels: int64 ``(K,)`` pixel counts per class.
        pixel_area_m2: area of one pixel, m².
        artificial_indices: the classes of the artificialized surface (building, pervious and
            impervious surfaces) in the map's nomenclature.
    """

    name: str
    pixels: np.ndarray
    pixel_area_m2: float
    artificial_indices: tuple[int, ...] = nomenclature.ARTIFICIAL_INDICES

    @property
    def area_m2(self) -> np.ndarray:
        """float64 ``(K,)`` area per class, m²."""
        return self.pixels * self.pixel_area_m2

    @property
    def area_ha(self) -> np.ndarray:
        """float64 ``(K,)`` area per class, ha."""
        return self.area_m2 / M2_PER_HA

    @property
    def valid_m2(self) -> float:
        """Area of valid (classified) pixels, m²."""
        return float(self.pixels.sum() * self.pixel_area_m2)

    @property
    def percent(self) -> np.ndarray:
        """float64 ``(K,)`` share of the valid area per class, %."""
        total = self.pixels.sum()
        return self.pixels * (100.0 / total) if total else np.zeros(len(self.pixels))

    @property
    def artificial_m2(self) -> float:
        """Artificialized surface (classes :attr:`artificial_indices`), m²."""
        return float(self.pixels[list(self.artificial_indices)].sum() * self.pixel_area_m2)


@dataclass
class AreaTable:
    """Result of :func:`compute_areas`.

    Attributes:
        class_names: names in index order (length ``K``).
        overall: the whole map.
        zones: one entry per zone polygon (empty without zones).
        paths: files written (``csv``, ``json``, ``png``), if an output folder was given.
        class_colors: ``#RRGGBB`` per class for the plot (default: FLAIR's for its names, else grey).
    """

    class_names: list[str]
    overall: ZoneAreas
    zones: list[ZoneAreas] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    class_colors: list[str] | None = None

    def to_dict(self) -> dict:
        """JSON-ready dictionary (areas in m², ha and %, rounded to the pixel area's precision)."""
        m2 = area_decimals(self.overall.pixel_area_m2)
        ha = area_decimals(self.overall.pixel_area_m2 / M2_PER_HA)

        def one(z: ZoneAreas) -> dict:
            return {
                "name": z.name,
                "valid_m2": round(z.valid_m2, m2),
                "valid_ha": round(z.valid_m2 / M2_PER_HA, ha),
                # None when the map's classes include none of building, pervious, impervious.
                "artificialized_m2": round(z.artificial_m2, m2) if z.artificial_indices else None,
                "artificialized_ha": round(z.artificial_m2 / M2_PER_HA, ha) if z.artificial_indices else None,
                "classes": [
                    {"index": k, "name": n, "pixels": int(z.pixels[k]), "area_m2": round(float(z.area_m2[k]), m2),
                     "area_ha": round(float(z.area_ha[k]), ha), "percent": round(float(z.percent[k]), PERCENT_DECIMALS)}
                    for k, n in enumerate(self.class_names)
                ],
            }
        return {"pixel_area_m2": round(self.overall.pixel_area_m2, m2), "overall": one(self.overall),
                "zones": [one(z) for z in self.zones]}

    def to_csv(self) -> str:
        """CSV text: one row per zone and class, plus an 'artificialized' row per zone; areas to the
        precision of a pixel (as :meth:`to_dict`: 2 decimals in m² and 6 in ha for 0.2 m pixels)."""
        m2 = area_decimals(self.overall.pixel_area_m2)
        ha = area_decimals(self.overall.pixel_area_m2 / M2_PER_HA)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["zone", "class_index", "class_name", "pixels", "area_m2", "area_ha", "percent"])
        for z in [self.overall, *self.zones]:
            for k, n in enumerate(self.class_names):
                w.writerow([z.name, k, n, int(z.pixels[k]), f"{z.area_m2[k]:.{m2}f}", f"{z.area_ha[k]:.{ha}f}",
                            f"{z.percent[k]:.3f}"])
            if not z.artificial_indices:
                continue  # a nomenclature without building / pervious / impervious classes
            pct = 100.0 * z.artificial_m2 / z.valid_m2 if z.valid_m2 else 0.0
            w.writerow([z.name, "", "artificialized", "", f"{z.artificial_m2:.{m2}f}",
                        f"{z.artificial_m2 / M2_PER_HA:.{ha}f}", f"{pct:.3f}"])
        return buf.getvalue()


def _count(ds, window: Window, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    data = ds.read(1, window=window)
    if mask is not None:
        data = data[mask]
    counts = np.bincount(data.ravel(), minlength=256)
    return counts[:k].astype(np.int64)


def _zone_counts(ds, geom: dict, k: int) -> np.ndarray:
    """Pixel counts per class inside one polygon (pixel centres inside), by windows."""
    counts = np.zeros(k, dtype=np.int64)
    fw = from_bounds(*shape(geom).bounds, transform=ds.transform)
    c0, r0 = max(int(np.floor(fw.col_off)), 0), max(int(np.floor(fw.row_off)), 0)
    c1 = min(int(np.ceil(fw.col_off + fw.width)), ds.width)
    r1 = min(int(np.ceil(fw.row_off + fw.height)), ds.height)
    if c1 <= c0 or r1 <= r0:
        return counts  # the zone is outside the map
    win = Window(c0, r0, c1 - c0, r1 - r0)
    for y in range(int(win.row_off), int(win.row_off + win.height), STRIP_ROWS):
        w = Window(win.col_off, y, win.width, min(STRIP_ROWS, int(win.row_off + win.height) - y))
        burn = rasterize([(geom, 1)], out_shape=(int(w.height), int(w.width)),
                         transform=ds.window_transform(w), fill=0, dtype="uint8")
        counts += _count(ds, w, k, burn.astype(bool))
    return counts


def compute_areas(
    map_path: str | Path,
    zones_path: str | Path | None = None,
    zone_field: str | None = None,
    out_dir: str | Path | None = None,
) -> AreaTable:
    """Area of each class of a class map, overall and per zone, read by windows.

    Args:
        map_path: uint8 class map (zero-based indices, nodata 255).
        zones_path: optional vector file (GeoPackage, shapefile...) of zone polygons; reprojected
            to the map's CRS if needed. A pixel counts in a zone when its centre is inside
            (zones may overlap).
        zone_field: attribute naming each zone (default: the feature's position ``zone_{i}``).
        out_dir: folder for ``areas.csv``, ``areas.json`` and ``areas.png`` (written atomically).

    Returns:
        an :class:`AreaTable` (areas in m², ha and % of the valid area; artificialized surface).
    """
    map_path = Path(map_path)
    if not map_path.exists():
        raise MappingInputError(f"class map {map_path} does not exist")
    if out_dir is not None:
        check_writable_dir(out_dir, "areas folder")
    with rasterio.open(map_path) as ds:
        if ds.count != 1:
            raise MappingInputError(f"class map {map_path} has {ds.count} bands, expected 1")
        pixel_m2 = abs(ds.transform.a * ds.transform.e - ds.transform.b * ds.transform.d)
        full = np.zeros(256, dtype=np.int64)
        for y in range(0, ds.height, STRIP_ROWS):
            w = Window(0, y, ds.width, min(STRIP_ROWS, ds.height - y))
            full += np.bincount(ds.read(1, window=w).ravel(), minlength=256)
        valid_values = np.nonzero(full[: nomenclature.NODATA_VALUE])[0]
        names = map_class_names(ds, int(valid_values.max()) if valid_values.size else None)
        k = len(names)
        artificial = nomenclature.indices_named(nomenclature.ARTIFICIAL_CLASS_NAMES, names)
        nomen = map_nomenclature(ds)
        colors = nomen.colors if nomen is not None and nomen.names == names else None
        table = AreaTable(names, ZoneAreas("all", full[:k].copy(), pixel_m2, artificial), class_colors=colors)
        if zones_path is not None:
            table.zones = [ZoneAreas(n, _zone_counts(ds, g, k), pixel_m2, artificial)
                           for n, g in read_zones(Path(zones_path), zone_field, ds.crs)]
    if out_dir is not None:
        table.paths = _write_area_outputs(table, Path(out_dir))
    return table


def read_zones(path: Path, zone_field: str | None, crs) -> list[tuple[str, dict]]:
    """The polygons of a vector file as ``(name, GeoJSON geometry in crs)``; names from
    ``zone_field``, else ``zone_{i}``."""
    if not path.exists():
        raise MappingInputError(f"zones file {path} does not exist")
    zones = []
    with fiona.open(path) as src:
        if zone_field is not None and zone_field not in src.schema["properties"]:
            raise MappingInputError(
                f"zones file {path} has no field {zone_field!r} (fields: {list(src.schema['properties'])})"
            )
        src_crs = src.crs
        if not src_crs:
            raise MappingInputError(f"zones file {path} has no CRS")
        reproject = rasterio.crs.CRS.from_user_input(src_crs.to_wkt()) != crs
        for i, feat in enumerate(src):
            if feat.geometry is None:
                continue
            geom = dict(feat.geometry.__geo_interface__)
            if reproject:
                geom = transform_geom(src_crs, crs.to_wkt(), geom)
            name = str(feat.properties[zone_field]) if zone_field else f"zone_{i}"
            zones.append((name, geom))
    return zones


def _write_area_outputs(table: AreaTable, out_dir: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {
        "csv": write_text(out_dir / "areas.csv", table.to_csv()),
        "json": write_text(out_dir / "areas.json", json.dumps(table.to_dict(), indent=1)),
    }
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table.class_names) + 1.2))
    y = np.arange(len(table.class_names))
    ax.barh(y, table.overall.area_ha, color=table.class_colors or class_colors_for(table.class_names), edgecolor="#333333")
    ax.set_yticks(y, table.class_names)
    ax.invert_yaxis()
    ax.set_xlabel("area (ha)")
    artificialized = (f", {table.overall.artificial_m2 / M2_PER_HA:.1f} ha artificialized"
                      if table.overall.artificial_indices else "")
    ax.set_title(f"Land cover: {table.overall.valid_m2 / M2_PER_HA:.1f} ha mapped{artificialized}")
    paths["png"] = save_figure(fig, out_dir / "areas.png", bbox_inches="tight")
    plt.close(fig)
    return paths
