"""Discovery of a FLAIR-HUB root: patches, their files per modality, splits and dates.

A root holds one folder per domain-year and modality, one GeoTIFF per patch::

    ROOT/D006-2020_AERIAL_RGBI/FF-S1-14/D006-2020_AERIAL_RGBI_FF-S1-14_5-5.tif
    ROOT/D006-195X_AERIAL-RLT_PAN/FF-S1-14/D006-195X_AERIAL-RLT_PAN_FF-S1-14_5-5.tif
    ROOT/GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg       (patch_id, split_1 … split_flairchallenge)
    ROOT/GLOBAL_ALL_MTD/GLOBAL_SENTINEL2_MTD_DATES.gpkg (patch_id, acquisition_dates)

The patch id is ``{DOM}-{YEAR}_{ROI}_{ROW}-{COL}`` (``D006-2020_FF-S1-14_5-5``); the historical
modality, named with the year ``195X``, belongs to the patches of the same domain, ROI and cell.
Any subset of modalities and domain-years may be present. IGN's split CSVs (a ``patch_id`` column
and one column per modality holding a path relative to the CSV's folder) are read too.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flairlc.data.errors import FlairDataError
from flairlc.data.hub.modalities import (
    GLOBAL_MTD_DIR,
    HISTORICAL_YEAR,
    HUB_MODALITIES,
    SPLIT_COLUMNS,
    SPLIT_GPKG,
    SPLIT_NAMES,
)

#: IGN's default reference day of the time series offsets (month, day): 15 May.
HUB_REFERENCE_DAY = (5, 15)

_DOMAIN_YEAR = r"(?P<domain>D\d{3,})-(?P<year>\d{4}|195X)"
_FOLDER = re.compile(rf"^{_DOMAIN_YEAR}_(?P<modality>.+)$")
_CELL = re.compile(r"^(?P<roi>[A-Za-z0-9-]+)_(?P<row>\d+)-(?P<col>\d+)$")
_PATCH_ID = re.compile(rf"^{_DOMAIN_YEAR}_(?P<roi>[A-Za-z0-9-]+)_(?P<row>\d+)-(?P<col>\d+)$")


@dataclass
class HubPatch:
    """A FLAIR-HUB patch and its files.

    Attributes:
        id: ``{DOM}-{YEAR}_{ROI}_{ROW}-{COL}``, e.g. ``D006-2020_FF-S1-14_5-5``.
        domain: ``D006`` (merged départements: ``D024047``).
        year: survey year of the patch, e.g. ``"2020"``.
        roi: region of interest, e.g. ``FF-S1-14``.
        row, col: the patch's cell in its ROI.
        files: GeoTIFF of each modality present, by folder suffix (``"AERIAL_RGBI"``).
    """

    id: str
    domain: str
    year: str
    roi: str
    row: int
    col: int
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def domain_year(self) -> str:
        """``D006-2020``: the domain-year, as in folder names."""
        return f"{self.domain}-{self.year}"

    def file_of(self, modality: str, root: str | Path | None = None) -> Path:
        """The patch's file of a modality: the one found, else where the layout puts it.

        Args:
            modality: folder suffix, e.g. ``"DEM_ELEV"``.
            root: the dataset root; default: the root of the patch's other files.
        """
        if modality in self.files:
            return self.files[modality]
        if root is None:
            root = next(iter(self.files.values())).parents[2] if self.files else Path()
        stem = f"{self.domain}-{HUB_MODALITIES[modality].year or self.year}_{modality}"
        return Path(root) / stem / self.roi / f"{stem}_{self.roi}_{self.row}-{self.col}.tif"


def parse_patch_id(patch_id: str) -> tuple[str, str, str, int, int]:
    """``(domain, year, roi, row, col)`` of a patch id.

    Raises:
        ValueError: when the id is not ``{DOM}-{YEAR}_{ROI}_{ROW}-{COL}``.
    """
    match = _PATCH_ID.match(patch_id)
    if match is None:
        raise ValueError(f"{patch_id!r} is no FLAIR-HUB patch id ({{DOM}}-{{YEAR}}_{{ROI}}_{{ROW}}-{{COL}})")
    return match["domain"], match["year"], match["roi"], int(match["row"]), int(match["col"])


def modality_folders(root: str | Path) -> list[tuple[Path, str, str, str]]:
    """The modality folders of a root: ``(folder, domain, year, modality name)``, sorted.

    Folders named like ``{DOM}-{YEAR}_{MOD}`` whose ``MOD`` is no known modality are left out.
    """
    out = []
    for folder in sorted(Path(root).iterdir()):
        match = _FOLDER.match(folder.name)
        if folder.is_dir() and match and match["modality"] in HUB_MODALITIES:
            out.append((folder, match["domain"], match["year"], match["modality"]))
    return out


def modality_zips(root: str | Path) -> list[Path]:
    """The released archives ``{DOM}-{YEAR}_{MOD}[_{DATATYPE}].zip`` lying in a root, sorted."""
    out = []
    for path in sorted(Path(root).glob("D*.zip")):
        match = _FOLDER.match(path.stem)
        if match and any(match["modality"] == m or match["modality"].startswith(f"{m}_") for m in HUB_MODALITIES):
            out.append(path)
    return out


def patch_files(folder: Path, domain: str, year: str, modality: str) -> Iterable[tuple[Path, str, int, int]]:
    """The GeoTIFFs of one modality folder: ``(path, roi, row, col)``; other files are skipped."""
    prefix = f"{domain}-{year}_{modality}_"
    for path in sorted(folder.glob("*/*.tif")):
        if not path.name.startswith(prefix):
            continue
        match = _CELL.match(path.stem[len(prefix):])
        if match is not None and match["roi"] == path.parent.name:
            yield path, match["roi"], int(match["row"]), int(match["col"])


def discover_hub(root: str | Path, modalities: Sequence[str] | None = None) -> list[HubPatch]:
    """Every patch of a FLAIR-HUB root with the files of each modality present, sorted by id.

    A patch exists when any dated (non-historical) modality has a file for it; historical files
    (``195X``) are attached to the patches of their domain, ROI and cell.

    Args:
        root: the dataset root.
        modalities: folder suffixes to look for (default: all of :data:`HUB_MODALITIES`).

    Raises:
        FlairDataError: when the root is not a folder or holds no modality folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FlairDataError(root, "FLAIR-HUB root not found (not a folder)")
    wanted = set(modalities) if modalities is not None else set(HUB_MODALITIES)
    folders = [f for f in modality_folders(root) if f[3] in wanted]
    if not folders:
        zips = modality_zips(root)
        if zips:
            raise FlairDataError(
                root, f"{len(zips)} FLAIR-HUB archive(s) (e.g. {zips[0].name}) but no modality folder: unzip them into the root"
            )
        raise FlairDataError(
            root, "no FLAIR-HUB modality folder ({DOM}-{YEAR}_{MODALITY}, e.g. D006-2020_AERIAL_RGBI) in it"
        )
    patches: dict[str, HubPatch] = {}
    historical: list[tuple[Path, str, str, str, int, int]] = []
    for folder, domain, year, modality in folders:
        for path, roi, row, col in patch_files(folder, domain, year, modality):
            if year == HISTORICAL_YEAR:
                historical.append((path, modality, domain, roi, row, col))
                continue
            patch_id = f"{domain}-{year}_{roi}_{row}-{col}"
            patch = patches.setdefault(patch_id, HubPatch(patch_id, domain, year, roi, row, col))
            patch.files[modality] = path
    by_cell: dict[tuple[str, str, int, int], list[HubPatch]] = {}
    for patch in patches.values():
        by_cell.setdefault((patch.domain, patch.roi, patch.row, patch.col), []).append(patch)
    for path, modality, domain, roi, row, col in historical:
        for patch in by_cell.get((domain, roi, row, col), []):
            patch.files[modality] = path
    return [patches[k] for k in sorted(patches)]


def read_split_gpkg(path: str | Path, column: str = "split_1") -> dict[str, str]:
    """The split (``train``, ``valid``, ``test``) of each patch id in a split GeoPackage.

    Args:
        path: ``GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg`` (or any GeoPackage with ``patch_id``).
        column: the split column, e.g. ``split_1`` … ``split_5``, ``split_flairchallenge`` (or
            ``split_toy`` in TorchGeo's toy fixture).

    Raises:
        FlairDataError: an unreadable file, a missing column, a value that is no split name.
    """
    rows = _read_gpkg(path, ("patch_id", column))
    out: dict[str, str] = {}
    for patch_id, split in rows:
        if split is None:
            continue  # a patch outside this split scheme
        if split not in SPLIT_NAMES:
            raise FlairDataError(path, f"patch {patch_id}: {column} is {split!r}, expected one of {SPLIT_NAMES}")
        out[str(patch_id)] = str(split)
    return out


def read_split_csv(path: str | Path) -> dict[str, dict[str, Path]]:
    """IGN's split CSV: the files of each patch id, by modality (paths relative to the CSV's folder).

    Columns other than ``patch_id`` that name no known modality are ignored; empty cells too.

    Raises:
        FlairDataError: a missing or unreadable file, or no ``patch_id`` column.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise FlairDataError(path, f"cannot read the split CSV ({type(error).__name__}: {error})") from None
    if not rows or "patch_id" not in rows[0]:
        raise FlairDataError(path, "split CSV has no 'patch_id' column (or no row)")
    out: dict[str, dict[str, Path]] = {}
    for row in rows:
        files = {
            name: (path.parent / value).resolve()
            for name, value in row.items()
            if name in HUB_MODALITIES and value
        }
        out[row["patch_id"]] = files
    return out


def patches_from_csv(path: str | Path) -> list[HubPatch]:
    """The patches of one of IGN's split CSVs, with the files it names (sorted by id).

    Raises:
        FlairDataError: see :func:`read_split_csv`, or a patch id of the wrong form.
    """
    out = []
    for patch_id, files in sorted(read_split_csv(path).items()):
        try:
            domain, year, roi, row, col = parse_patch_id(patch_id)
        except ValueError as error:
            raise FlairDataError(path, str(error)) from None
        out.append(HubPatch(patch_id, domain, year, roi, row, col, files))
    return out


def select_split(
    patches: Sequence[HubPatch], split_of: Mapping[str, str], split: str
) -> list[HubPatch]:
    """The patches of one split (``train``, ``valid`` or ``val``, ``test``).

    Raises:
        ValueError: an unknown split name.
    """
    name = "valid" if split == "val" else split
    if name not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}: expected one of {SPLIT_NAMES} (or 'val')")
    return [p for p in patches if split_of.get(p.id) == name]


def split_gpkg_path(root: str | Path) -> Path:
    """``ROOT/GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg``."""
    return Path(root) / GLOBAL_MTD_DIR / SPLIT_GPKG


def read_dates_gpkg(path: str | Path) -> dict[str, list[dt.date]]:
    """The acquisition dates of each patch's time series, from a ``GLOBAL_*_MTD_DATES.gpkg``.

    The ``acquisition_dates`` column is a JSON object with 1-based string keys,
    ``{"1": "20200103", "2": "20200108", …}``; the dates come back in key order (the order of the
    dates in the series' bands).

    Raises:
        FlairDataError: naming the file and the patch: unreadable file, missing column, bad JSON,
            keys that are not ``"1"`` … ``"T"``, a date that is not ``YYYYMMDD``.
    """
    out = {}
    for patch_id, text in _read_gpkg(path, ("patch_id", "acquisition_dates")):
        out[str(patch_id)] = parse_acquisition_dates(text, path, str(patch_id))
    return out


def parse_acquisition_dates(text: object, path: str | Path, patch_id: str) -> list[dt.date]:
    """The dates of one ``acquisition_dates`` JSON string (see :func:`read_dates_gpkg`)."""
    try:
        entries = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        entries = None
    if not isinstance(entries, dict):
        raise FlairDataError(path, f"patch {patch_id}: acquisition_dates is not a JSON object ({str(text)[:60]!r})")
    expected = [str(i) for i in range(1, len(entries) + 1)]
    if sorted(entries, key=lambda k: (len(k), k)) != expected:
        raise FlairDataError(
            path, f"patch {patch_id}: acquisition_dates keys must be '1' … '{len(entries)}', got "
            + ", ".join(repr(k) for k in sorted(entries)[:5]),
        )
    dates = []
    for key in expected:
        value = entries[key]
        try:
            dates.append(dt.datetime.strptime(str(value), "%Y%m%d").date())
        except ValueError:
            raise FlairDataError(path, f"patch {patch_id}: date {key} is {value!r}, expected YYYYMMDD") from None
    return dates


def days_to_reference(dates: Sequence[dt.date], reference_day: tuple[int, int] = HUB_REFERENCE_DAY) -> list[int]:
    """Day offsets ``date − reference`` of each date to the reference day of the date's own year.

    IGN's FLAIR-HUB code counts each acquisition from the reference day (default 15 May) of the
    acquisition's year, so a series crossing New Year has a jump: 31 Dec 2020 is +230 and 1 Jan
    2021 is −134.
    """
    month, day = reference_day
    return [(d - dt.date(d.year, month, day)).days for d in dates]


def _read_gpkg(path: str | Path, columns: tuple[str, ...]) -> list[tuple]:
    import fiona

    path = Path(path)
    if not path.is_file():
        raise FlairDataError(path, "file not found")
    try:
        with fiona.open(path) as src:
            names = list(src.schema["properties"])
            missing = [c for c in columns if c not in names]
            if missing:
                raise FlairDataError(path, f"no column {missing[0]!r} (columns: {', '.join(names)})")
            return [tuple(feature["properties"][c] for c in columns) for feature in src]
    except FlairDataError:
        raise
    except Exception as error:  # fiona/GDAL raise many types; each becomes one line naming the file
        raise FlairDataError(path, f"cannot read as a GeoPackage ({type(error).__name__}: {error})") from None


__all__ = [
    "HUB_REFERENCE_DAY",
    "SPLIT_COLUMNS",
    "HubPatch",
    "days_to_reference",
    "discover_hub",
    "modality_folders",
    "parse_acquisition_dates",
    "parse_patch_id",
    "patch_files",
    "patches_from_csv",
    "read_dates_gpkg",
    "read_split_csv",
    "read_split_gpkg",
    "select_split",
    "split_gpkg_path",
]
