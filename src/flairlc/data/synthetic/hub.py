"""Write a synthetic dataset in the FLAIR-HUB layout (see :mod:`flairlc.data.hub.layout`).

Each ROI (region of interest) of a domain-year is one procedural :class:`~.scene.Scene` cut into a
grid of patches. Every patch is rendered for each modality from the same scene, on the patch's own
footprint: the aerial image, the CoSIA mask and the LPIS crop-type mask at 0.2 m, DSM/DTM at 0.2 m,
and a 10 × 10 px Sentinel-2 series with its snow/cloud masks (one pixel is a tenth of the footprint,
10.24 m for 512 px patches). As in the FLAIR #2 generator, herbaceous vegetation, agricultural land
and plowed land look alike from the air and are told apart by their seasonality in the series; so
are the crop types of agricultural land (:mod:`.crops`): ``ALL_LABEL-LPIS`` (uint8, one band, the
``lpis`` nomenclature) holds a crop type where CoSIA says agricultural land, 'vineyard' where it
says vineyard, and 'background' everywhere else.

On request (``modalities``), three more sensors are rendered from the same scene: ``SPOT_RGBI``
(uint16 ``(4, 64, 64)``, R, G, B, NIR digital numbers over the footprint, 1.6 m pixels for 512 px
patches: the aerial colours of the scene rendered at a quarter of a SPOT pixel, averaged over each
pixel, then mapped by :data:`SPOT_GAIN`/:data:`SPOT_OFFSET` to about 60..2500, near IGN's SPOT
statistics) and ``SENTINEL1-ASC_TS``/``SENTINEL1-DESC_TS`` (float32 ``(T × 2, 10, 10)``, VV and VH
in dB on the Sentinel-2 grid, one orbit every 12 days, about 30 dates: :mod:`.sentinel1`), with
``GLOBAL_SENTINEL1-{ASC,DESC}_MTD_DATES.gpkg`` (the Sentinel-2 format) and
``GLOBAL_SPOT_MTD_DATES.gpkg`` (``patch_id``, ``date``: ``YYYYMMDD``, one SPOT scene per ROI).
Their draws come from generators of their own: the files of the default modalities are the same
with or without them.

Side files: ``GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg`` (``patch_id``, ``split_1``: the ROIs are
split into train/valid/test), ``GLOBAL_ALL_MTD/GLOBAL_SENTINEL2_MTD_DATES.gpkg`` (``patch_id``,
``acquisition_dates`` as IGN writes it: a JSON object with 1-based string keys) and IGN-style split
CSVs under ``csv/`` (a ``patch_id`` column and one per modality, paths relative to ``csv/``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import fiona
import numpy as np
from fiona.crs import CRS as FionaCRS

from flairlc import nomenclature
from flairlc.data.hub.modalities import (
    GLOBAL_MTD_DIR,
    HUB_MODALITIES,
    SPLIT_GPKG,
    SPLIT_NAMES,
    hub_modality,
)
from flairlc.data.synthetic.aerial import ELEVATION_DN_PER_M, Radiometry, colourize
from flairlc.data.synthetic.crops import agricultural_greenness, object_crops
from flairlc.data.synthetic.dataset import FRACTION_FACTOR
from flairlc.data.synthetic.io import write_geotiff, write_text
from flairlc.data.synthetic.noise import ValueNoise
from flairlc.data.synthetic.scene import (
    AERIAL_PIXEL_M,
    AGRICULTURAL,
    TAG_LETTERS,
    Grid,
    Scene,
    class_fractions,
    make_scene,
    rasterize,
)
from flairlc.data.synthetic.sentinel import acquisition_dates, render_series
from flairlc.data.synthetic.sentinel1 import render_backscatter, revisit_dates
from flairlc.outputs import atomic_path

#: Modalities the generator writes by default.
HUB_SYNTH_MODALITIES = (
    "AERIAL_RGBI", "DEM_ELEV", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "AERIAL_LABEL-COSIA", "ALL_LABEL-LPIS",
)
#: Every modality the generator can write, in the order of the split CSVs' columns.
HUB_GENERATED_MODALITIES = (
    "AERIAL_RGBI", "DEM_ELEV", "SPOT_RGBI", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "SENTINEL1-ASC_TS",
    "SENTINEL1-DESC_TS", "AERIAL_LABEL-COSIA", "ALL_LABEL-LPIS",
)
#: Side of a synthetic Sentinel-2 (and Sentinel-1) patch, pixels (as in FLAIR-HUB: a tenth of the
#: footprint each).
SENTINEL_PATCH_PX = 10
#: Side of a synthetic SPOT patch, pixels (as in FLAIR-HUB: 64 px of 1.6 m over 512 px of 0.2 m).
SPOT_PATCH_PX = 64
#: SPOT pixels are rendered on a grid this many times finer, then averaged (the sensor's blur).
SPOT_RENDER_FACTOR = 4
#: R, G, B, NIR digital numbers of SPOT: ``SPOT_OFFSET + SPOT_GAIN × aerial digital number``
#: (means near IGN's SPOT_RGBI statistics, 433, 509, 468, 1137, for the aerial ones, ~105).
SPOT_GAIN = np.array([3.6, 3.6, 3.4, 9.2], dtype=np.float32)
SPOT_OFFSET = np.array([60.0, 110.0, 110.0, 150.0], dtype=np.float32)
#: Standard deviation of SPOT's sensor noise, digital numbers.
SPOT_NOISE_DN = 6.0
#: Months within which an ROI's SPOT scene is drawn (spring and summer, few clouds).
SPOT_MONTHS = (4, 9)
#: SPOT's dates file under ``GLOBAL_ALL_MTD`` (IGN's: ``patch_id`` and one ``date``, ``YYYYMMDD``).
SPOT_DATES_GPKG = "GLOBAL_SPOT_MTD_DATES.gpkg"
#: Backscatter offset of each Sentinel-1 orbit, dB (other incidence angles).
S1_ORBIT_OFFSET_DB = {"SENTINEL1-ASC_TS": 0.0, "SENTINEL1-DESC_TS": -0.6}
#: The split CSVs' folder under the root.
CSV_DIR = "csv"
#: Raw FLAIR value (scene classes) → CoSIA value, by class name; FLAIR's 'other' is CoSIA's 'undefined'.
RAW_TO_COSIA = np.zeros(256, dtype=np.uint8)
for _c in nomenclature.RAW_CLASSES:
    _name = "undefined" if _c.name == "other" else _c.name
    RAW_TO_COSIA[_c.value] = nomenclature.get("cosia").index_of(_name)

_DEPARTEMENTS = [d for d in range(1, 96) if d != 20]


@dataclass
class HubSummary:
    """What :func:`generate_hub_dataset` wrote.

    Attributes:
        out: dataset root.
        patch_ids: every patch id, sorted.
        splits: patch id → ``train``/``valid``/``test`` (``split_1``).
        dates: patch id → its Sentinel-2 dates (``YYYYMMDD``), in band order.
        patch_size: aerial patch side, pixels.
        seconds: wall time.
        modalities: the modalities written (folder suffixes), in the CSVs' order.
        other_dates: ``SENTINEL1-ASC_TS``, ``SENTINEL1-DESC_TS``, ``SPOT_RGBI`` (those written) →
            patch id → its dates (``YYYYMMDD``), in band order.
    """

    out: Path
    patch_ids: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    dates: dict[str, list[str]] = field(default_factory=dict)
    patch_size: int = 512
    seconds: float = 0.0
    modalities: tuple[str, ...] = HUB_SYNTH_MODALITIES
    other_dates: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def describe(self) -> str:
        """What was written, in a few lines for the command line."""
        counts = {split: sum(1 for s in self.splits.values() if s == split) for split in SPLIT_NAMES}
        domains = sorted({p.split("_")[0] for p in self.patch_ids})
        series = {"Sentinel-2": self.dates}
        for name, label in (("SENTINEL1-ASC_TS", "Sentinel-1 ascending"), ("SENTINEL1-DESC_TS", "Sentinel-1 descending")):
            if name in self.other_dates:
                series[label] = self.other_dates[name]
        return (
            f"synthetic FLAIR-HUB dataset written to {self.out} in {self.seconds:.1f} s: {len(self.patch_ids)} "
            f"patches of {self.patch_size} x {self.patch_size} px in {len(domains)} domain-years ({', '.join(domains)})\n"
            f"  modalities: {', '.join(self.modalities)}; "
            + "; ".join(f"{label} dates per patch: {_length_range(table)}" for label, table in series.items())
            + f"\n  split_1: {counts['train']} train, {counts['valid']} valid, {counts['test']} test "
            f"({GLOBAL_MTD_DIR}/{SPLIT_GPKG}, {CSV_DIR}/)"
        )


def _length_range(dates: dict[str, list[str]]) -> str:
    """``"11-12"`` (or ``"12"``): the fewest and most dates of the patches."""
    lengths = sorted({len(d) for d in dates.values()})
    return "-".join(map(str, sorted({lengths[0], lengths[-1]})))


def hub_synth_modalities(modalities: Sequence[str] | None) -> tuple[str, ...]:
    """The folder suffixes of the modalities to generate, in :data:`HUB_GENERATED_MODALITIES`'s
    order, from keys or suffixes (``"spot"`` or ``"SPOT_RGBI"``); None: :data:`HUB_SYNTH_MODALITIES`.

    Raises:
        ValueError: an unknown modality, one the generator does not write, or none.
    """
    if modalities is None:
        return HUB_SYNTH_MODALITIES
    names = {hub_modality(m).name for m in modalities}  # an unknown name fails here, naming the known ones
    unwritten = sorted(names - set(HUB_GENERATED_MODALITIES))
    if unwritten:
        raise ValueError(f"the generator does not write {', '.join(unwritten)}: choose among {', '.join(HUB_GENERATED_MODALITIES)}")
    if not names:
        raise ValueError("no modality to generate: give at least one")
    return tuple(m for m in HUB_GENERATED_MODALITIES if m in names)


def generate_hub_dataset(
    out: str | Path,
    domains: int = 2,
    rois_per_domain: int = 2,
    patches_per_side: int = 2,
    patch_size: int = 512,
    dates: int = 12,
    seed: int = 0,
    roi_tags: Sequence[str] | None = None,
    test_rois: int = 1,
    valid_rois: int = 1,
    modalities: Sequence[str] | None = None,
) -> HubSummary:
    """Write a synthetic FLAIR-HUB root under ``out``.

    Args:
        out: dataset root (created; files of the same names are replaced).
        domains: domain-years (distinct départements, years 2018–2022).
        rois_per_domain: ROIs per domain-year, each its own scene.
        patches_per_side: an ROI is a ``patches_per_side²`` grid of adjacent patches.
        patch_size: aerial patch side, pixels at 0.2 m (512 in FLAIR-HUB: 102.4 m).
        dates: Sentinel-2 dates per ROI, spread over the year; each patch drops up to one of them
            (a patch's own series, as in FLAIR-HUB, where T varies between patches).
        seed: same seed, same files.
        roi_tags: land-cover tags the ROIs are drawn from, two letters of ``"UANF"`` (urban,
            agricultural, natural, forest; the first dominates), e.g. ``("AA", "AN")`` for a
            farmland; None: drawn from every letter.
        test_rois, valid_rois: ROIs put in ``test`` and ``valid`` (drawn at random; the rest are
            ``train``); with fewer than ``test_rois + valid_rois + 1`` ROIs, every ROI is ``train``.
        modalities: the modalities to write, keys or folder suffixes, some of
            :data:`HUB_GENERATED_MODALITIES` (``"spot"``, ``"sentinel1_asc"``, ``"sentinel1_desc"``
            add SPOT and Sentinel-1); None: :data:`HUB_SYNTH_MODALITIES`. The files of a modality
            are the same whichever others are written.

    Returns:
        A :class:`HubSummary`.
    """
    if patch_size < 16:
        raise ValueError(f"patch_size must be at least 16 px, got {patch_size}")
    if domains < 1 or rois_per_domain < 1 or patches_per_side < 1 or dates < 2:
        raise ValueError("domains, rois_per_domain, patches_per_side >= 1 and dates >= 2 needed")
    if test_rois < 0 or valid_rois < 0:
        raise ValueError(f"test_rois and valid_rois must be >= 0, got {test_rois} and {valid_rois}")
    bad_tags = [t for t in roi_tags or () if len(t) != 2 or set(t) - set(TAG_LETTERS)]
    if bad_tags:
        raise ValueError(f"ROI tags are two letters of {TAG_LETTERS!r}, got {', '.join(map(repr, bad_tags))}")
    written_modalities = hub_synth_modalities(modalities)
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 11])
    summary = HubSummary(out, patch_size=patch_size, modalities=written_modalities)
    footprints: dict[str, tuple[float, float, float, float]] = {}
    rois = []
    for code in rng.choice(_DEPARTEMENTS, size=domains, replace=False):
        year = int(rng.integers(2018, 2023))
        for k in range(rois_per_domain):
            if roi_tags:
                tag = str(roi_tags[int(rng.integers(len(roi_tags)))])
            elif rng.random() < 0.5:
                tag = str(rng.choice(list(TAG_LETTERS))) * 2
            else:
                tag = "".join(rng.choice(list(TAG_LETTERS), 2))
            rois.append((f"D{int(code):03d}", year, f"{tag}-S1-{k + 1}", tag, int(rng.integers(2**31))))
    split_of_roi = _roi_splits(len(rois), rng, test_rois, valid_rois)
    for index, (domain, year, roi, tag, scene_seed) in enumerate(rois):
        written = _write_roi(
            out, domain, year, roi, tag, scene_seed, patches_per_side, patch_size, dates, seed, index, written_modalities
        )
        for patch_id, (bounds, series_dates) in written.items():
            footprints[patch_id] = bounds
            summary.dates[patch_id] = series_dates.pop("SENTINEL2_TS")
            for name, patch_dates in series_dates.items():
                summary.other_dates.setdefault(name, {})[patch_id] = patch_dates
            summary.splits[patch_id] = split_of_roi[index]
    summary.patch_ids = sorted(footprints)
    mtd = out / GLOBAL_MTD_DIR
    _write_gpkg(mtd / SPLIT_GPKG, {"split_1": "str"}, footprints, {p: {"split_1": s} for p, s in summary.splits.items()})
    series_dates = {"SENTINEL2_TS": summary.dates, **summary.other_dates}
    for name in ("SENTINEL2_TS", "SENTINEL1-ASC_TS", "SENTINEL1-DESC_TS"):
        if name in written_modalities or (name == "SENTINEL2_TS" and "SENTINEL2_MSK-SC" in written_modalities):
            dates_rows = {
                p: {"acquisition_dates": json.dumps({str(i + 1): d for i, d in enumerate(ds)})}
                for p, ds in series_dates[name].items()
            }
            _write_gpkg(mtd / HUB_MODALITIES[name].dates_file, {"acquisition_dates": "str"}, footprints, dates_rows)
    if "SPOT_RGBI" in written_modalities:
        spot_rows = {p: {"date": ds[0]} for p, ds in summary.other_dates["SPOT_RGBI"].items()}
        _write_gpkg(mtd / SPOT_DATES_GPKG, {"date": "str"}, footprints, spot_rows)
    _write_csvs(out, summary)
    summary.seconds = time.perf_counter() - start
    return summary


def _roi_splits(n: int, rng: np.random.Generator, test: int = 1, valid: int = 1) -> list[str]:
    """``test`` ROIs in test and ``valid`` in valid, drawn at random, when at least one ROI is left
    for train; the rest (else every ROI) in train."""
    order = rng.permutation(n)
    splits = ["train"] * n
    if n >= test + valid + 1:
        for k in order[:test]:
            splits[k] = "test"
        for k in order[test:test + valid]:
            splits[k] = "valid"
    return splits


def _write_roi(
    root: Path, domain: str, year: int, roi: str, tag: str, scene_seed: int,
    side: int, patch_size: int, n_dates: int, seed: int, index: int,
    modalities: tuple[str, ...] = HUB_SYNTH_MODALITIES,
) -> dict[str, tuple[tuple[float, float, float, float], dict[str, list[str]]]]:
    """Render and write the patches of one ROI; return each patch's footprint and the dates
    (``YYYYMMDD``) of its Sentinel-2 series and of the other dated modalities written, by
    modality."""
    rng = np.random.default_rng([seed, 12, index])
    foot_m = patch_size * AERIAL_PIXEL_M
    x0 = round(float(rng.uniform(300_000, 1_000_000)) / foot_m) * foot_m
    y1 = round(float(rng.uniform(6_300_000, 7_000_000)) / foot_m) * foot_m
    row0, col0 = (int(v) for v in rng.integers(1, 20, 2))
    margin = 20.0
    bounds = (x0 - margin, y1 - side * foot_m - margin, x0 + side * foot_m + margin, y1 + margin)
    scene = make_scene(bounds, tag, scene_seed, float(rng.choice([0.0, 0.15])))
    radiometry = Radiometry.draw(rng)
    altitude = float(rng.uniform(20, 900))
    roi_dates = acquisition_dates(rng, year, n_dates)
    crops = object_crops(scene, scene_seed)
    # SPOT and Sentinel-1 draw from generators of their own: the other files stay the same.
    extra_rng = np.random.default_rng([seed, 14, index])
    spot_radiometry = Radiometry.draw(extra_rng)
    spot_day = _spot_date(extra_rng, year)
    orbit_dates = {name: revisit_dates(extra_rng, year) for name in S1_ORBIT_OFFSET_DB}
    out = {}
    for r in range(side):
        for c in range(side):
            row, col = row0 + r, col0 + c
            patch_id = f"{domain}-{year}_{roi}_{row}-{col}"
            grid = Grid(round(x0 + c * foot_m, 3), round(y1 - r * foot_m, 3), patch_size, patch_size, AERIAL_PIXEL_M)
            prng = np.random.default_rng([seed, 13, index, r, c])
            raw, obj = rasterize(scene, grid)
            image = colourize(scene, grid, raw, obj, prng, radiometry)
            dem = _dem(grid, image[4], altitude, scene_seed)
            drop = int(prng.integers(-1, n_dates))  # -1: keep every date
            when = [d for i, d in enumerate(roi_dates) if i != drop]
            sat = Grid(grid.x_min, grid.y_max, SENTINEL_PATCH_PX, SENTINEL_PATCH_PX, foot_m / SENTINEL_PATCH_PX)
            frac, shift = class_fractions(scene, sat, FRACTION_FACTOR)
            day = np.array([d.timetuple().tm_yday for d in when], dtype=np.float32)[:, None, None] - shift[None]
            crop_green = agricultural_greenness(scene, crops, sat, day, FRACTION_FACTOR)
            series, masks = render_series(frac, shift, when, sat, prng, scene_seed, {AGRICULTURAL: crop_green})
            arrays = {
                "AERIAL_RGBI": (image[:4], grid),
                "DEM_ELEV": (dem, grid),
                "SENTINEL2_TS": (series.reshape(-1, SENTINEL_PATCH_PX, SENTINEL_PATCH_PX), sat),
                "SENTINEL2_MSK-SC": (masks.reshape(-1, SENTINEL_PATCH_PX, SENTINEL_PATCH_PX), sat),
                "AERIAL_LABEL-COSIA": (RAW_TO_COSIA[raw][None], grid),
                "ALL_LABEL-LPIS": (crops[obj][None], grid),
            }
            patch_dates = {"SENTINEL2_TS": [f"{d:%Y%m%d}" for d in when]}
            extra_prng = np.random.default_rng([seed, 15, index, r, c])
            if "SPOT_RGBI" in modalities:
                spot_grid = Grid(grid.x_min, grid.y_max, SPOT_PATCH_PX, SPOT_PATCH_PX, foot_m / SPOT_PATCH_PX)
                arrays["SPOT_RGBI"] = (_spot(scene, spot_grid, extra_prng, spot_radiometry), spot_grid)
                patch_dates["SPOT_RGBI"] = [f"{spot_day:%Y%m%d}"]
            for name, offset_db in S1_ORBIT_OFFSET_DB.items():
                if name not in modalities:
                    continue
                s1_dates = _drop_one(orbit_dates[name], extra_prng)
                s1_day = np.array([d.timetuple().tm_yday for d in s1_dates], np.float32)[:, None, None] - shift[None]
                s1_crops = agricultural_greenness(scene, crops, sat, s1_day, FRACTION_FACTOR)
                backscatter = render_backscatter(frac, shift, s1_dates, extra_prng, {AGRICULTURAL: s1_crops}, offset_db)
                arrays[name] = (backscatter.reshape(-1, SENTINEL_PATCH_PX, SENTINEL_PATCH_PX), sat)
                patch_dates[name] = [f"{d:%Y%m%d}" for d in s1_dates]
            for modality in modalities:
                array, g = arrays[modality]
                path = root / f"{domain}-{year}_{modality}" / roi / f"{domain}-{year}_{modality}_{roi}_{row}-{col}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_geotiff(path, array, g.transform)
            out[patch_id] = (grid.bounds, patch_dates)
    return out


def _drop_one(dates: list[dt.date], rng: np.random.Generator) -> list[dt.date]:
    """``dates`` less one drawn at random, or all of them (one chance in ``len + 1``): a patch's
    own series, as in FLAIR-HUB, where T varies between patches."""
    drop = int(rng.integers(-1, len(dates)))
    return [d for i, d in enumerate(dates) if i != drop]


def _spot_date(rng: np.random.Generator, year: int) -> dt.date:
    """The day of an ROI's SPOT scene: within :data:`SPOT_MONTHS` of ``year``."""
    first, last = dt.date(year, SPOT_MONTHS[0], 1), dt.date(year, SPOT_MONTHS[1], 30)
    return first + dt.timedelta(days=int(rng.integers((last - first).days + 1)))


def _spot(scene: Scene, grid: Grid, rng: np.random.Generator, radiometry: Radiometry) -> np.ndarray:
    """SPOT R, G, B, NIR, uint16 ``(4, H, W)`` digital numbers of a scene over ``grid``: the aerial
    colours rendered :data:`SPOT_RENDER_FACTOR` times finer, averaged over each SPOT pixel, mapped
    by :data:`SPOT_GAIN` and :data:`SPOT_OFFSET`, plus sensor noise."""
    factor = SPOT_RENDER_FACTOR
    fine = replace(grid, width=grid.width * factor, height=grid.height * factor, pixel_m=grid.pixel_m / factor)
    raw, obj = rasterize(scene, fine)
    colours = colourize(scene, fine, raw, obj, rng, radiometry)[:4].astype(np.float32)
    mean = colours.reshape(4, grid.height, factor, grid.width, factor).mean((2, 4))
    values = SPOT_OFFSET[:, None, None] + SPOT_GAIN[:, None, None] * mean
    values += SPOT_NOISE_DN * rng.standard_normal(values.shape, dtype=np.float32)
    return np.clip(np.rint(values), 1, np.iinfo(np.uint16).max).astype(np.uint16)


def _dem(grid: Grid, elevation_dn: np.ndarray, altitude_m: float, seed: int) -> np.ndarray:
    """DSM and DTM, float32 ``(2, H, W)`` metres: a rolling terrain plus the scene's heights."""
    terrain = altitude_m + 25.0 * ValueNoise(400.0, seed * 4 + 7, 2).grid(grid.xs(), grid.ys())
    dtm = terrain.astype(np.float32)
    dsm = dtm + elevation_dn.astype(np.float32) / np.float32(ELEVATION_DN_PER_M)
    return np.stack([dsm, dtm]).astype(np.float32)


def _write_gpkg(
    path: Path, properties: dict[str, str], footprints: dict[str, tuple[float, float, float, float]],
    rows: dict[str, dict[str, str]],
) -> None:
    """A GeoPackage of patch footprints (EPSG:2154) with ``patch_id`` and ``properties``."""
    schema = {"geometry": "Polygon", "properties": {"patch_id": "str", **properties}}
    with atomic_path(path, keep_suffix=True) as tmp:
        tmp.unlink(missing_ok=True)
        with fiona.open(tmp, "w", driver="GPKG", schema=schema, crs=FionaCRS.from_epsg(2154), layer=path.stem) as dst:
            for patch_id in sorted(rows):
                x0, y0, x1, y1 = footprints[patch_id]
                ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
                dst.write({"geometry": {"type": "Polygon", "coordinates": [ring]},
                           "properties": {"patch_id": patch_id, **rows[patch_id]}})


def _write_csvs(root: Path, summary: HubSummary) -> None:
    """IGN-style split CSVs: ``csv/FLAIR-HUB_SYNTH_{TRAIN,VALID,TEST}.csv``."""
    for split in SPLIT_NAMES:
        ids = [p for p in summary.patch_ids if summary.splits[p] == split]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["patch_id", *summary.modalities])
        for patch_id in ids:
            domain_year, roi, cell = patch_id.split("_")
            writer.writerow([
                patch_id,
                *(f"../{domain_year}_{m}/{roi}/{domain_year}_{m}_{roi}_{cell}.tif" for m in summary.modalities),
            ])
        write_text(root / CSV_DIR / f"FLAIR-HUB_SYNTH_{split.upper()}.csv", buffer.getvalue())

