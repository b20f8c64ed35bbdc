"""Reader of one FLAIR-HUB GeoTIFF, checked against its modality (errors name the file)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from flairlc.data.errors import FlairDataError
from flairlc.data.hub.modalities import HubModality
from flairlc.data.readers import describe_error

_READ_ERRORS = (RasterioError, CPLE_BaseError, OSError, ValueError, IndexError)


def read_hub_raster(path: str | Path, modality: HubModality) -> np.ndarray:
    """Read a patch file of a modality.

    Returns:
        ``(C, H, W)`` for a single image (``C = len(modality.bands)``; band 1 only for a label),
        ``(T, C, H, W)`` for a time series (the file's ``T × C`` bands are stacked date by date),
        in the file's dtype.

    Raises:
        FlairDataError: the file is missing or unreadable, has another dtype than the modality's
            (when known) or a band count that does not fit the modality.
    """
    path = Path(path)
    if not path.is_file():
        raise FlairDataError(path, f"{modality.name} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                array = dataset.read([1] if modality.label else None)
    except _READ_ERRORS as error:
        raise FlairDataError(path, f"cannot read as a GeoTIFF ({describe_error(error)})") from None
    if modality.dtype is not None and array.dtype != np.dtype(modality.dtype):
        raise FlairDataError(path, f"{modality.name} has dtype {array.dtype}, expected {modality.dtype}")
    per_date = len(modality.bands)
    if modality.time_series:
        if array.shape[0] % per_date:
            raise FlairDataError(
                path, f"{modality.name} has {array.shape[0]} bands, not a multiple of {per_date} (bands per date)"
            )
        return array.reshape(array.shape[0] // per_date, per_date, *array.shape[1:])
    if not modality.label and array.shape[0] != per_date:
        raise FlairDataError(path, f"{modality.name} has {array.shape[0]} bands, expected {per_date} ({', '.join(modality.bands)})")
    return array
