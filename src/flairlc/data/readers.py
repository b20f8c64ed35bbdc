"""Readers of FLAIR aerial images and label masks (rasterio), with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

from flairlc.data.errors import FlairDataError
from flairlc.nomenclature import raw_to_index

#: Band order of an aerial patch.
AERIAL_BANDS = ("red", "green", "blue", "nir", "elevation")
#: Aerial pixel size in metres.
AERIAL_PIXEL_SIZE_M = 0.2


def read_aerial(path: str | Path, bands: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an aerial patch.

    Args:
        path: ``IMG_{id}.tif``.
        bands: 1-based band indices to read (default: all, R, G, B, NIR, elevation).

    Returns:
        uint8 ``(C, H, W)``.
    """
    array = _read(path, bands)
    if array.dtype != np.uint8:
        raise FlairDataError(path, f"aerial image has dtype {array.dtype}, expected uint8")
    return array


def read_mask(path: str | Path, nomenclature: str = "baseline") -> np.ndarray:
    """Read a label mask as zero-based class indices.

    Args:
        path: ``MSK_{id}.tif`` with raw values 1..19.
        nomenclature: ``"baseline"`` (13 classes, 13..19 folded into 'other') or ``"raw"`` (19).

    Returns:
        uint8 ``(H, W)`` indices.

    Raises:
        FlairDataError: when the file is unreadable or holds values outside 1..19.
    """
    raw = _read(path, (1,))[0]
    indices = raw_to_index(raw, nomenclature)
    if (indices == 255).any():
        bad = np.unique(raw[indices == 255])[:10].tolist()
        raise FlairDataError(path, f"label values outside 1..19: {bad}")
    return indices


def _read(path: str | Path, bands: tuple[int, ...] | None) -> np.ndarray:
    try:
        with rasterio.open(path) as dataset:
            return dataset.read(list(bands) if bands else None)
    except (RasterioError, CPLE_BaseError) as error:
        raise FlairDataError(path, f"cannot read as a GeoTIFF ({error})") from None
    except IndexError as error:
        raise FlairDataError(path, f"missing band ({error})") from None
