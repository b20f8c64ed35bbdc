"""Encoding of the aerial metadata of a patch into a fixed-size vector.

Per patch: the centroid ``(x, y)`` in Lambert-93 metres (sinusoidal encoding), the altitude
(metres, scaled by the dataset maximum), the camera family (one-hot: 'UCE' cameras vs the others),
the survey year (one-hot 2018–2021) and the cyclical month, day of month and time of day (sin, cos).
The vector has ``geo_enc_size + 13`` values (45 by default), in that order.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

#: Altitude used to scale ``patch_centroid_z`` (the dataset maximum, metres).
MAX_ALTITUDE_M = 3164.9
#: Survey years of the one-hot year encoding.
SURVEY_YEARS = (2018, 2019, 2020, 2021)
#: Number of values besides the geographic encoding.
NON_GEO_SIZE = 1 + 2 + len(SURVEY_YEARS) + 6


def metadata_size(geo_enc_size: int = 32) -> int:
    """Length of the encoded metadata vector."""
    return geo_enc_size + NON_GEO_SIZE


def encode_position(value_m: float, size: int) -> np.ndarray:
    """Sinusoidal encoding of one coordinate (metres) into ``size`` values (sin/cos pairs).

    Frequencies follow the Transformer positional encoding, ``1 / 10000^(2i / size)``.
    """
    half = size // 2
    frequencies = 1.0 / (10000.0 ** (2.0 * np.arange(half) / size))
    angles = value_m * frequencies
    encoding = np.empty(size, dtype=np.float64)
    encoding[0 : 2 * half : 2] = np.sin(angles)
    encoding[1 : 2 * half : 2] = np.cos(angles)
    if size % 2:
        encoding[-1] = 0.0
    return encoding


def encode_metadata(metadata: dict[str, Any], geo_enc_size: int = 32) -> np.ndarray:
    """Encode one patch's metadata.

    Args:
        metadata: the patch's entry of the aerial metadata JSON (``patch_centroid_x``,
            ``patch_centroid_y``, ``patch_centroid_z``, ``date`` ``YYYY-MM-DD``, ``time``
            ``HHhMM``, ``camera``); extra fields are ignored.
        geo_enc_size: number of values of the (x, y) encoding, half for each coordinate.

    Returns:
        float32 ``(geo_enc_size + 13,)``.

    Raises:
        KeyError, ValueError: on a missing field or an unparsable date or time.
    """
    half = geo_enc_size // 2
    geo = np.concatenate(
        [
            encode_position(float(metadata["patch_centroid_x"]), half),
            encode_position(float(metadata["patch_centroid_y"]), geo_enc_size - half),
        ]
    )
    altitude = float(metadata["patch_centroid_z"]) / MAX_ALTITUDE_M
    camera = str(metadata.get("camera", ""))
    camera_onehot = [1.0, 0.0] if camera.upper().startswith("UCE") else [0.0, 1.0]
    date = dt.date.fromisoformat(str(metadata["date"]))
    year_onehot = [1.0 if date.year == year else 0.0 for year in SURVEY_YEARS]
    hours, minutes = _parse_time(str(metadata["time"]))
    month_angle = 2 * math.pi * (date.month - 1) / 12
    day_angle = 2 * math.pi * (date.day - 1) / 31
    time_angle = 2 * math.pi * (hours + minutes / 60) / 24
    cyclical = [
        math.sin(month_angle), math.cos(month_angle),
        math.sin(day_angle), math.cos(day_angle),
        math.sin(time_angle), math.cos(time_angle),
    ]
    vector = np.concatenate([geo, [altitude], camera_onehot, year_onehot, cyclical])
    return vector.astype(np.float32)


def _parse_time(text: str) -> tuple[int, int]:
    hours, _, minutes = text.lower().partition("h")
    if not hours.strip().isdigit():
        raise ValueError(f"time {text!r} is not of the form HHhMM")
    return int(hours), int(minutes) if minutes.strip().isdigit() else 0
