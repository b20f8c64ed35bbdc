"""When an orthophoto was taken: the survey year its Sentinel-2 series must come from.

FLAIR pairs each aerial patch with the Sentinel-2 series of its survey year (the year the
orthophoto was flown), so a model reading both has only seen series of the aerial year. The year
is read, in this order, from:

1. ``--aerial-date`` (``YYYY`` or ``YYYY-MM-DD``), when the files say nothing or say it wrong;
2. the names of the orthophoto tiles, when they follow IGN's BD ORTHO naming
   (``{département}-{year}-{x km}-{y km}-LA93-…``, e.g. ``75-2021-0645-6865-LA93-0M20-E080.jp2``);
3. the ``ACQUISITION_DATE`` metadata item of the (first) orthophoto file, ``YYYY`` or
   ``YYYY-MM-DD`` (``flairlc synth-territory`` writes it; set it on your own files with
   ``gdal_edit.py -mo ACQUISITION_DATE=2022-06-14 ortho.tif``);
4. the BD ORTHO names of a VRT's source files.

``TIFFTAG_DATETIME`` is not read: TIFF defines it as the time the file was made, which for an
orthophoto is its processing, often the year after the flight.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rasterio

from flairlc.mapping.errors import MappingInputError

#: Metadata item (GeoTIFF/VRT dataset tag) holding the acquisition date or year.
ACQUISITION_TAG = "ACQUISITION_DATE"
#: IGN BD ORTHO tile names: département (2 or 3 digits, 2A/2B), year, then the tile's corner.
IGN_TILE_NAME = re.compile(r"^(?:\d{2,3}|2[AB])-(\d{4})-\d{4}-\d{4}-LA93", re.IGNORECASE)


@dataclass(frozen=True)
class AerialAcquisition:
    """The survey year(s) of an orthophoto and where they were read.

    Attributes:
        years: the survey years, sorted (several for a mosaic of tiles flown in different years).
        source: where they come from, for messages (``"ACQUISITION_DATE of ortho.tif"``).
    """

    years: tuple[int, ...]
    source: str

    def tag(self) -> str:
        """The years as an :data:`ACQUISITION_TAG` value (``"2022"``, ``"2021,2022"``)."""
        return ",".join(str(y) for y in self.years)

    def __str__(self) -> str:
        return " and ".join(str(y) for y in self.years)


def parse_years(text: str, what: str) -> tuple[int, ...]:
    """The years of ``YYYY`` / ``YYYY-MM-DD`` values separated by commas, sorted.

    Raises:
        MappingInputError: a value that is neither (``what`` names where it was read).
    """
    years = set()
    for value in (v.strip() for v in str(text).split(",")):
        try:
            year = datetime.date.fromisoformat(value).year if "-" in value else int(value)
        except ValueError:
            year = None
        if year is None or not 1900 <= year <= 2200:
            raise MappingInputError(f"{what}: {value!r} is not a date (YYYY-MM-DD) or a year (YYYY)")
        years.add(year)
    return tuple(sorted(years))


def _ign_years(names: Sequence[str]) -> set[int]:
    return {int(m.group(1)) for m in (IGN_TILE_NAME.match(Path(n).name) for n in names) if m}


def read_acquisition(paths: str | Path | Sequence[str | Path], given: str | None = None) -> AerialAcquisition | None:
    """The survey year(s) of an orthophoto (a raster, a VRT or tiles), or None when unknown.

    Args:
        paths: the orthophoto: one raster or VRT, or its tiles (only the first is opened).
        given: ``--aerial-date`` (``YYYY`` or ``YYYY-MM-DD``), which overrides the files.

    Raises:
        MappingInputError: ``given`` or the file's tag is not a date or a year.
    """
    if given is not None:
        return AerialAcquisition(parse_years(given, "--aerial-date"), "--aerial-date")
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        return None
    years = _ign_years([p.name for p in paths])
    if years:
        return AerialAcquisition(tuple(sorted(years)), f"IGN tile names ({paths[0].name}…)")
    try:
        with rasterio.open(paths[0]) as ds:
            tag, files = ds.tags().get(ACQUISITION_TAG), ds.files[1:]
    except rasterio.errors.RasterioIOError:
        return None  # an unreadable file is named by the reader that needs it
    if tag:
        return AerialAcquisition(parse_years(tag, f"{ACQUISITION_TAG} of {paths[0]}"),
                                 f"{ACQUISITION_TAG} of {paths[0].name}")
    years = _ign_years(files)
    if years:
        return AerialAcquisition(tuple(sorted(years)), f"IGN names of the files of {paths[0].name}")
    return None
