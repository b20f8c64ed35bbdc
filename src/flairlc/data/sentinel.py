"""Sentinel-2 super-areas: memory-mapped reading, windows, dates, cloud filter, monthly means.

A FLAIR super-area is three files in an area's ``sen/`` folder:

- ``…_data.npy``: uint16 ``(T, 10, H, W)``, bands B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 at
  10 m, surface reflectance ×10 000;
- ``…_masks.npy``: uint8 ``(T, 2, H, W)``, per date the snow probability (channel 0) and the
  cloud probability (channel 1), 0–100;
- ``…_products.txt``: T product names; the acquisition date ``YYYYMMDD`` is at offsets 11–18.

Everything here is vectorized over dates and pixels; arrays stay memory-mapped until a window is
sliced out of them.

How a window becomes a model input is a :class:`SeriesPreprocessing`, whose ``profile`` names a
:class:`PreprocessingProfile`: ``"flairlc"`` (this project's fixes, the default) or ``"paper"``
(the official FLAIR-2 code where it changes results). ``docs/fidelity.md`` lists every difference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flairlc.data.errors import FlairDataError

#: Number of Sentinel-2 bands in FLAIR arrays.
SENTINEL_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
#: Default reference date for day offsets (the paper's 15 May 2021).
REFERENCE_DATE = dt.date(2021, 5, 15)
#: Sentinel-2 pixel size in metres.
SENTINEL_PIXEL_SIZE_M = 10.0
#: Channels of a ``…_masks.npy`` array (and of a mapping ``{product}_masks.tif``, bands 1 and 2).
SNOW_CHANNEL = 0
CLOUD_CHANNEL = 1
_DATE_SLICE = slice(11, 19)


def product_date(name: str) -> dt.date:
    """The acquisition date of a Sentinel-2 product name (``YYYYMMDD`` at offsets 11–18).

    Raises:
        ValueError: when the name holds no valid date there.
    """
    text = name.strip()[_DATE_SLICE]
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise ValueError(
            f"product name {name.strip()!r} has no YYYYMMDD date at offsets 11-18"
        ) from None


def dates_to_days(
    dates: list[dt.date] | tuple[dt.date, ...], reference: dt.date = REFERENCE_DATE, sign: int = 1
) -> np.ndarray:
    """Day offsets of acquisition dates to a reference date, on the reference's year.

    As in the paper, only the month and day of each acquisition count: a date is moved to the
    reference year before the difference is taken (29 February becomes 28 February; the official
    code fails on it when the reference year is not a leap year).

    Args:
        dates: the T acquisition dates.
        reference: origin of the offsets.
        sign: ``1``: date − reference (flairlc, negative before the reference); ``-1``:
            reference − date (the official code, positive before the reference).

    Returns:
        int64 array ``(T,)`` of offsets in days.
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 (date - reference) or -1 (reference - date), got {sign}")
    days = []
    for date in dates:
        day = min(date.day, 28) if date.month == 2 else date.day
        days.append(sign * (dt.date(reference.year, date.month, day) - reference).days)
    return np.asarray(days, dtype=np.int64)


def read_products(path: str | Path) -> list[str]:
    """Product names of a ``…_products.txt`` file, one per non-empty line."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise FlairDataError(path, f"cannot read product list ({error.strerror})") from None
    except UnicodeDecodeError:
        raise FlairDataError(path, "product list is not text") from None
    return [line.strip() for line in lines if line.strip()]


@dataclass(frozen=True)
class SuperAreaPaths:
    """The three files of one Sentinel-2 super-area."""

    data: Path
    masks: Path
    products: Path


class SuperArea:
    """One Sentinel-2 super-area, memory-mapped.

    Args:
        paths: the data, masks and products files.

    Attributes:
        data: uint16 memory map ``(T, 10, H, W)``.
        masks: uint8 memory map ``(T, 2, H, W)``: snow (channel 0) and cloud (channel 1) probability.
        dates: acquisition dates ``(T,)``.
    """

    def __init__(self, paths: SuperAreaPaths) -> None:
        self.paths = paths
        self.data = _load_npy(paths.data, ndim=4, channels=len(SENTINEL_BANDS))
        self.masks = _load_npy(paths.masks, ndim=4, channels=2)
        products = read_products(paths.products)
        try:
            self.dates = [product_date(name) for name in products]
        except ValueError as error:
            raise FlairDataError(paths.products, str(error)) from None
        lengths = {
            paths.data.name: self.data.shape[0],
            paths.masks.name: self.masks.shape[0],
            paths.products.name: len(products),
        }
        if len(set(lengths.values())) != 1:
            detail = ", ".join(f"{name}: {length}" for name, length in lengths.items())
            raise FlairDataError(paths.data, f"number of dates T differs between files ({detail})")
        if self.data.shape[2:] != self.masks.shape[2:]:
            raise FlairDataError(
                paths.masks, f"spatial size {self.masks.shape[2:]} differs from data {self.data.shape[2:]}"
            )

    @property
    def shape(self) -> tuple[int, int]:
        """Super-area size ``(H, W)`` in 10 m pixels."""
        return int(self.data.shape[2]), int(self.data.shape[3])

    def window(self, row: int, col: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``size × size`` window centred on pixel ``(row, col)``.

        Rows ``row - size/2 … row + size/2 - 1`` (same for columns). Parts of the window outside the
        super-area are filled by replicating the nearest edge pixels, so the result always has the
        requested size.

        Returns:
            ``data`` uint16 ``(T, 10, size, size)`` and ``masks`` uint8 ``(T, 2, size, size)``.

        Raises:
            FlairDataError: naming the data file, when the window lies entirely outside.
        """
        try:
            return window_slice(self.data, row, col, size), window_slice(self.masks, row, col, size)
        except ValueError as error:
            raise FlairDataError(self.paths.data, str(error)) from None


def window_slice(array: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """Slice a ``size × size`` window centred on ``(row, col)`` from ``(…, H, W)``, edge-padded.

    Only the in-bounds part is read from the (memory-mapped) array.
    """
    height, width = array.shape[-2:]
    top, left = row - size // 2, col - size // 2
    r0, r1 = max(top, 0), min(top + size, height)
    c0, c1 = max(left, 0), min(left + size, width)
    if r0 >= r1 or c0 >= c1:
        raise ValueError(f"window centred on ({row}, {col}) lies outside the {height}x{width} array")
    inner = np.asarray(array[..., r0:r1, c0:c1])
    pad = ((r0 - top, top + size - r1), (c0 - left, left + size - c1))
    if pad == ((0, 0), (0, 0)):
        return inner
    return np.pad(inner, [(0, 0)] * (array.ndim - 2) + list(pad), mode="edge")


def window_outside(shape: tuple[int, int], row: int, col: int, size: int) -> bool:
    """Whether a ``size × size`` window centred on ``(row, col)`` leaves an ``(H, W)`` array."""
    top, left = row - size // 2, col - size // 2
    return top < 0 or left < 0 or top + size > shape[0] or left + size > shape[1]


#: How :func:`cloud_cover` counts a pixel covered by both snow and cloud.
COVER_COUNTS = ("union", "sum")


def cloud_cover(masks: np.ndarray, prob_threshold: int = 60, count: str = "union") -> np.ndarray:
    """Share of a window's pixels covered by snow or cloud, per date.

    Args:
        masks: uint8 ``(T, 2, H, W)`` snow (channel 0) and cloud (channel 1) probabilities (0–100).
        prob_threshold: probability (0–100) at or above which a pixel counts as covered.
        count: ``"union"`` (flairlc: a pixel covered by snow and cloud counts once) or ``"sum"``
            (the official code: the snow share plus the cloud share, so such a pixel counts twice).

    Returns:
        float64 ``(T,)`` shares, in [0, 1] for ``"union"`` and in [0, 2] for ``"sum"``.
    """
    covered = masks >= prob_threshold  # (T, 2, H, W)
    if count == "union":
        covered_pixels = covered.any(axis=1)
        return covered_pixels.reshape(covered_pixels.shape[0], -1).mean(axis=1)
    if count == "sum":
        # Counts first, one division, as the official code: shares exactly at the threshold stay exact.
        pixels = covered.shape[2] * covered.shape[3]
        return np.count_nonzero(covered.reshape(covered.shape[0], -1), axis=1) / pixels
    raise ValueError(f"unknown cover count {count!r}: expected one of {COVER_COUNTS}")


def filter_cloudy_dates(
    masks: np.ndarray,
    max_cover: float = 0.5,
    prob_threshold: int = 60,
    count: str = "union",
    strict: bool = False,
) -> np.ndarray:
    """Indices of the dates to keep: those whose snow/cloud cover is small enough.

    The cover of a date is :func:`cloud_cover` (pixels with snow or cloud probability at or above
    ``prob_threshold``, counted as ``count`` says). A date is kept when its cover is at most
    ``max_cover`` (flairlc), or below it with ``strict`` (the official code: ``cover < 0.5``).
    Every date is never dropped: when all would be, the least covered date(s) are kept (the
    official code fails then).

    Args:
        masks: uint8 ``(T, 2, H, W)`` snow and cloud probabilities (0–100).
        max_cover: largest share of covered pixels a kept date may have.
        prob_threshold: probability (0–100) from which a pixel counts as covered.
        count: ``"union"`` or ``"sum"`` (see :func:`cloud_cover`).
        strict: keep ``cover < max_cover`` instead of ``cover <= max_cover``.

    Returns:
        int64 ``(T_kept,)`` sorted indices.
    """
    cover = cloud_cover(masks, prob_threshold, count)
    keep = np.flatnonzero(cover < max_cover if strict else cover <= max_cover)
    if keep.size == 0 and cover.size:
        keep = np.flatnonzero(cover == cover.min())
    return keep


def monthly_average(
    data: np.ndarray, dates: list[dt.date], precision: str = "float32"
) -> tuple[np.ndarray, list[dt.date]]:
    """Average a series per calendar month; each month is dated on its 15th.

    Args:
        data: ``(T, C, H, W)`` series (any numeric dtype).
        dates: the T acquisition dates.
        precision: ``"float32"``: one float32 product with the weights 1/n (the faster; within
            2 float32 ulps of the exact mean on uint16 reflectances); ``"float64"``: each month's
            ``np.mean`` in float64, then rounded to float32, as the official FLAIR-2 code
            (``monthly_image``) computes it: its numbers to the bit.

    Returns:
        float32 ``(M, C, H, W)`` means of the M months present, in chronological order, and their
        dates (the 15th of each month).

    Raises:
        ValueError: as many dates as time steps are needed; ``precision`` is one of the two.
    """
    if len(dates) != data.shape[0]:
        raise ValueError(f"{len(dates)} dates for a series of {data.shape[0]} time steps")
    if precision not in ("float32", "float64"):
        raise ValueError(f"unknown monthly mean precision {precision!r}: expected 'float32' or 'float64'")
    keys = np.asarray([d.year * 12 + d.month - 1 for d in dates])
    months, inverse = np.unique(keys, return_inverse=True)
    month_dates = [dt.date(int(k) // 12, int(k) % 12 + 1, 15) for k in months]
    if precision == "float64":
        means = np.empty((months.size,) + data.shape[1:], dtype=np.float32)
        for m in range(months.size):
            means[m] = np.mean(data[inverse == m], axis=0, dtype=np.float64)
        return means, month_dates
    weights = np.zeros((months.size, keys.size), dtype=np.float32)
    weights[inverse, np.arange(keys.size)] = 1.0
    weights /= weights.sum(axis=1, keepdims=True)
    flat = data.reshape(data.shape[0], -1).astype(np.float32, copy=False)
    means = (weights @ flat).reshape((months.size,) + data.shape[1:])
    return means, month_dates


@dataclass(frozen=True)
class PreprocessingProfile:
    """The rules of a named preprocessing profile (see ``docs/fidelity.md``).

    Attributes:
        name: ``"flairlc"`` or ``"paper"``.
        cover_count: how the cloud filter counts a pixel under snow and cloud (see
            :func:`cloud_cover`): ``"union"`` (once) or ``"sum"`` (twice, the official code).
        cover_strict: keep a date when its cover is below ``cloud_max_cover`` (True, the official
            code) rather than at most ``cloud_max_cover`` (False).
        date_sign: ``1``: offsets are date − reference; ``-1``: reference − date (the official
            code); see :func:`dates_to_days`.
        monthly_sentinel_scaling: Sentinel-2 input scaling of monthly means (an
            :class:`flairlc.inference.scaling.InputScaler` mode): ``"unit"`` (/ 65 535, as without
            averaging) or ``"raw"`` (reflectance ×10 000 as it is: the official code's float64
            means pass ``img_as_float`` unchanged).
        geo_encoding: encoding of the patch centroid in the metadata vector (see
            :func:`flairlc.data.metadata.encode_position`): ``"log"`` or ``"official"``.
        monthly_precision: how :func:`monthly_average` computes the means: ``"float32"`` (the
            faster) or ``"float64"`` (then float32: the official code's numbers to the bit).
    """

    name: str
    cover_count: str
    cover_strict: bool
    date_sign: int
    monthly_sentinel_scaling: str
    geo_encoding: str
    monthly_precision: str

    def sentinel_scaling(self, average_monthly: bool) -> str:
        """The Sentinel-2 scaling mode of a series, with or without the monthly average."""
        return self.monthly_sentinel_scaling if average_monthly else "unit"


#: The preprocessing profiles by name.
PROFILES: dict[str, PreprocessingProfile] = {
    "flairlc": PreprocessingProfile(
        "flairlc", cover_count="union", cover_strict=False, date_sign=1,
        monthly_sentinel_scaling="unit", geo_encoding="log", monthly_precision="float32",
    ),
    "paper": PreprocessingProfile(
        "paper", cover_count="sum", cover_strict=True, date_sign=-1,
        monthly_sentinel_scaling="raw", geo_encoding="official", monthly_precision="float64",
    ),
}
#: The profile of flairlc runs, and of checkpoints saved before profiles existed.
DEFAULT_PROFILE = "flairlc"


def get_profile(name: str) -> PreprocessingProfile:
    """The preprocessing profile called ``name``.

    Raises:
        ValueError: naming the known profiles, when there is none of that name.
    """
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preprocessing profile {name!r}: expected one of {sorted(PROFILES)}") from None


@dataclass(frozen=True)
class SeriesPreprocessing:
    """How a Sentinel-2 window (and the aerial metadata) becomes a model input.

    Attributes:
        filter_clouds: drop dates whose window is covered by cloud or snow.
        cloud_max_cover: share of covered pixels above which a date is dropped.
        cloud_prob_threshold: probability (0–100) at or above which a pixel is covered.
        average_monthly: average the kept dates per calendar month (dated on the 15th).
        reference_date: origin of the day offsets.
        profile: name of the :class:`PreprocessingProfile` (``"flairlc"`` or ``"paper"``): how the
            filter counts cover, the sign of the day offsets, the Sentinel-2 scaling and the
            centroid encoding of the metadata.

    Raises:
        ValueError: on an unknown profile.
    """

    filter_clouds: bool = False
    cloud_max_cover: float = 0.5
    cloud_prob_threshold: int = 60
    average_monthly: bool = False
    reference_date: dt.date = REFERENCE_DATE
    profile: str = DEFAULT_PROFILE

    def __post_init__(self) -> None:
        get_profile(self.profile)

    @property
    def rules(self) -> PreprocessingProfile:
        """The rules of the profile."""
        return get_profile(self.profile)

    @property
    def sentinel_scaling(self) -> str:
        """The Sentinel-2 input scaling mode the profile gives these series (``"unit"``, ``"raw"``)."""
        return self.rules.sentinel_scaling(self.average_monthly)

    @property
    def geo_encoding(self) -> str:
        """The centroid encoding of the metadata vector (``"log"`` or ``"official"``)."""
        return self.rules.geo_encoding

    def apply(
        self, data: np.ndarray, masks: np.ndarray | None, dates: list[dt.date]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Preprocess one window.

        Args:
            data: ``(T, 10, S, S)`` reflectance ×10 000.
            masks: uint8 ``(T, 2, S, S)`` snow and cloud probabilities, or None (no filtering).
            dates: the T acquisition dates.

        Returns:
            float32 ``(T', 10, S, S)`` series (reflectance ×10 000; the model's scaler divides)
            and int64 ``(T',)`` day offsets, signed as the profile says.
        """
        series, dates = self.select(data, masks, dates)
        return series, dates_to_days(dates, self.reference_date, self.rules.date_sign)

    def select(
        self, data: np.ndarray, masks: np.ndarray | None, dates: list[dt.date]
    ) -> tuple[np.ndarray, list[dt.date]]:
        """The dates of one window that the model reads: the cloud filter, then the monthly means.

        :meth:`apply` without the day offsets, for a dataset that counts days its own way
        (FLAIR-HUB: from the reference day of each acquisition's year).

        Args:
            data: ``(T, C, S, S)`` series (any numeric dtype).
            masks: uint8 ``(T, 2, S, S)`` snow and cloud probabilities, or None (no filtering).
            dates: the T acquisition dates.

        Returns:
            float32 ``(T', C, S, S)`` series and its T' dates: the kept acquisitions, or the 15th
            of each month averaged.
        """
        rules = self.rules
        if self.filter_clouds and masks is not None:
            keep = filter_cloudy_dates(
                masks, self.cloud_max_cover, self.cloud_prob_threshold, rules.cover_count, rules.cover_strict
            )
            series, dates = take_dates_float32(data, keep), [dates[i] for i in keep]
        else:
            series = np.asarray(data, dtype=np.float32)
        if self.average_monthly:
            series, dates = monthly_average(series, dates, rules.monthly_precision)
        return series, list(dates)


def take_dates_float32(data: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Some dates of a series, converted to float32 in one copy.

    ``data[keep].astype(np.float32)`` makes a copy in the input's dtype first; here each kept
    date is converted straight from ``data`` (a memory map's window) into the output.

    Args:
        data: ``(T, C, H, W)`` series (any numeric dtype).
        keep: indices of the dates to keep, ``(T_kept,)``.

    Returns:
        float32 ``(T_kept, C, H, W)``.
    """
    out = np.empty((len(keep),) + data.shape[1:], dtype=np.float32)
    for i, t in enumerate(keep):
        out[i] = data[t]
    return out


def _load_npy(path: Path, ndim: int, channels: int) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise FlairDataError(path, f"cannot read as a .npy array ({error})") from None
    if array.ndim != ndim or array.shape[1] != channels:
        raise FlairDataError(
            path, f"expected a {ndim}-D array with {channels} channels on axis 1, got shape {array.shape}"
        )
    return array
