"""Aerial bands as data: the names a model declares, their order in FLAIR files, their statistics.

FLAIR aerial patches hold 5 bands, in this order: R, G, B, NIR (uint8 digital numbers) and
elevation (uint8, normalized height above ground). A model reads any subset of them in any order,
e.g. ``("R", "G", "B")`` for an RGB model or ``("NIR", "R", "G")`` for FLAIR-HUB's IR models; the
dataset and the mapper always deliver the 5 FLAIR bands and the model picks its own
(:func:`band_indices`), so one data path serves every band set.

An aerial batch holds the first bands of :data:`AERIAL_BANDS`, in that order: all 5 for FLAIR #2;
for FLAIR-HUB, R, G, B, NIR (``AERIAL_RGBI``), and elevation when the data module derives it from
``DEM_ELEV`` (DSM − DTM in digital numbers: :func:`elevation_digital_numbers`). A model whose bands
are all among them reads either (:func:`delivered_bands` names what a batch holds).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The aerial bands of FLAIR files, in file order.
AERIAL_BANDS: tuple[str, ...] = ("R", "G", "B", "NIR", "elevation")
#: IGN's statistics of FLAIR aerial imagery per band (digital numbers): mean and standard deviation.
AERIAL_BAND_MEAN: dict[str, float] = {"R": 105.08, "G": 110.87, "B": 101.82, "NIR": 106.38, "elevation": 53.26}
AERIAL_BAND_STD: dict[str, float] = {"R": 52.17, "G": 45.38, "B": 44.00, "NIR": 39.69, "elevation": 79.30}

#: Digital numbers per metre of the elevation band flairlc derives from FLAIR-HUB's DSM − DTM (that of
#: the synthetic FLAIR #2 generator): 0.1 m steps, heights from 25.5 m up read 255.
ELEVATION_DN_PER_M = 10.0

#: Other spellings accepted for band names (case-insensitive).
_ALIASES = {
    "r": "R", "red": "R", "g": "G", "green": "G", "b": "B", "blue": "B",
    "nir": "NIR", "ir": "NIR", "infrared": "NIR",
    "elevation": "elevation", "elev": "elevation", "dem": "elevation", "height": "elevation",
}


def normalize_bands(bands: Sequence[str] | str) -> tuple[str, ...]:
    """Canonical band names (``R``, ``G``, ``B``, ``NIR``, ``elevation``) of a band list.

    Accepts a sequence or a comma-separated string, any case, and the aliases ``red``, ``IR``,
    ``DEM``, …

    Raises:
        ValueError: an unknown or repeated band, or an empty list, naming it.
    """
    names = [b.strip() for b in bands.split(",")] if isinstance(bands, str) else [str(b) for b in bands]
    canonical = []
    for name in names:
        band = _ALIASES.get(name.lower())
        if band is None:
            raise ValueError(f"unknown aerial band {name!r}: expected some of {', '.join(AERIAL_BANDS)}")
        if band in canonical:
            raise ValueError(f"aerial band {band} is given twice in {names}")
        canonical.append(band)
    if not canonical:
        raise ValueError("a model reads at least one aerial band")
    return tuple(canonical)


def band_indices(bands: Sequence[str]) -> list[int]:
    """Positions of ``bands`` in FLAIR's 5-band order, e.g. ``[3, 0, 1]`` for NIR, R, G."""
    return [AERIAL_BANDS.index(b) for b in normalize_bands(bands)]


def delivered_bands(channels: int) -> tuple[str, ...]:
    """The bands of an aerial batch of ``channels`` channels: the first ``channels`` of FLAIR's order.

    Raises:
        ValueError: no channel, or more than FLAIR's 5.
    """
    if not 1 <= channels <= len(AERIAL_BANDS):
        raise ValueError(f"aerial batches hold 1 to {len(AERIAL_BANDS)} bands {list(AERIAL_BANDS)}, got {channels} channels")
    return AERIAL_BANDS[:channels]


def elevation_digital_numbers(dsm: np.ndarray, dtm: np.ndarray) -> np.ndarray:
    """The elevation band (uint8) of a surface and a terrain model in metres: ``DSM − DTM`` times
    :data:`ELEVATION_DN_PER_M`, rounded, clipped to 0..255 (NaN reads 0)."""
    height = np.nan_to_num(np.asarray(dsm, dtype=np.float64) - np.asarray(dtm, dtype=np.float64), nan=0.0)
    return np.clip(np.rint(height * ELEVATION_DN_PER_M), 0, 255).astype(np.uint8)


def band_statistics(bands: Sequence[str]) -> tuple[list[float], list[float]]:
    """IGN's means and standard deviations of ``bands``, in their order (digital numbers)."""
    names = normalize_bands(bands)
    return [AERIAL_BAND_MEAN[b] for b in names], [AERIAL_BAND_STD[b] for b in names]
