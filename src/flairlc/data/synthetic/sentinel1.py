"""Sentinel-1 backscatter series of a scene: class backscatter, seasonal vegetation, speckle.

C-band radar sees what the optical series sees through another physics: each class mixes, in
linear power, a *bare* backscatter (soil, leafless stems) and a *vegetated* one weighted by the
same greenness profile ``g(day of year)`` as its Sentinel-2 series (:func:`.sentinel.greenness`,
or a crop type's, :mod:`.crops`): growing biomass raises the cross-polarized VH (volume
scattering) more than VV, so crop types differ in their VH and VV curves as in their NDVI.
Buildings (double bounce) are bright, calm water and smooth roads dark. Pixels mix classes by
area (:func:`.scene.class_fractions`); each date gets a small calibration jitter, and every value
a multiplicative speckle (Gamma of :data:`S1_LOOKS` looks, as a multi-looked GRD product), before
the conversion to decibels.

Values are float32 backscatter coefficients in dB, bands VV and VH, stacked date by date as in
FLAIR-HUB's ``SENTINEL1-ASC_TS`` and ``SENTINEL1-DESC_TS``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np

from flairlc.data.synthetic.scene import (
    AGRICULTURAL,
    BARE_SOIL,
    BRUSHWOOD,
    BUILDING,
    CLEAR_CUT,
    CONIFEROUS,
    DECIDUOUS,
    GREENHOUSE,
    HERBACEOUS,
    IMPERVIOUS,
    LIGNEOUS,
    MIXED,
    N_TABLE,
    OTHER,
    PERVIOUS,
    PLOWED,
    POOL,
    SNOW,
    VINEYARD,
    WATER,
)
from flairlc.data.synthetic.sentinel import greenness

#: Band order of the generated arrays.
S1_BANDS = ("VV", "VH")
#: Days between two acquisitions of one orbit (one Sentinel-1 satellite's repeat cycle).
S1_REVISIT_DAYS = 12
#: Equivalent number of looks of the speckle (Sentinel-1 IW GRD, high resolution: about 4.4).
S1_LOOKS = 4.4
#: Lowest value written, dB (below the sensor's noise floor, about -25 dB, nothing is measured).
S1_FLOOR_DB = -35.0
#: Standard deviation of a date's calibration jitter, dB (common to every pixel of the date).
S1_DATE_JITTER_DB = 0.3

# (VV, VH) in dB of the bare and the vegetated state of each raw class (row 0 unused)
_BARE_DB = np.full((N_TABLE, 2), S1_FLOOR_DB, dtype=np.float32)
_VEGETATED_DB = np.full((N_TABLE, 2), S1_FLOOR_DB, dtype=np.float32)
for _v, _bare, _veg in (
    (BUILDING, (-4.0, -11.0), (-4.0, -11.0)),
    (PERVIOUS, (-11.0, -19.0), (-9.5, -15.5)),
    (IMPERVIOUS, (-14.0, -22.0), (-14.0, -22.0)),
    (BARE_SOIL, (-12.0, -20.0), (-10.0, -16.0)),
    (WATER, (-22.0, -28.0), (-22.0, -28.0)),
    (CONIFEROUS, (-8.5, -14.5), (-7.0, -12.0)),
    (DECIDUOUS, (-9.5, -16.5), (-7.0, -12.0)),
    (BRUSHWOOD, (-10.0, -17.0), (-8.0, -13.0)),
    (VINEYARD, (-11.0, -18.0), (-8.5, -14.0)),
    (HERBACEOUS, (-11.5, -20.0), (-9.5, -15.0)),
    (AGRICULTURAL, (-12.5, -21.0), (-9.0, -14.0)),
    (PLOWED, (-10.5, -19.0), (-9.0, -14.5)),
    (POOL, (-20.0, -27.0), (-20.0, -27.0)),
    (SNOW, (-13.0, -21.0), (-13.0, -21.0)),
    (CLEAR_CUT, (-10.5, -18.0), (-8.5, -14.0)),
    (MIXED, (-9.0, -15.5), (-7.0, -12.0)),
    (LIGNEOUS, (-9.5, -16.5), (-7.5, -12.5)),
    (GREENHOUSE, (-6.0, -14.0), (-6.0, -14.0)),
    (OTHER, (-12.0, -19.0), (-12.0, -19.0)),
):
    _BARE_DB[_v], _VEGETATED_DB[_v] = _bare, _veg
_BARE_POWER = (10.0 ** (_BARE_DB / 10.0)).astype(np.float32)
_VEGETATED_POWER = (10.0 ** (_VEGETATED_DB / 10.0)).astype(np.float32)


def revisit_dates(rng: np.random.Generator, year: int, revisit_days: int = S1_REVISIT_DAYS) -> list[dt.date]:
    """The acquisitions of one orbit over ``year``: every ``revisit_days`` from a first day drawn
    in the first ``revisit_days`` of the year (30 or 31 dates for 12 days)."""
    if not 1 <= revisit_days <= 182:
        raise ValueError(f"revisit_days must be within 1..182, got {revisit_days}")
    start = int(rng.integers(revisit_days))
    return [dt.date(year, 1, 1) + dt.timedelta(days=d) for d in range(start, 365, revisit_days)]


def render_backscatter(
    fractions: np.ndarray,
    shift_days: np.ndarray,
    dates: list[dt.date],
    rng: np.random.Generator,
    greenness_of: Mapping[int, np.ndarray] | None = None,
    orbit_offset_db: float = 0.0,
) -> np.ndarray:
    """Sentinel-1 VV and VH backscatter of a scene over a grid.

    Args:
        fractions: float32 ``(N_TABLE, H, W)`` class area fractions (from
            :func:`~.scene.class_fractions`).
        shift_days: ``(H, W)`` phenology shift of each pixel, days.
        dates: the T acquisition dates.
        rng: source of the speckle and of the dates' jitter.
        greenness_of: raw class value → float32 ``(T, H, W)`` greenness replacing the class's
            profile on these dates (e.g. agricultural land's crop types, :mod:`.crops`).
        orbit_offset_db: added to every value, dB (ascending and descending orbits see the
            ground under other incidence angles).

    Returns:
        float32 ``(T, 2, H, W)``: VV and VH backscatter coefficients, dB, at least
        :data:`S1_FLOOR_DB`.
    """
    t = len(dates)
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float32)
    present = np.flatnonzero(fractions.reshape(N_TABLE, -1).max(1) > 0)
    day = doy[:, None, None] - shift_days[None]
    profiles = greenness_of or {}
    green = np.stack([
        profiles[int(v)] if int(v) in profiles else greenness(int(v), day) for v in present
    ]).astype(np.float32)  # (C, T, H, W)
    cover = fractions[present][:, None]  # (C, 1, H, W)
    power = np.einsum("cthw,cb->tbhw", cover * (1.0 - green), _BARE_POWER[present], optimize=True)
    power += np.einsum("cthw,cb->tbhw", cover * green, _VEGETATED_POWER[present], optimize=True)
    offset_db = orbit_offset_db + S1_DATE_JITTER_DB * rng.standard_normal((t, 1, 1, 1))
    power *= (10.0 ** (offset_db / 10.0)).astype(np.float32)
    power *= rng.gamma(S1_LOOKS, 1.0 / S1_LOOKS, size=power.shape).astype(np.float32)
    floor = np.float32(10.0 ** (S1_FLOOR_DB / 10.0))
    return (10.0 * np.log10(np.maximum(power, floor))).astype(np.float32)
