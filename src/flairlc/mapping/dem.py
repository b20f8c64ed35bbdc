"""Elevation from a surface and a terrain model: FLAIR-HUB's ``DEM_ELEV`` rasters, for the mapper.

FLAIR-HUB ships elevation as ``DEM_ELEV`` GeoTIFFs of 2 bands, DSM and DTM (metres, 0.2 m
pixels); IGN's production data are a DSM (e.g. LiDAR HD) and a DTM (RGE ALTI), which
``gdalbuildvrt -separate DEM.vrt DSM.tif DTM.tif`` makes one such raster. A model trained on it
reads the elevation band FLAIR-HUB's data path derives from it
(:func:`flairlc.data.bands.elevation_digital_numbers` of DSM and DTM as float32, as
:class:`~flairlc.data.hub.dataset.FlairHubDataset` reads them); the mapper computes it window by
window, the same way (:func:`elevation_from_dem`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flairlc.data.bands import elevation_digital_numbers
from flairlc.mapping.errors import MappingInputError

#: The bands of a DEM raster, in FLAIR-HUB's order (when its band descriptions do not say it).
DEM_BANDS: tuple[str, str] = ("DSM", "DTM")


def dem_band_indexes(path: Path, count: int, dtypes: tuple[str, ...], descriptions: tuple[str | None, ...]) -> list[int]:
    """The 1-based indexes of the DSM and the DTM in a DEM raster of ``count`` bands.

    Bands described ``DSM`` and ``DTM`` (any case) are those; otherwise band 1 is the DSM and
    band 2 the DTM, as FLAIR-HUB writes them.

    Raises:
        MappingInputError: not 2 bands, or not numbers (naming ``path``).
    """
    if count != len(DEM_BANDS):
        raise MappingInputError(f"DEM raster {path} has {count} band(s): expected 2, DSM and DTM in metres "
                                "(a 1-band elevation in digital numbers is --elevation)")
    if any(np.dtype(dtype).kind not in "uif" for dtype in dtypes):
        raise MappingInputError(f"DEM raster {path} has dtypes {list(dtypes)}: expected heights in metres (numbers)")
    named = [(d or "").strip().upper() for d in descriptions]
    if set(DEM_BANDS) <= set(named):
        return [named.index(band) + 1 for band in DEM_BANDS]
    return [1, 2]


def elevation_from_dem(dsm_dtm: np.ndarray) -> np.ndarray:
    """The elevation band (uint8 ``(h, w)``) of DSM and DTM ``(2, h, w)`` in metres, as
    FLAIR-HUB's data path computes it: both as float32, then
    :func:`~flairlc.data.bands.elevation_digital_numbers`."""
    dsm, dtm = np.asarray(dsm_dtm, dtype=np.float32)
    return elevation_digital_numbers(dsm, dtm)
