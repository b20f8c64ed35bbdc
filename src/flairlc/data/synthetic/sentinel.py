"""Sentinel-2 time series of a scene: class spectra, seasonal profiles, clouds and snow.

Each class is a linear mix of a background spectrum and a green-vegetation spectrum weighted by a
*greenness* profile ``g(day of year)`` in [0, 1]. The profiles carry what the aerial image hides:
agricultural land (winter crop: green in spring, harvested in July), plowed land (bare soil with a
short green spell in autumn) and herbaceous vegetation (green all year, spring flush, summer dip)
share one aerial look; coniferous stays green while deciduous loses its leaves in winter.
Reflectances are ×10 000, bands B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np

from flairlc.data.sentinel import CLOUD_CHANNEL, SNOW_CHANNEL
from flairlc.data.synthetic.noise import ValueNoise
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
    Grid,
)

#: Band order of the generated arrays.
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: Indices of the red (B4) and near-infrared (B8) bands, for NDVI.
RED, NIR = 2, 6

_VEG = (300, 620, 320, 1050, 2800, 3500, 3850, 3950, 1850, 820)
_NEEDLES = (220, 420, 230, 700, 1800, 2250, 2500, 2600, 1150, 480)
_SOIL = (950, 1250, 1550, 1850, 2050, 2200, 2300, 2400, 3050, 2550)
_STRAW = (800, 1100, 1350, 1600, 1950, 2150, 2350, 2450, 3300, 2500)
_WOOD = (480, 680, 780, 1100, 1500, 1700, 1900, 2000, 2000, 1300)
_WATER = (650, 540, 330, 220, 160, 130, 110, 100, 60, 40)
_ROAD = (1000, 1100, 1200, 1300, 1400, 1500, 1600, 1650, 1900, 1700)
_ROOF = (1150, 1200, 1380, 1500, 1600, 1700, 1800, 1850, 2250, 2050)
_POOL = (1400, 1500, 1000, 700, 500, 400, 350, 330, 200, 150)
_SNOW = (9000, 9050, 8900, 8600, 8100, 7900, 7600, 7500, 1000, 800)
_GLASS = (2200, 2300, 2350, 2400, 2600, 2800, 2900, 2950, 2700, 2300)
_CLOUD = np.array((6200, 6300, 6400, 6450, 6500, 6550, 6600, 6600, 5200, 3800), dtype=np.float32)

# background and green spectra per raw class value (row 0 unused)
_BACK = np.zeros((N_TABLE, 10), dtype=np.float32)
_GREEN = np.zeros((N_TABLE, 10), dtype=np.float32)
for _v, _b, _g in (
    (BUILDING, _ROOF, _ROOF),
    (PERVIOUS, _STRAW, _VEG),
    (IMPERVIOUS, _ROAD, _ROAD),
    (BARE_SOIL, _SOIL, _VEG),
    (WATER, _WATER, _WATER),
    (CONIFEROUS, _WOOD, _NEEDLES),
    (DECIDUOUS, _WOOD, _VEG),
    (BRUSHWOOD, _WOOD, _VEG),
    (VINEYARD, _SOIL, _VEG),
    (HERBACEOUS, _STRAW, _VEG),
    (AGRICULTURAL, _SOIL, _VEG),
    (PLOWED, _SOIL, _VEG),
    (POOL, _POOL, _POOL),
    (SNOW, _SNOW, _SNOW),
    (CLEAR_CUT, _STRAW, _VEG),
    (MIXED, _WOOD, _VEG),
    (LIGNEOUS, _WOOD, _VEG),
    (GREENHOUSE, _GLASS, _GLASS),
    (OTHER, _ROAD, _ROAD),
):
    _BACK[_v], _GREEN[_v] = _b, _g


def _bump(d: np.ndarray, peak: float, width: float) -> np.ndarray:
    return np.exp(-(((d - peak) / width) ** 2))


def _rise(d: np.ndarray, at: float, days: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(d - at) / days))


def greenness(value: int, day: np.ndarray) -> np.ndarray:
    """Green-vegetation share of a class on day-of-year ``day`` (any shape), in [0, 1]."""
    d = np.asarray(day, dtype=np.float32)
    leaf_season = _rise(d, 115, 9) * (1 - _rise(d, 295, 11))
    if value == AGRICULTURAL:  # winter cereal: spring growth, ripening, harvest in July
        return (0.18 + 0.77 * _bump(d, 145, 42)) * (1 - _rise(d, 196, 4)) + 0.04
    if value == PLOWED:  # bare most of the year, a short cover crop in autumn
        return 0.05 + 0.6 * _bump(d, 262, 18)
    if value == HERBACEOUS:  # meadow: green all year, spring flush, summer dryness
        return 0.5 + 0.32 * _bump(d, 125, 40) - 0.16 * _bump(d, 222, 28)
    if value == PERVIOUS:
        return 0.42 + 0.15 * _bump(d, 130, 50) - 0.1 * _bump(d, 220, 30)
    if value == CONIFEROUS:  # evergreen, slight winter dip
        return 0.82 - 0.08 * (1 - leaf_season)
    if value in (DECIDUOUS, LIGNEOUS):
        return 0.12 + 0.78 * leaf_season
    if value == MIXED:
        return 0.45 + 0.4 * leaf_season
    if value == BRUSHWOOD:
        return 0.3 + 0.45 * leaf_season
    if value == VINEYARD:
        return 0.08 + 0.45 * _rise(d, 140, 10) * (1 - _rise(d, 285, 10))
    if value == CLEAR_CUT:
        return 0.22 + 0.2 * _bump(d, 170, 55)
    if value == BARE_SOIL:
        return np.full_like(d, 0.04)
    return np.zeros_like(d)


def acquisition_dates(rng: np.random.Generator, year: int, n: int) -> list[dt.date]:
    """``n`` distinct sorted dates spread over ``year`` (one drawn per equal slice of the year)."""
    if not 1 <= n <= 365:
        raise ValueError(f"the number of dates must be within 1..365, got {n}")
    edges = np.linspace(0, 365, n + 1)
    days = np.floor(edges[:-1] + rng.random(n) * np.diff(edges)).astype(int)
    # two draws may floor to the same day: push duplicates forward (days stay < 365)
    steps = np.arange(n)
    days = np.minimum(np.maximum.accumulate(days - steps) + steps, 365 - n + steps)
    return [dt.date(year, 1, 1) + dt.timedelta(days=int(d)) for d in days]


def product_name(rng: np.random.Generator, date: dt.date, tile: str) -> str:
    """A THEIA-style L2A product name with the date at offsets 11–18."""
    sat = "AB"[int(rng.integers(0, 2))]
    hms = f"10{int(rng.integers(30, 60)):02d}{int(rng.integers(0, 60)):02d}"
    return f"SENTINEL2{sat}_{date:%Y%m%d}-{hms}-{int(rng.integers(0, 999)):03d}_L2A_{tile}_C_V2-2"


def render_series(
    fractions: np.ndarray,
    shift_days: np.ndarray,
    dates: list[dt.date],
    grid: Grid,
    rng: np.random.Generator,
    seed: int,
    greenness_of: Mapping[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sentinel-2 reflectances and cloud/snow masks of a scene over a grid.

    Args:
        fractions: float32 ``(N_TABLE, H, W)`` class area fractions (from
            :func:`~.scene.class_fractions`).
        shift_days: ``(H, W)`` phenology shift of each pixel, days.
        dates: the T acquisition dates.
        grid: the 10 m grid (cloud fields are defined in metres on it).
        rng: source of the per-pixel noise and of the weather draws.
        seed: seed of the cloud fields.
        greenness_of: raw class value → float32 ``(T, H, W)`` greenness replacing the class's
            profile (e.g. agricultural land's crop types, :mod:`.crops`).

    Returns:
        ``(data, masks)``: uint16 ``(T, 10, H, W)`` reflectance ×10 000 and uint8 ``(T, 2, H, W)``
        snow (channel 0) and cloud (channel 1) probabilities (0–100), as in FLAIR's ``_masks.npy``.
    """
    t, (h, w) = len(dates), fractions.shape[1:]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float32)
    present = np.flatnonzero(fractions.reshape(N_TABLE, -1).max(1) > 0)
    static = np.tensordot(_BACK[present].T, fractions[present], axes=1)  # (10, H, W)
    day = doy[:, None, None] - shift_days[None]
    profiles = greenness_of or {}
    green_cover = np.stack([
        fractions[v] * (profiles[int(v)] if int(v) in profiles else greenness(int(v), day)) for v in present
    ])  # (C, T, H, W)
    delta = _GREEN[present] - _BACK[present]  # (C, 10)
    surface = static[None] + np.einsum("cthw,cb->tbhw", green_cover, delta, optimize=True)
    surface *= 1.0 + 0.03 * rng.standard_normal((t, 1, h, w), dtype=np.float32)
    surface += 25.0 * rng.standard_normal(surface.shape, dtype=np.float32)

    masks = np.zeros((t, 2, h, w), dtype=np.uint8)
    xs, ys = grid.xs(), grid.ys()
    for i in range(t):
        winter = doy[i] < 80 or doy[i] > 320
        u = rng.random()
        if u < (0.2 if winter else 0.08):
            cover = 1.0
        elif u < (0.55 if winter else 0.35):
            cover = rng.uniform(0.08, 0.6)
        else:
            continue
        field = ValueNoise(rng.uniform(300, 900), seed * 1000 + i, 3).grid(xs, ys)
        if cover >= 1.0:
            opacity = 0.85 + 0.15 * (field + 1) / 2
        else:
            threshold = np.quantile(field, 1.0 - cover)
            opacity = np.clip((field - threshold) / 0.12, 0.0, 1.0)
        surface[i] = (1 - opacity) * surface[i] + opacity * _CLOUD[:, None, None]
        prob = 100 * opacity + 4 * rng.standard_normal((h, w), dtype=np.float32)
        masks[i, CLOUD_CHANNEL] = np.clip(np.rint(prob), 0, 100)
    for i in range(t):  # snow, rarely and only in deep winter
        if (doy[i] < 60 or doy[i] > 340) and rng.random() < 0.12 and masks[i, CLOUD_CHANNEL].mean() < 50:
            field = ValueNoise(400.0, seed * 1000 + 500 + i, 2).grid(xs, ys)
            cover = np.clip((field - 0.1) / 0.2, 0.0, 1.0)
            surface[i] = (1 - cover) * surface[i] + cover * np.asarray(_SNOW, np.float32)[
                :, None, None
            ]
            masks[i, SNOW_CHANNEL] = np.clip(np.rint(100 * cover), 0, 100)
    data = np.clip(np.rint(surface), 0, 10000).astype(np.uint16)
    return data, masks


def ndvi(data: np.ndarray) -> np.ndarray:
    """NDVI ``(T, H, W)`` of a ``(T, 10, H, W)`` reflectance array."""
    red, nir = data[:, RED].astype(np.float32), data[:, NIR].astype(np.float32)
    return (nir - red) / np.maximum(nir + red, 1.0)
