"""Encoding of the aerial metadata of a patch into a fixed-size vector.

Per patch: the centroid ``(x, y)`` in Lambert-93 metres (sinusoidal encoding), the altitude
(metres, scaled by the dataset maximum), the camera family (one-hot: 'UCE' cameras vs the others),
the survey year (one-hot 2018–2021) and the cyclical month, day of month and time of day (sin, cos).
The vector has ``geo_enc_size + 13`` values (45 by default), in that order.

Differences from the official code (``docs/fidelity.md``): the centroid encoding is chosen by
``geo_encoding`` (``"log"`` here, ``"official"`` for the paper's); the month angle is
``2π (month − 1) / 12`` (the official ``2π (month − 1/12)`` is constant); the day angle is
``2π (day − 1) / 31`` (official ``2π day / 31``); the cyclical values are in [−1, 1] (official
``(v + 1) / 2``, in [0, 1]). The last two are affine changes that the first layer of the MLP absorbs.
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
#: Centroid encodings: ``"log"`` (flairlc) and ``"official"`` (the FLAIR code's, for the paper).
GEO_ENCODINGS = ("log", "official")
#: Shortest and longest wavelength of the ``"log"`` centroid encoding, metres: finer than a few
#: patches apart (a patch is 102.4 m), and longer than France (about 1,000 km across) so that the
#: phases of the longest wavelength place a patch without ambiguity.
GEO_MIN_WAVELENGTH_M = 1_000.0
GEO_MAX_WAVELENGTH_M = 1_000_000.0
#: Scale of the official encoding: angles ``(v / 1e8) · 1e8^(−2i / size)`` (``10e7`` in its code).
OFFICIAL_GEO_SCALE = 1e8


def metadata_size(geo_enc_size: int = 32) -> int:
    """Length of the encoded metadata vector."""
    return geo_enc_size + NON_GEO_SIZE


def geo_wavelengths_m(pairs: int) -> np.ndarray:
    """Wavelengths (metres) of the ``"log"`` encoding with ``pairs`` sin/cos pairs.

    Log-spaced from :data:`GEO_MIN_WAVELENGTH_M` to :data:`GEO_MAX_WAVELENGTH_M`, shortest
    first; a single pair gets the longest.

    Returns:
        float64 ``(pairs,)``.
    """
    return np.geomspace(GEO_MAX_WAVELENGTH_M, GEO_MIN_WAVELENGTH_M, pairs)[::-1].copy()


def encode_position(value_m: float, size: int, encoding: str = "log") -> np.ndarray:
    """Sinusoidal encoding of one coordinate (metres) into ``size`` values (sin/cos pairs).

    Values ``2i`` and ``2i + 1`` are the sine and cosine of angle ``i`` (an odd ``size`` ends with
    a 0), for the ``size // 2`` angles:

    - ``"log"``: ``2π · value_m / λ_i`` with the wavelengths ``λ_i`` of :func:`geo_wavelengths_m`
      (1 km to 1,000 km): two points 1 m apart get nearly the same values, two patches 1 km or
      100 km apart different ones, anywhere in France;
    - ``"official"``: ``(value_m / 1e8) · 1e8^(−2i / size)``, as the FLAIR code: at most 0.011 rad
      over France, so nearly constant.

    Returns:
        float64 ``(size,)``.
    """
    pairs = size // 2
    if encoding == "log":
        angles = 2.0 * np.pi * value_m / geo_wavelengths_m(pairs)
    elif encoding == "official":
        angles = (value_m / OFFICIAL_GEO_SCALE) / OFFICIAL_GEO_SCALE ** (2.0 * np.arange(pairs) / size)
    else:
        raise ValueError(f"unknown geo encoding {encoding!r}: expected one of {GEO_ENCODINGS}")
    encoding_values = np.zeros(size, dtype=np.float64)
    encoding_values[0 : 2 * pairs : 2] = np.sin(angles)
    encoding_values[1 : 2 * pairs : 2] = np.cos(angles)
    return encoding_values


def encode_metadata(metadata: dict[str, Any], geo_enc_size: int = 32, geo_encoding: str = "log") -> np.ndarray:
    """Encode one patch's metadata.

    Args:
        metadata: the patch's entry of the aerial metadata JSON (``patch_centroid_x``,
            ``patch_centroid_y``, ``patch_centroid_z``, ``date`` ``YYYY-MM-DD``, ``time``
            ``HHhMM``, ``camera``); extra fields are ignored.
        geo_enc_size: number of values of the (x, y) encoding, half for each coordinate.
        geo_encoding: ``"log"`` or ``"official"`` (see :func:`encode_position`); a
            preprocessing profile chooses it (``SeriesPreprocessing.geo_encoding``).

    Returns:
        float32 ``(geo_enc_size + 13,)``.

    Raises:
        KeyError, ValueError: on a missing field or an unparsable date or time.
    """
    half = geo_enc_size // 2
    geo = np.concatenate(
        [
            encode_position(float(metadata["patch_centroid_x"]), half, geo_encoding),
            encode_position(float(metadata["patch_centroid_y"]), geo_enc_size - half, geo_encoding),
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
