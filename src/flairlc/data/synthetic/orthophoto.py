"""A synthetic territory over several years, for the mapping stage.

One scene is drawn for the first year; each later year copies the previous one and applies
changes: fields turn into yards and buildings (artificialization), forest parcels are cut
(clear cut or bare soil). Each year is written as large rasters with the look of the FLAIR
patches (same scene machinery and radiometry), a truth map, and a Sentinel-2 series in the format
of ``docs/architecture.md`` ("Sentinel-2 input for mapping").
"""

from __future__ import annotations

import datetime as dt
import math
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from flairlc.data.synthetic.aerial import Radiometry, colourize
from flairlc.data.synthetic.io import LAMBERT93, write_geotiff
from flairlc.data.synthetic.scene import (
    AERIAL_PIXEL_M,
    BARE_SOIL,
    BUILDING,
    CLEAR_CUT,
    CONIFEROUS,
    DECIDUOUS,
    FIELD_CLASSES,
    IMPERVIOUS,
    MIXED,
    PERVIOUS,
    SENTINEL_PIXEL_M,
    Grid,
    Scene,
    Shapes,
    class_fractions,
    draw_attributes,
    make_scene,
    rasterize,
)
from flairlc.data.synthetic.sentinel import acquisition_dates, product_name, render_series
from flairlc.nomenclature import colormap, raw_to_index
from flairlc.outputs import atomic_path

#: Sentinel-2 margin around the aerial extent, pixels at 10 m on each side.
SENTINEL_MARGIN_PX = 32
#: Aerial rasters are rendered and written by blocks of this many pixels.
BLOCK_PX = 512
#: Metadata item of the aerial raster giving its acquisition date, ``YYYY-MM-DD`` (the mapper reads
#: it to check that a Sentinel-2 series comes from the survey year: :mod:`flairlc.mapping.acquisition`).
ACQUISITION_TAG = "ACQUISITION_DATE"
#: Aerial surveys are flown in the growing season: first and last day of year of a flight
#: (1 April, 30 September in a common year).
FLIGHT_SEASON_DOY = (91, 273)
_FORESTS = (CONIFEROUS, DECIDUOUS, MIXED)


@dataclass
class OrthophotoYear:
    """The rasters of one year of the synthetic territory.

    Attributes:
        year: survey year.
        aerial: 4-band uint8 GeoTIFF (R, G, B, NIR), 0.2 m, EPSG:2154, with its acquisition date
            in the metadata item :data:`ACQUISITION_TAG`.
        elevation: 1-band uint8 GeoTIFF on the same grid (height above ground, 10 DN per metre).
        truth: 1-band uint8 GeoTIFF of zero-based baseline indices 0..12 on the same grid.
        sentinel: folder of ``{product}.tif`` (10 bands uint16, 10 m) and ``{product}_masks.tif``
            (2 bands uint8: snow, then cloud probability, 0–100).
        products: the Sentinel-2 product names, in date order.
        acquired: the aerial image's acquisition date (in ``year``).
    """

    year: int
    aerial: Path
    elevation: Path
    truth: Path
    sentinel: Path
    products: list[str]
    acquired: dt.date


def flight_date(seed: int, year: int) -> dt.date:
    """The day the synthetic orthophoto of ``year`` was flown, in :data:`FLIGHT_SEASON_DOY`
    (its own generator: the scene's draws do not change)."""
    day = int(np.random.default_rng([seed, year, 11]).integers(FLIGHT_SEASON_DOY[0], FLIGHT_SEASON_DOY[1] + 1))
    return dt.date(year, 1, 1) + dt.timedelta(days=day - 1)


def _parcel_areas(scene: Scene, grid: Grid) -> np.ndarray:
    """Visible area of each parcel inside ``grid``, in coarse pixels (4 m)."""
    factor = max(1, round(4.0 / grid.pixel_m))
    coarse = replace(
        grid,
        width=math.ceil(grid.width / factor),
        height=math.ceil(grid.height / factor),
        pixel_m=grid.pixel_m * factor,
    )
    _, obj = rasterize(scene, coarse)
    return np.bincount(obj.ravel(), minlength=scene.n_parcels + 1)[: scene.n_parcels]


def apply_change(scene: Scene, grid: Grid, fraction: float, rng: np.random.Generator) -> Scene:
    """A copy of ``scene`` where about ``fraction`` of ``grid``'s area changed land cover.

    Field parcels become yards with new buildings (artificialization); forest parcels become
    clear cuts or bare soil (forest loss). Unchanged objects keep their attributes.
    """
    area = _parcel_areas(scene, grid)
    cls = scene.parcel_cls.copy()
    candidates = np.flatnonzero((area > 0) & np.isin(cls, (*FIELD_CLASSES, *_FORESTS)))
    target = fraction * area.sum()
    done, changed, new_shapes = 0.0, [], []
    for p in rng.permutation(candidates):
        if done >= target:
            break
        if done + area[p] > 1.5 * target and done > 0:
            continue  # too large a parcel for what is left to change
        changed.append(p)
        done += area[p]
        if cls[p] in _FORESTS:
            cls[p] = CLEAR_CUT if rng.random() < 0.6 else BARE_SOIL
            continue
        cls[p] = IMPERVIOUS if rng.random() < 0.6 else PERVIOUS
        sx, sy = scene.seeds[p]
        a = rng.uniform(0, np.pi)
        for _ in range(int(rng.integers(2, 6))):  # a small business park or housing estate
            ox, oy = rng.uniform(-0.25, 0.25, 2) * scene.cell_m
            new_shapes.append(
                (sx + ox, sy + oy, rng.uniform(6, 16), rng.uniform(5, 10), a, 0, BUILDING)
            )
    sh = np.array(new_shapes, dtype=np.float64).reshape(-1, 7)
    old = scene.shapes
    shapes = Shapes(
        np.concatenate([old.cx, sh[:, 0]]),
        np.concatenate([old.cy, sh[:, 1]]),
        np.concatenate([old.hw, sh[:, 2]]),
        np.concatenate([old.hh, sh[:, 3]]),
        np.concatenate([old.angle, sh[:, 4]]),
        np.concatenate([old.kind, sh[:, 5].astype(np.uint8)]),
        np.concatenate([old.cls, sh[:, 6].astype(np.uint8)]),
    )
    out = replace(scene, parcel_cls=cls, shapes=shapes)
    ocls = out.object_cls
    fresh = np.concatenate(
        [np.asarray(changed, dtype=np.int64), np.arange(len(ocls) - len(sh), len(ocls))]
    )
    redrawn = draw_attributes(rng, ocls[fresh])
    attrs = {}
    for key, values in scene.attrs.items():
        grown = np.concatenate([values, np.zeros(len(sh), dtype=values.dtype)])
        grown[fresh] = redrawn[key]
        attrs[key] = grown
    out.attrs = attrs
    return out


def _write_year_rasters(
    folder: Path, scene: Scene, grid: Grid, radiometry: Radiometry, seed: int, acquired: dt.date
) -> tuple[Path, Path, Path]:
    """Render the aerial, elevation and truth rasters block by block; the aerial one carries its
    acquisition date."""
    base = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "crs": LAMBERT93,
        "transform": grid.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    paths = (folder / "aerial.tif", folder / "elevation.tif", folder / "truth.tif")
    with ExitStack() as stack:
        parts = [stack.enter_context(atomic_path(p)) for p in paths]
        # Four data bands: not RGB + alpha (GDAL's guess for 4 bands), or NIR = 0 would be nodata.
        aerial = stack.enter_context(rasterio.open(parts[0], "w", count=4, dtype="uint8", photometric="minisblack", **base))
        aerial.update_tags(**{ACQUISITION_TAG: acquired.isoformat()})
        elevation = stack.enter_context(rasterio.open(parts[1], "w", count=1, dtype="uint8", **base))
        truth = stack.enter_context(rasterio.open(parts[2], "w", count=1, dtype="uint8", **base))
        truth.write_colormap(1, colormap("baseline"))
        for r in range(0, grid.height, BLOCK_PX):
            for c in range(0, grid.width, BLOCK_PX):
                h, w = min(BLOCK_PX, grid.height - r), min(BLOCK_PX, grid.width - c)
                sub = grid.window(r, c, h, w)
                cls, obj = rasterize(scene, sub)
                rng = np.random.default_rng([seed, r, c])
                image = colourize(scene, sub, cls, obj, rng, radiometry)
                window = Window(c, r, w, h)
                aerial.write(image[:4], window=window)
                elevation.write(image[4:], window=window)
                truth.write(raw_to_index(cls)[None], window=window)
    return paths


def _write_sentinel(
    folder: Path,
    scene: Scene,
    grid: Grid,
    year: int,
    dates: int,
    rng: np.random.Generator,
    seed: int,
) -> list[str]:
    frac, shift = class_fractions(scene, grid, 5)
    when = acquisition_dates(rng, year, dates)
    names = [product_name(rng, d, "T31TFJ") for d in when]
    data, masks = render_series(frac, shift, when, grid, rng, seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        write_geotiff(folder / f"{name}.tif", data[i], grid.transform)
        write_geotiff(folder / f"{name}_masks.tif", masks[i], grid.transform)
    return names


def generate_orthophoto(
    out_dir: Path,
    width: int = 2560,
    height: int = 2560,
    seed: int = 0,
    years: tuple[int, ...] = (2019, 2022),
    dates: int = 12,
    change_fraction: float = 0.1,
) -> list[OrthophotoYear]:
    """Write a synthetic territory for each year under ``out_dir/{year}/``.

    Args:
        out_dir: output folder.
        width, height: aerial size in pixels of 0.2 m (2560 px: 512 m).
        seed: same seed, same rasters.
        years: survey years, in increasing order; the first is the reference state.
        dates: Sentinel-2 dates per year.
        change_fraction: share of the area whose land cover changes between consecutive years.

    Returns:
        One :class:`OrthophotoYear` per year. All years share the aerial grid (EPSG:2154, 0.2 m)
        and the Sentinel-2 grid (10 m, the aerial extent plus :data:`SENTINEL_MARGIN_PX` pixels
        on each side).
    """
    if list(years) != sorted(set(years)) or not years:
        raise ValueError(f"years must be distinct and increasing, got {years}")
    if not 0.0 <= change_fraction < 1.0:
        raise ValueError(f"change_fraction must be within [0, 1), got {change_fraction}")
    rng = np.random.default_rng([seed, 7])
    x0 = round(rng.uniform(300_000, 950_000), -1)
    y1 = round(rng.uniform(6_300_000, 7_000_000), -1)
    grid = Grid(x0, y1, width, height, AERIAL_PIXEL_M)
    margin_m = SENTINEL_MARGIN_PX * SENTINEL_PIXEL_M
    sat = Grid(
        x0 - margin_m,
        y1 + margin_m,
        math.ceil(width * AERIAL_PIXEL_M / SENTINEL_PIXEL_M) + 2 * SENTINEL_MARGIN_PX,
        math.ceil(height * AERIAL_PIXEL_M / SENTINEL_PIXEL_M) + 2 * SENTINEL_MARGIN_PX,
        SENTINEL_PIXEL_M,
    )
    scene = make_scene(sat.bounds, "AUF", int(rng.integers(2**31)), vineyard_weight=0.05)
    out: list[OrthophotoYear] = []
    for k, year in enumerate(years):
        if k > 0:
            scene = apply_change(scene, grid, change_fraction, rng)
        folder = Path(out_dir) / str(year)
        folder.mkdir(parents=True, exist_ok=True)
        acquired = flight_date(seed, year)
        aerial, elevation, truth = _write_year_rasters(
            folder, scene, grid, Radiometry.draw(rng), seed * 10_000 + year, acquired
        )
        products = _write_sentinel(
            folder / "sentinel", scene, sat, year, dates, rng, seed * 10_000 + year
        )
        out.append(OrthophotoYear(year, aerial, elevation, truth, folder / "sentinel", products, acquired))
    return out
