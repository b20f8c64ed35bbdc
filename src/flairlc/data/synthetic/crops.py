"""Crop types of a scene's agricultural land: FLAIR-HUB's LPIS values and their seasonal profiles.

From the air, agricultural land looks the same whatever grows on it (:mod:`.aerial` draws every
field from one distribution). Each object of a scene whose class is agricultural land gets a crop
type, one of a few of FLAIR-HUB's LPIS classes (:data:`flairlc.nomenclature.LPIS_CLASSES`), and the
crop's greenness profile over the year replaces agricultural land's in its Sentinel-2 series, as
:func:`.sentinel.greenness` sets the series of the land-cover classes: crop types are told apart
by the series only. Vineyards are LPIS 'vineyard'; everything else is LPIS 'background'.

Every crop drawn here is harvested by August (winter cereals, rapeseed, spring peas, and a
sunflower that dries in mid-August), so agricultural land as a whole keeps the late-summer
dryness that tells it apart from herbaceous vegetation (:func:`.sentinel.greenness`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from flairlc.data.synthetic.scene import AGRICULTURAL, VINEYARD, Grid, Scene, rasterize
from flairlc.data.synthetic.sentinel import greenness
from flairlc.nomenclature import LPIS_BACKGROUND, get

_LPIS = get("lpis")
#: LPIS value of each crop type drawn, and its share of the agricultural objects.
CROP_SHARES: dict[int, float] = {
    _LPIS.index_of("wheat"): 0.30,
    _LPIS.index_of("barley"): 0.20,
    _LPIS.index_of("rapeseed"): 0.20,
    _LPIS.index_of("sunflower"): 0.15,
    _LPIS.index_of("other protein crops"): 0.15,
}
#: LPIS value of vineyards.
LPIS_VINEYARD = _LPIS.index_of("vineyard")


def _bump(d: np.ndarray, peak: float, width: float) -> np.ndarray:
    return np.exp(-(((d - peak) / width) ** 2))


def _rise(d: np.ndarray, at: float, days: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(d - at) / days))


def crop_greenness(crop: int, day: np.ndarray) -> np.ndarray:
    """Green-vegetation share of a crop type (an LPIS value of :data:`CROP_SHARES`) on day-of-year
    ``day`` (any shape), in [0, 1]."""
    d = np.asarray(day, dtype=np.float32)
    name = _LPIS.names[crop]
    if name == "wheat":  # winter wheat: agricultural land's own profile (green in May, cut mid-July)
        return greenness(AGRICULTURAL, d)
    if name == "barley":  # winter barley: earlier growth, cut at the end of June
        return (0.2 + 0.75 * _bump(d, 120, 35)) * (1 - _rise(d, 178, 4)) + 0.04
    if name == "rapeseed":  # green through the winter, peak in March, flowering dip, cut early July
        return (0.4 + 0.5 * _bump(d, 85, 30) - 0.3 * _bump(d, 115, 9)) * (1 - _rise(d, 188, 4)) + 0.04
    if name == "sunflower":  # sown in April, green in July, heads dry from mid-August
        return 0.04 + 0.85 * _bump(d, 192, 28) * (1 - _rise(d, 240, 6))
    if name == "other protein crops":  # spring peas: bare in winter, peak late May, cut early July
        return 0.04 + 0.85 * _bump(d, 145, 25) * (1 - _rise(d, 185, 4))
    raise ValueError(f"no seasonal profile for LPIS class {crop} ({name!r})")


def object_crops(scene: Scene, seed: int) -> np.ndarray:
    """LPIS value of every object of a scene, uint8 ``(n_objects,)``: a crop type drawn for each
    agricultural object (from its own generator: the scene's draws are unchanged), 'vineyard'
    for vineyards, 'background' for the rest."""
    cls = scene.object_cls
    crops = np.array(list(CROP_SHARES), dtype=np.uint8)
    shares = np.array(list(CROP_SHARES.values()), dtype=np.float64)
    drawn = np.random.default_rng([seed, 21]).choice(crops, size=cls.size, p=shares / shares.sum())
    values = np.full(cls.size, LPIS_BACKGROUND, dtype=np.uint8)
    values[cls == AGRICULTURAL] = drawn[cls == AGRICULTURAL]
    values[cls == VINEYARD] = LPIS_VINEYARD
    return values


def agricultural_greenness(
    scene: Scene, crops: np.ndarray, grid: Grid, day: np.ndarray, factor: int = 5
) -> np.ndarray:
    """Greenness of the agricultural land of each pixel of a coarse grid (e.g. 10 m Sentinel-2):
    the mean of its crops' profiles weighted by their areas.

    Args:
        scene: the scene.
        crops: ``(n_objects,)`` LPIS value of every object (:func:`object_crops`).
        grid: the coarse grid; the scene is rasterized at ``grid.pixel_m / factor`` (as
            :func:`.scene.class_fractions` does).
        day: ``(T, H, W)`` day of year of each date and pixel, phenology shift applied.
        factor: subsampling factor of the area fractions.

    Returns:
        float32 ``(T, H, W)`` in [0, 1] (agricultural land's own profile where a pixel has none).
    """
    fine = replace(grid, width=grid.width * factor, height=grid.height * factor, pixel_m=grid.pixel_m / factor)
    cls, obj = rasterize(scene, fine)
    h, w = grid.height, grid.width
    blocks = crops[obj].reshape(h, factor, w, factor)
    on_agricultural = (cls == AGRICULTURAL).reshape(h, factor, w, factor)
    total = np.zeros(day.shape, dtype=np.float32)
    area = on_agricultural.sum((1, 3)).astype(np.float32)
    for crop in CROP_SHARES:
        share = ((blocks == crop) & on_agricultural).sum((1, 3)).astype(np.float32)
        if share.any():
            total += share[None] * crop_greenness(crop, day)
    return np.where(area[None] > 0, total / np.maximum(area[None], 1.0), greenness(AGRICULTURAL, day)).astype(np.float32)
