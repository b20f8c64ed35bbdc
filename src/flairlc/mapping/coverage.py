"""Whether the inputs of a map cover the aerial image, and what to do when they do not.

The aerial image defines the area to map. The elevation raster, every Sentinel-2 date and its
``_masks.tif`` are read by coordinates, so each can cover all of that area, part of it, or none.
The policy (``coverage_policy``, ``flairlc map --coverage-policy``) decides:

- ``"error"`` (default): every input must cover the whole aerial extent (within
  :data:`COVERAGE_TOLERANCE_PX` of the input's pixels), and a model trained with the cloud filter
  needs a ``_masks.tif`` for every date. Anything less stops the run before any inference, with
  the extents and CRSs of both rasters in the message.
- ``"warn"``: partial coverage is accepted with a warning giving the extents; the map is nodata
  outside the part of the aerial extent that every input covers (so no pixel is predicted from
  fill values). A series without masks is used without the cloud filter, with a warning.

An input that does not overlap the aerial extent at all is an error under both policies.
Coverage is judged on bounding boxes: an input's extent is transformed into the aerial CRS (or the
aerial extent into the input's), which is exact for inputs in the same CRS.

The same policy judges coverage in time (:func:`check_dates`). FLAIR pairs each aerial patch with
the Sentinel-2 series of its survey year, so every date of a series must fall in the calendar year
the orthophoto was flown (:mod:`flairlc.mapping.acquisition` reads it; in any of the years, for a
mosaic of several). A date outside it is an error under ``"error"`` and a one-line warning under
``"warn"`` (the map then uses the series as given). When the survey year is unknown, one warning
says the dates cannot be checked, under both policies.
"""

from __future__ import annotations

import datetime
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rasterio.warp import transform_bounds

from flairlc.map_options import COVERAGE_POLICIES
from flairlc.mapping.acquisition import ACQUISITION_TAG, AerialAcquisition
from flairlc.mapping.errors import MappingInputError

#: An input may fall short of the aerial extent by this many of its own pixels and still cover it.
COVERAGE_TOLERANCE_PX = 1.0


class CoverageError(MappingInputError):
    """An input does not cover the aerial image as the coverage policy requires."""


class SeriesDatesWarning(UserWarning):
    """The dates of a Sentinel-2 series are outside the aerial image's survey year, or unchecked."""


@dataclass(frozen=True)
class Extent:
    """A bounding box ``(left, bottom, right, top)`` in a CRS."""

    left: float
    bottom: float
    right: float
    top: float
    crs: object

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.left, self.bottom, self.right, self.top

    def area(self) -> float:
        return max(self.right - self.left, 0.0) * max(self.top - self.bottom, 0.0)

    def in_crs(self, crs) -> Extent:
        """The bounding box of this extent in another CRS."""
        if crs == self.crs:
            return self
        return Extent(*transform_bounds(self.crs, crs, *self.bounds), crs)

    def intersection(self, other: Extent) -> Extent | None:
        """The common part of two extents of the same CRS, or None when they do not overlap."""
        left, bottom = max(self.left, other.left), max(self.bottom, other.bottom)
        right, top = min(self.right, other.right), min(self.top, other.top)
        if right <= left or top <= bottom:
            return None
        return Extent(left, bottom, right, top, self.crs)

    def contains(self, other: Extent, tolerance: float) -> bool:
        """Whether ``other`` (same CRS) lies inside this extent, give or take ``tolerance``."""
        return (other.left >= self.left - tolerance and other.bottom >= self.bottom - tolerance
                and other.right <= self.right + tolerance and other.top <= self.top + tolerance)

    def __str__(self) -> str:
        name = self.crs.to_string() if hasattr(self.crs, "to_string") else str(self.crs)
        return f"({self.left:.1f}, {self.bottom:.1f}, {self.right:.1f}, {self.top:.1f}) in {name}"


def check_policy(policy: str) -> str:
    """``policy`` when it is one of :data:`COVERAGE_POLICIES`, else ValueError."""
    if policy not in COVERAGE_POLICIES:
        raise ValueError(f"coverage_policy must be one of {COVERAGE_POLICIES}, not {policy!r}")
    return policy


def covered_part(what: str, path: Path, extent: Extent, aerial: Extent, aerial_path: Path,
                 pixel_size: float, policy: str) -> Extent | None:
    """The part of the aerial extent an input covers, under ``policy``.

    Args:
        what: the kind of input, for messages (``"elevation raster"``, ``"Sentinel-2 file"``).
        path: the input's file.
        extent: the input's extent, in its own CRS.
        aerial: the aerial image's extent (the area to map), in the aerial CRS.
        aerial_path: the aerial image, for messages.
        pixel_size: the input's pixel size in its CRS units (sets the tolerance).
        policy: ``"error"`` or ``"warn"`` (see the module docstring).

    Returns:
        None when the input covers the whole aerial extent; else (policy ``"warn"``) the covered
        part, in the aerial CRS, after a warning.

    Raises:
        CoverageError: no overlap at all (any policy), or partial coverage under ``"error"``.
    """
    tolerance = COVERAGE_TOLERANCE_PX * pixel_size
    if extent.contains(aerial.in_crs(extent.crs), tolerance):
        return None
    where = f"{what} {path} (extent {extent})"
    of_aerial = f"the aerial image {aerial_path} (extent {aerial})"
    common = extent.in_crs(aerial.crs).intersection(aerial)
    if common is None:
        raise CoverageError(f"{where} does not overlap {of_aerial}: it cannot be used to map it")
    share = f"{100.0 * common.area() / aerial.area():.0f} %" if aerial.area() > 0 else "part"
    if policy == "error":
        raise CoverageError(
            f"{where} covers only {share} of {of_aerial}; give an input that covers it all, or "
            f"pass --coverage-policy warn to map the covered part (the rest left nodata)"
        )
    warnings.warn(
        f"{where} covers only {share} of {of_aerial}: the map is nodata outside {common}",
        stacklevel=3,
    )
    return common


def intersect(parts: list[Extent | None]) -> Extent | None:
    """The common part of coverages from :func:`covered_part` (None entries cover everything).

    Returns None when every entry is None. Raises CoverageError when partial coverages have no
    common part.
    """
    common: Extent | None = None
    for part in parts:
        if part is None:
            continue
        common = part if common is None else common.intersection(part)
        if common is None:
            raise CoverageError("the inputs cover parts of the aerial image that do not overlap: nothing to map")
    return common


def pixel_size(transform) -> float:
    """The larger side of a raster's pixels, in its CRS units."""
    return max(math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e))


def _span(dates: Sequence[datetime.date]) -> str:
    return f"{dates[0]}" if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


def check_dates(folder: Path, dates: Sequence[datetime.date], acquisition: AerialAcquisition | None,
                aerial_path: Path, policy: str) -> None:
    """Whether a Sentinel-2 series comes from the survey year of the aerial image, under ``policy``.

    Args:
        folder: the series folder, for messages.
        dates: its acquisition dates, sorted.
        acquisition: the aerial image's survey year(s)
            (:func:`~flairlc.mapping.acquisition.read_acquisition`), None when unknown.
        aerial_path: the aerial image, for messages.
        policy: ``"error"`` or ``"warn"`` (see the module docstring).

    Raises:
        CoverageError: under ``"error"``, a date outside the survey year(s).
    """
    if not dates:
        return
    if acquisition is None:
        warnings.warn(
            f"the survey year of the aerial image {aerial_path} is unknown (no {ACQUISITION_TAG} tag, no IGN "
            f"BD ORTHO name): the Sentinel-2 dates of {folder} ({_span(dates)}) are not checked against it; "
            "pass --aerial-date YYYY to check them", SeriesDatesWarning, stacklevel=3)
        return
    outside = [d for d in dates if d.year not in acquisition.years]
    if not outside:
        return
    where = (f"Sentinel-2 series {folder}: {len(outside)} of {len(dates)} dates ({_span(outside)}) are not in "
             f"{acquisition}, the survey year of the aerial image {aerial_path} ({acquisition.source})")
    if policy == "error":
        raise CoverageError(f"{where}; give the series of that year, or pass --coverage-policy warn to map "
                            "with these dates")
    warnings.warn(f"{where}: mapped with them", SeriesDatesWarning, stacklevel=3)
