"""Reader of one FLAIR-HUB GeoTIFF, checked against its modality (errors name the file)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from flairlc import nomenclature as nomenclature_module
from flairlc.data.errors import FlairDataError
from flairlc.data.hub.modalities import HUB_MODALITIES, HubModality
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


def cosia_indices(path: str | Path, values: np.ndarray) -> np.ndarray:
    """CoSIA class indices (uint8, 0..18) of the values of a label file.

    Raises:
        FlairDataError: naming ``path`` and up to 10 values that are no CoSIA class.
    """
    return label_indices(path, values, "cosia")


def label_indices(path: str | Path, values: np.ndarray, nomenclature: str) -> np.ndarray:
    """Class indices (uint8) of the values of a label file in a built-in nomenclature
    (``"cosia"``: 0..18, ``"lpis"``: 0..22).

    Raises:
        FlairDataError: naming ``path`` and up to 10 values that are no class of it.
    """
    nomen = nomenclature_module.get(nomenclature)
    indices = nomenclature_module.raw_to_index(values, nomen)
    invalid = indices == nomenclature_module.NODATA_VALUE
    if invalid.any():
        bad = np.unique(values[invalid])[:10].tolist()
        label = {"cosia": "CoSIA", "lpis": "LPIS"}.get(nomen.name, nomen.name)
        raise FlairDataError(path, f"label values {bad} are no {label} class (values 0..{nomen.num_classes - 1})")
    return indices


def read_cosia_label(path: str | Path) -> np.ndarray:
    """Read an ``AERIAL_LABEL-COSIA`` file: uint8 ``(H, W)`` CoSIA class indices 0..18.

    Raises:
        FlairDataError: see :func:`read_hub_raster` and :func:`cosia_indices`.
    """
    return cosia_indices(path, read_hub_raster(path, HUB_MODALITIES["AERIAL_LABEL-COSIA"])[0])
