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

Side files: ``GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg`` (``patch_id``, ``split_1``: the ROIs are
split into train/valid/test), ``GLOBAL_ALL_MTD/GLOBAL_SENTINEL2_MTD_DATES.gpkg`` (``patch_id``,
``acquisition_dates`` as IGN writes it: a JSON object with 1-based string keys) and IGN-style split
CSVs under ``csv/`` (a ``patch_id`` column and one per modality, paths relative to ``csv/``).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fiona
import numpy as np
from fiona.crs import CRS as FionaCRS

from flairlc import nomenclature
from flairlc.data.hub.modalities import GLOBAL_MTD_DIR, HUB_MODALITIES, SPLIT_GPKG, SPLIT_NAMES
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
    class_fractions,
    make_scene,
    rasterize,
)
from flairlc.data.synthetic.sentinel import acquisition_dates, render_series
from flairlc.outputs import atomic_path

#: Modalities the generator writes.
HUB_SYNTH_MODALITIES = (
    "AERIAL_RGBI", "DEM_ELEV", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "AERIAL_LABEL-COSIA", "ALL_LABEL-LPIS",
)
#: Side of a synthetic Sentinel-2 patch, pixels (as in FLAIR-HUB: a tenth of the footprint each).
SENTINEL_PATCH_PX = 10
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
    """

    out: Path
    patch_ids: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    dates: dict[str, list[str]] = field(default_factory=dict)
    patch_size: int = 512
    seconds: float = 0.0

    def describe(self) -> str:
        """What was written, in a few lines for the command line."""
        counts = {split: sum(1 for s in self.splits.values() if s == split) for split in SPLIT_NAMES}
        domains = sorted({p.split("_")[0] for p in self.patch_ids})
        lengths = sorted({len(d) for d in self.dates.values()})
        return (
            f"synthetic FLAIR-HUB dataset written to {self.out} in {self.seconds:.1f} s: {len(self.patch_ids)} "
            f"patches of {self.patch_size} x {self.patch_size} px in {len(domains)} domain-years ({', '.join(domains)})\n"
            f"  modalities: {', '.join(HUB_SYNTH_MODALITIES)}; Sentinel-2 dates per patch: "
            f"{'-'.join(map(str, sorted({lengths[0], lengths[-1]})))}\n"
            f"  split_1: {counts['train']} train, {counts['valid']} valid, {counts['test']} test "
            f"({GLOBAL_MTD_DIR}/{SPLIT_GPKG}, {CSV_DIR}/)"
        )


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
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 11])
    summary = HubSummary(out, patch_size=patch_size)
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
        written = _write_roi(out, domain, year, roi, tag, scene_seed, patches_per_side, patch_size, dates, seed, index)
        for patch_id, (bounds, series_dates) in written.items():
            footprints[patch_id] = bounds
            summary.dates[patch_id] = series_dates
            summary.splits[patch_id] = split_of_roi[index]
    summary.patch_ids = sorted(footprints)
    mtd = out / GLOBAL_MTD_DIR
    _write_gpkg(mtd / SPLIT_GPKG, {"split_1": "str"}, footprints, {p: {"split_1": s} for p, s in summary.splits.items()})
    dates_rows = {
        p: {"acquisition_dates": json.dumps({str(i + 1): d for i, d in enumerate(ds)})} for p, ds in summary.dates.items()
    }
    _write_gpkg(
        mtd / HUB_MODALITIES["SENTINEL2_TS"].dates_file, {"acquisition_dates": "str"}, footprints, dates_rows
    )
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
) -> dict[str, tuple[tuple[float, float, float, float], list[str]]]:
    """Render and write the patches of one ROI; return each patch's footprint and dates."""
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
            for modality, (array, g) in arrays.items():
                path = root / f"{domain}-{year}_{modality}" / roi / f"{domain}-{year}_{modality}_{roi}_{row}-{col}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_geotiff(path, array, g.transform)
            out[patch_id] = (grid.bounds, [f"{d:%Y%m%d}" for d in when])
    return out


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
        writer.writerow(["patch_id", *HUB_SYNTH_MODALITIES])
        for patch_id in ids:
            domain_year, roi, cell = patch_id.split("_")
            writer.writerow([
                patch_id,
                *(f"../{domain_year}_{m}/{roi}/{domain_year}_{m}_{roi}_{cell}.tif" for m in HUB_SYNTH_MODALITIES),
            ])
        write_text(root / CSV_DIR / f"FLAIR-HUB_SYNTH_{split.upper()}.csv", buffer.getvalue())

