"""Validation of a FLAIR-HUB root (``flairlc check`` on a FLAIR-HUB layout).

:func:`check_hub` reports one :class:`~flairlc.data.check_report.Issue` per problem, each naming the
offending file, in the same :class:`~flairlc.data.check_report.CheckReport` as FLAIR #2's check:

- ``missing-modality``: a patch lacks a modality its domain-year has (e.g. no DEM_ELEV file);
- ``unreadable``: a GeoTIFF (or GeoPackage) that cannot be read, every pixel included (a file cut
  short fails here);
- ``bad-dtype``, ``bad-bands``: a dtype or band count that does not fit the modality
  (:data:`~flairlc.data.hub.modalities.HUB_MODALITIES`);
- ``footprint-mismatch``: a file whose bounds differ from the patch's aerial (or first) file by
  more than half a pixel of the coarser of the two;
- ``series-length``: a time series whose number of dates differs from its dates file, or
  Sentinel-2 snow/cloud masks whose number of dates differs from the series';
  ``missing-dates``: a series with no entry in its dates file, or no dates file;
- ``bad-label``: CoSIA label values outside 0..18;
- ``not-in-split``: a patch absent from ``GLOBAL_ALL_MTD_SPLIT.gpkg`` (``missing-split-file`` when
  that file is absent); ``split-without-files`` (warning): a split entry with no file in the root;
- ``bad-crs`` (warning): a CRS other than Lambert-93.
"""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from flairlc.data.check import EXPECTED_EPSG
from flairlc.data.check_report import CheckReport, Issues
from flairlc.data.errors import FlairDataError
from flairlc.data.hub.layout import (
    HubPatch,
    discover_hub,
    modality_folders,
    modality_zips,
    read_dates_gpkg,
    read_split_gpkg,
    split_gpkg_path,
)
from flairlc.data.hub.modalities import GLOBAL_MTD_DIR, HISTORICAL_YEAR, HUB_MODALITIES, HubModality
from flairlc.data.readers import describe_error
from flairlc.nomenclature import get

#: Reference modality of a patch's footprint, when present.
FOOTPRINT_REFERENCE = "AERIAL_RGBI"


def is_hub_root(root: str | Path) -> bool:
    """Whether a folder holds FLAIR-HUB modality folders (``{DOM}-{YEAR}_{MODALITY}``) or archives."""
    root = Path(root)
    return root.is_dir() and bool(modality_folders(root) or modality_zips(root))


def check_hub(root: str | Path, split_column: str = "split_1") -> CheckReport:
    """Check every file of a FLAIR-HUB root (every pixel read) and report each problem.

    Args:
        root: the dataset root.
        split_column: the column of ``GLOBAL_ALL_MTD_SPLIT.gpkg`` whose patches are counted per
            split.

    Returns:
        A :class:`~flairlc.data.check_report.CheckReport`: ``counts`` per split (``unsplit`` for patches
        absent from the split file) and domain-year, ``patch_size`` the most common aerial size.
    """
    root = Path(root)
    report = CheckReport(root=root)
    issues = Issues()
    try:
        patches = discover_hub(root)
    except FlairDataError as error:
        issues.error("no-patches", error.path, error.problem)
        report.issues = issues.in_report_order()
        return report
    split_of = _split_of(root, split_column, patches, issues)
    dates = _dates_tables(root, patches, issues)
    present = _modalities_per_domain_year(root)
    sizes: Counter = Counter()
    series_sizes: Counter = Counter()
    cosia_values = get("cosia").mask_values
    for patch in patches:
        report.counts.setdefault(split_of.get(patch.id, "unsplit"), Counter())[patch.domain_year] += 1
        for name in sorted(present[patch.domain_year] - set(patch.files)):
            if HUB_MODALITIES[name].year == HISTORICAL_YEAR and name not in present.get(f"{patch.domain}-{HISTORICAL_YEAR}", set()):
                continue
            issues.error("missing-modality", patch.file_of(name, root),
                                f"patch {patch.id} has no {name} file (its domain-year has {name})")
        headers = {}
        for name, path in sorted(patch.files.items()):
            header = _inspect(path, HUB_MODALITIES[name], issues, dates, patch, cosia_values)
            if header is not None:
                headers[name] = header
        _footprints(patch, headers, issues)
        _mask_dates(patch, headers, issues)
        if FOOTPRINT_REFERENCE in headers:
            sizes[headers[FOOTPRINT_REFERENCE]["shape"]] += 1
        if "SENTINEL2_TS" in headers:
            series_sizes[headers["SENTINEL2_TS"]["shape"][0]] += 1
    report.counts = {split: dict(domains) for split, domains in sorted(report.counts.items())}
    report.patch_size = sizes.most_common(1)[0][0] if sizes else None
    report.sat_patch_size = series_sizes.most_common(1)[0][0] if series_sizes else report.sat_patch_size
    report.issues = issues.in_report_order()
    return report


def _split_of(root: Path, column: str, patches: list[HubPatch], issues: Issues) -> dict[str, str]:
    path = split_gpkg_path(root)
    if not path.is_file():
        issues.error("missing-split-file", path, "split file not found: no patch has a split")
        return {}
    try:
        split_of = read_split_gpkg(path, column)
    except FlairDataError as error:
        issues.error("unreadable", error.path, error.problem)
        return {}
    ids = {p.id for p in patches}
    for patch in patches:
        if patch.id not in split_of:
            first = next(iter(sorted(patch.files.values())))
            issues.error("not-in-split", first, f"patch {patch.id} is absent from {path.name} ({column})")
    for patch_id in sorted(set(split_of) - ids):
        issues.warn("split-without-files", path, f"patch {patch_id} ({split_of[patch_id]}) has no file in the root")
    return split_of


def _dates_tables(root: Path, patches: list[HubPatch], issues: Issues) -> dict[str, dict]:
    names = {HUB_MODALITIES[m].dates_file for p in patches for m in p.files} - {None}
    tables = {}
    for name in sorted(names):
        path = root / GLOBAL_MTD_DIR / name
        try:
            tables[name] = read_dates_gpkg(path)
        except FlairDataError as error:
            kind = "missing-dates" if not path.is_file() else "unreadable"
            issues.error(kind, error.path, f"{error.problem}: the dates of its time series are unknown")
    return tables


def _modalities_per_domain_year(root: Path) -> dict[str, set[str]]:
    present: dict[str, set[str]] = {}
    for _folder, domain, year, modality in modality_folders(root):
        present.setdefault(f"{domain}-{year}", set()).add(modality)
    for key in [k for k in present if k.endswith(HISTORICAL_YEAR)]:
        domain = key.split("-")[0]
        for other in present:
            if other.startswith(f"{domain}-") and other != key:
                present[other] |= present[key]
    return present


def _inspect(
    path: Path, modality: HubModality, issues: Issues, dates: dict[str, dict], patch: HubPatch,
    cosia_values: list[int],
) -> dict | None:
    """Read a whole file; record its problems; return its header (bounds, pixel size, shape)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                array = ds.read()
                header = {"bounds": tuple(ds.bounds), "pixel": max(abs(ds.res[0]), abs(ds.res[1])),
                          "shape": (ds.height, ds.width), "epsg": ds.crs.to_epsg() if ds.crs else None,
                          "dates": ds.count / len(modality.bands) if modality.time_series else None}
    except Exception as error:  # each unreadable file is one issue, whatever GDAL raised
        issues.error("unreadable", path, f"cannot read as a GeoTIFF ({describe_error(error)})")
        return None
    if header["epsg"] != EXPECTED_EPSG:
        issues.warn("bad-crs", path, f"CRS is EPSG:{header['epsg']}, expected EPSG:{EXPECTED_EPSG}")
    if modality.dtype is not None and array.dtype != np.dtype(modality.dtype):
        issues.error("bad-dtype", path, f"{modality.name} has dtype {array.dtype}, expected {modality.dtype}")
    per_date, count = len(modality.bands), array.shape[0]
    if modality.time_series:
        if count % per_date:
            issues.error("bad-bands", path, f"{count} bands, not a multiple of {per_date} ({modality.name} bands per date)")
        else:
            _series_length(path, modality, count // per_date, dates, patch, issues)
    elif not modality.label and count != per_date:
        issues.error("bad-bands", path, f"{count} bands, expected {per_date} ({', '.join(modality.bands)})")
    if modality.name == "AERIAL_LABEL-COSIA":
        bad = sorted(set(np.unique(array[0]).tolist()) - set(cosia_values))
        if bad:
            issues.error("bad-label", path, f"label values {bad[:10]} are no CoSIA class (values 0..18)")
    return header


def _series_length(path: Path, modality: HubModality, length: int, dates: dict[str, dict], patch: HubPatch, issues: Issues) -> None:
    table = dates.get(modality.dates_file or "")
    if table is None:
        return  # the dates file's own issue is reported once
    if patch.id not in table:
        issues.error("missing-dates", path, f"patch {patch.id} has no entry in {modality.dates_file}")
    elif len(table[patch.id]) != length:
        issues.error("series-length", path, f"{modality.name} has {length} dates but "
                            f"{modality.dates_file} lists {len(table[patch.id])} for patch {patch.id}")


def _mask_dates(patch: HubPatch, headers: dict[str, dict], issues: Issues) -> None:
    """The snow/cloud masks of a Sentinel-2 series have one entry per date of the series."""
    series, masks = headers.get("SENTINEL2_TS"), headers.get("SENTINEL2_MSK-SC")
    if series is None or masks is None or series["dates"] == masks["dates"]:
        return
    issues.error("series-length", patch.files["SENTINEL2_MSK-SC"],
                        f"SENTINEL2_MSK-SC has {masks['dates']:g} dates but its SENTINEL2_TS file has {series['dates']:g}")


def _footprints(patch: HubPatch, headers: dict[str, dict], issues: Issues) -> None:
    if not headers:
        return
    reference = FOOTPRINT_REFERENCE if FOOTPRINT_REFERENCE in headers else sorted(headers)[0]
    ref = headers[reference]
    for name, header in sorted(headers.items()):
        tolerance = max(ref["pixel"], header["pixel"]) / 2
        gap = max(abs(a - b) for a, b in zip(header["bounds"], ref["bounds"], strict=True))
        if gap > tolerance:
            bounds = ", ".join(f"{v:.1f}" for v in header["bounds"])
            ref_bounds = ", ".join(f"{v:.1f}" for v in ref["bounds"])
            issues.error("footprint-mismatch", patch.files[name],
                                f"bounds ({bounds}) differ from its {reference} file's ({ref_bounds}) by {gap:.2f} m")
