"""Opening, checking and aligning the rasters a map is made from.

The aerial image defines the output grid. It must be a uint8 GeoTIFF/VRT with a CRS, at 0.2 m,
holding the bands the model reads (:mod:`flairlc.data.bands`): by default a 3-band raster is
R, G, B, a 4-band one R, G, B, NIR and a 5-band one R, G, B, NIR, elevation (``raster_bands``
says otherwise); elevation may come from a separate raster. Other resolutions are resampled on the fly onto a 0.2 m grid (a ``WarpedVRT``) or refused.
The elevation raster and the Sentinel-2 series are read by coordinates, so their grids need not
match the aerial one; their resolution must still be the expected one (0.2 m, 10 m) or is
resampled with a warning, or refused, by the same ``resolution_policy``. Whether they cover the
aerial image is decided by ``coverage_policy`` (:mod:`flairlc.mapping.coverage`).
"""

from __future__ import annotations

import datetime
import math
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import rasterio
import rasterio.windows
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.windows import Window

from flairlc.data.bands import AERIAL_BANDS, normalize_bands
from flairlc.mapping.coverage import Extent, check_policy, covered_part, pixel_size
from flairlc.mapping.errors import MappingInputError

#: Ground sampling distance of FLAIR aerial images, metres.
AERIAL_PIXEL_SIZE_M = 0.2
#: Number of Sentinel-2 bands expected per date (B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12).
SENTINEL_BANDS = 10
#: Sentinel-2 pixel size the models were trained on, metres.
SENTINEL_PIXEL_SIZE_M = 10.0
#: The bands of an aerial raster by band count, unless named otherwise.
DEFAULT_RASTER_BANDS: dict[int, tuple[str, ...]] = {3: AERIAL_BANDS[:3], 4: AERIAL_BANDS[:4], 5: AERIAL_BANDS}
#: Resolution policies: resample other resolutions with a warning, or refuse them.
RESOLUTION_POLICIES = ("resample", "error")

__all__ = ["AERIAL_PIXEL_SIZE_M", "AerialSource", "MappingInputError", "SentinelSeries", "edge_read"]


def _resolution_ok(ds, path: Path, what: str, expected_m: float, policy: str, resampled_to: str) -> bool:
    """Whether ``ds`` has ``expected_m`` pixels; if not, warn (``"resample"``) or refuse (``"error"``).

    ``resampled_to`` completes the warning ("resampling on the fly to …"). Rasters in a
    geographic CRS are not judged here (they are reprojected to metres anyway).
    """
    if ds.crs is not None and ds.crs.is_geographic:
        return True
    res_x, res_y = abs(ds.transform.a), abs(ds.transform.e)
    if math.isclose(res_x, expected_m, rel_tol=1e-3) and math.isclose(res_y, expected_m, rel_tol=1e-3):
        return True
    found = f"{what} {path} has {res_x:g} x {res_y:g} m pixels"
    if policy == "error":
        raise MappingInputError(
            f"{found}, expected {expected_m:g} m (pass --resolution-policy resample to resample it on the fly)"
        )
    warnings.warn(f"{found}: resampling on the fly to {resampled_to}", stacklevel=4)
    return False


def _same_grid(a: rasterio.io.DatasetReader | WarpedVRT, crs, transform: Affine, shape) -> bool:
    return a.crs == crs and a.transform.almost_equals(transform) and (a.height, a.width) == shape


class AerialSource:
    """The aerial image (+ elevation) on the 0.2 m output grid, read by windows.

    Args:
        aerial_path: GeoTIFF or VRT, uint8, holding (at least) the bands the model reads.
        elevation_path: single-band uint8 raster of normalized height; required when the model
            reads elevation and the aerial image has none; replaces the image's when given.
        resolution_policy: ``"resample"`` (warn and warp onto a 0.2 m grid) or ``"error"``; for
            the aerial image and the elevation raster alike.
        expected_resolution_m: expected pixel size in metres.
        coverage_policy: what an elevation raster that covers only part of the aerial image
            does: ``"error"`` or ``"warn"`` (:mod:`flairlc.mapping.coverage`).
        bands: the bands the model reads (default all 5).
        raster_bands: the bands of the aerial image, in its band order (default by band count:
            3 → R, G, B; 4 → R, G, B, NIR; 5 → R, G, B, NIR, elevation).
        region: map only this pixel window of the image (its grid becomes the output grid); the
            elevation is still resampled onto the whole image's grid, so that a region reads
            exactly the values the whole image would.

    Attributes:
        crs, transform, height, width: the output grid (the aerial file's own grid, or its
            region, unless it was resampled).
        extent: the aerial extent (:class:`~flairlc.mapping.coverage.Extent`).
        coverage: the part of it every input covers, or None when they cover it all.
    """

    def __init__(
        self,
        aerial_path: str | Path,
        elevation_path: str | Path | None = None,
        resolution_policy: str = "resample",
        expected_resolution_m: float = AERIAL_PIXEL_SIZE_M,
        coverage_policy: str = "error",
        bands: Sequence[str] = AERIAL_BANDS,
        raster_bands: Sequence[str] | str | None = None,
        region: Window | None = None,
    ) -> None:
        if resolution_policy not in RESOLUTION_POLICIES:
            raise ValueError(f"resolution_policy must be one of {RESOLUTION_POLICIES}, not {resolution_policy!r}")
        self.aerial_path = Path(aerial_path)
        self.resolution_policy = resolution_policy
        self.coverage_policy = check_policy(coverage_policy)
        self.coverage: Extent | None = None
        self._cover_px: tuple[int, int, int, int] | None = None
        self._stack = ExitStack()
        # The mapper reads windows in a background thread while it checks strips' validity in
        # its own: GDAL handles are not thread-safe, so reads take turns.
        self._lock = threading.RLock()
        self.bands = normalize_bands(bands)
        self._raster_bands = raster_bands
        self._region = region
        try:
            self._open(elevation_path, resolution_policy, expected_resolution_m)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, elevation_path, resolution_policy: str, expected_m: float) -> None:
        path = self.aerial_path
        if not path.exists():
            raise MappingInputError(f"aerial image {path} does not exist")
        src = self._stack.enter_context(rasterio.open(path))
        if src.crs is None:
            raise MappingInputError(f"aerial image {path} has no CRS: georeference it first")
        self.raster_bands = self._band_names(path, src.count)
        # GDAL flags the 4th band of a 4-band RGB GeoTIFF as alpha, and would mask pixels whose
        # NIR is 0. Every band here is data: only the nodata value (if any) marks nodata then.
        self._alpha_is_data = ColorInterp.alpha in src.colorinterp
        if any(dt != "uint8" for dt in src.dtypes):
            raise MappingInputError(f"aerial image {path} has dtypes {src.dtypes}: expected uint8")
        if elevation_path is not None and "elevation" not in self.bands:
            warnings.warn(f"the model does not read elevation: ignoring {elevation_path}", stacklevel=4)
            elevation_path = None
        available = set(self.raster_bands) | ({"elevation"} if elevation_path is not None else set())
        missing = [b for b in self.bands if b not in available]
        if missing:
            hint = " (pass the elevation raster: --elevation ELEV.tif)" if missing == ["elevation"] else ""
            raise MappingInputError(
                f"the model reads bands {list(self.bands)} but aerial image {path} holds "
                f"{list(self.raster_bands)}: {missing} missing{hint}; if its bands are in another "
                "order or hold others, say which (--aerial-bands, e.g. NIR,R,G)"
            )
        if src.transform.b != 0 or src.transform.d != 0:
            raise MappingInputError(f"aerial image {path} has a rotated geotransform: not supported")
        if src.crs.is_geographic:
            raise MappingInputError(
                f"aerial image {path} is in a geographic CRS ({src.crs.to_string()}): reproject it to a "
                "projected CRS in metres (e.g. Lambert-93, EPSG:2154) first"
            )
        self.resampled = False
        left, bottom, right, top = src.bounds
        width = max(1, round((right - left) / expected_m))
        height = max(1, round((top - bottom) / expected_m))
        if not _resolution_ok(src, path, "aerial image", expected_m, resolution_policy,
                              f"{expected_m:g} m ({width} x {height} px, bilinear)"):
            target = Affine(expected_m, 0.0, left, 0.0, -expected_m, top)
            src = self._stack.enter_context(
                WarpedVRT(src, crs=src.crs, transform=target, width=width, height=height,
                          resampling=Resampling.bilinear)
            )
            self.resampled = True
        self._src = src
        self.crs = src.crs
        #: The whole image's grid: the elevation is resampled onto it, whatever the region.
        self._full_grid = (src.transform, src.height, src.width)
        self.transform: Affine = src.transform
        self.height: int = src.height
        self.width: int = src.width
        self._offset = (0, 0)
        region = self._region
        if region is not None:
            col, row, width, height = (int(v) for v in (region.col_off, region.row_off, region.width, region.height))
            if col < 0 or row < 0 or width < 1 or height < 1 or col + width > src.width or row + height > src.height:
                raise MappingInputError(f"region {(col, row, width, height)} is not inside aerial image {path} "
                                        f"({src.width} x {src.height} px)")
            self._offset = (col, row)
            self.transform = src.window_transform(Window(col, row, width, height))
            self.height, self.width = height, width
        self.extent = Extent(*rasterio.windows.bounds(Window(*self._offset, self.width, self.height), src.transform),
                             src.crs)
        self._elev = None
        #: The elevation raster as opened, when it masks some pixels (a mosaic with missing tiles).
        self._elev_masked = None
        if elevation_path is not None:
            self._elev = self._open_elevation(Path(elevation_path), expected_m)

    def _open_elevation(self, path: Path, expected_m: float):
        if not path.exists():
            raise MappingInputError(f"elevation raster {path} does not exist")
        elev = self._stack.enter_context(rasterio.open(path))
        if elev.count != 1 or elev.dtypes[0] != "uint8":
            raise MappingInputError(
                f"elevation raster {path} has {elev.count} band(s) of {elev.dtypes[0]}: expected 1 uint8 band"
            )
        if elev.crs is None:
            raise MappingInputError(f"elevation raster {path} has no CRS")
        try:
            part = covered_part("elevation raster", path, Extent(*elev.bounds, elev.crs), self.extent,
                                self.aerial_path, 2 * pixel_size(elev.transform), self.coverage_policy)
        except MappingInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any PROJ failure means "cannot align"
            raise MappingInputError(f"elevation raster {path}: cannot reproject {elev.crs} to {self.crs}: {exc}") from exc
        self.restrict_to(part)
        if elev.crs == self.crs and MaskFlags.all_valid not in elev.mask_flag_enums[0]:
            self._elev_masked = elev
        _resolution_ok(elev, path, "elevation raster", expected_m, self.resolution_policy,
                       f"the {self.transform.a:g} m aerial grid (bilinear)")
        transform, height, width = self._full_grid
        if _same_grid(elev, self.crs, transform, (height, width)):
            return elev
        return self._stack.enter_context(
            WarpedVRT(elev, crs=self.crs, transform=transform, width=width, height=height,
                      resampling=Resampling.bilinear)
        )

    def _band_names(self, path: Path, count: int) -> tuple[str, ...]:
        """The aerial image's band names: given, or by band count."""
        if self._raster_bands is not None:
            try:
                names = normalize_bands(self._raster_bands)
            except ValueError as error:
                raise MappingInputError(f"aerial bands of {path}: {error}") from None
            if len(names) != count:
                raise MappingInputError(f"aerial image {path} has {count} bands but {len(names)} are named: {list(names)}")
            return names
        if count not in DEFAULT_RASTER_BANDS:
            raise MappingInputError(
                f"aerial image {path} has {count} bands: expected 3 (R, G, B), 4 (R, G, B, NIR) or 5 "
                "(R, G, B, NIR, elevation), or name its bands (--aerial-bands)"
            )
        return DEFAULT_RASTER_BANDS[count]

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read a window (inside the grid) of the image in FLAIR's 5-band layout, and its validity.

        Returns:
            ``aerial`` uint8 ``(5, h, w)`` (R, G, B, NIR, elevation; bands the model does not
            read are 0) and ``valid`` bool ``(h, w)``, False where all spectral bands are nodata
            (nodata value, mask or alpha).
        """
        with self._lock:
            return self._read(window)

    def _read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        valid = self._valid(window)
        height, width = int(window.height), int(window.width)
        window = self._in_image(window)
        aerial = np.zeros((len(AERIAL_BANDS), height, width), dtype=np.uint8)
        from_raster = [b for b in self.bands if not (b == "elevation" and self._elev is not None)]
        if from_raster:
            indexes = [self.raster_bands.index(b) + 1 for b in from_raster]
            data = self._src.read(indexes, window=window)
            for band, plane in zip(from_raster, data):
                aerial[AERIAL_BANDS.index(band)] = plane
        if self._elev is not None:
            aerial[AERIAL_BANDS.index("elevation")] = self._elev.read(1, window=window)
        return aerial, valid

    def valid(self, window: Window) -> np.ndarray:
        """bool ``(h, w)``: False where all spectral bands of the aerial image are nodata, where the
        elevation raster (when the model reads it and it masks pixels, e.g. a mosaic with a tile
        missing) has none, or outside the part of the image that every input covers
        (:attr:`coverage`)."""
        with self._lock:
            return self._valid(window)

    def _valid(self, window: Window) -> np.ndarray:
        spectral = [i + 1 for i, b in enumerate(self.raster_bands) if b != "elevation"] or [1]
        if self._alpha_is_data:
            nodata = self._src.nodata
            shape = (int(window.height), int(window.width))
            valid = (np.ones(shape, dtype=bool) if nodata is None
                     else (self._src.read(spectral, window=self._in_image(window)) != nodata).any(axis=0))
        else:
            valid = self._src.read_masks(spectral, window=self._in_image(window)).any(axis=0)
        if self._elev_masked is not None and "elevation" in self.bands:
            valid &= self._elevation_valid(window)
        if self._cover_px is not None:
            r0, r1, c0, c1 = self._cover_px
            rows = np.arange(window.row_off, window.row_off + window.height)
            cols = np.arange(window.col_off, window.col_off + window.width)
            valid &= ((rows >= r0) & (rows < r1))[:, None] & ((cols >= c0) & (cols < c1))[None, :]
        return valid

    def _in_image(self, window: Window) -> Window:
        """A window of the region in the whole image's pixels."""
        if self._offset == (0, 0):
            return window
        return Window(window.col_off + self._offset[0], window.row_off + self._offset[1], window.width, window.height)

    def _elevation_valid(self, window: Window) -> np.ndarray:
        """bool ``(h, w)``: where the elevation raster has data (its mask, nearest pixel)."""
        elev = self._elev_masked
        shape = (int(window.height), int(window.width))
        if elev is self._elev:  # same grid
            return elev.read_masks(1, window=self._in_image(window)) > 0
        left, bottom, right, top = rasterio.windows.bounds(window, self.transform)
        source_window = rasterio.windows.from_bounds(left, bottom, right, top, elev.transform)
        return elev.read_masks(1, window=source_window, out_shape=shape, boundless=True,
                               resampling=Resampling.nearest) > 0

    def restrict_to(self, part: Extent | None) -> None:
        """Map only ``part`` (aerial CRS) of the extent: pixels outside it become nodata."""
        if part is None:
            return
        common = part if self.coverage is None else self.coverage.intersection(part)
        if common is None:
            raise MappingInputError(
                f"the inputs cover parts of the aerial image {self.aerial_path} that do not overlap: nothing to map"
            )
        self.coverage = common
        inverse = ~self.transform
        cols, rows = zip(*(inverse @ (x, y) for x in (common.left, common.right) for y in (common.bottom, common.top)))
        self._cover_px = (max(0, round(min(rows))), min(self.height, round(max(rows))),
                          max(0, round(min(cols))), min(self.width, round(max(cols))))

    def close(self) -> None:
        """Close every file opened."""
        self._stack.close()

    def __enter__(self) -> AerialSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def edge_read(ds, row0: int, col0: int, size_rows: int, size_cols: int) -> np.ndarray:
    """Read ``(count, size_rows, size_cols)`` at pixel offset ``(row0, col0)``, repeating edges.

    Pixels outside the raster take the value of the nearest edge pixel, as the dataset's
    :func:`flairlc.data.sentinel.window_slice` does for a window past a super-area's edge (the
    two agree exactly wherever that one is defined). Only the part inside the raster is read.
    Works on ``WarpedVRT`` too.
    """
    r0 = min(max(row0, 0), ds.height - 1)
    c0 = min(max(col0, 0), ds.width - 1)
    r1 = max(min(row0 + size_rows, ds.height), r0 + 1)
    c1 = max(min(col0 + size_cols, ds.width), c0 + 1)
    inner = ds.read(window=Window(c0, r0, c1 - c0, r1 - r0))
    rows = np.clip(np.arange(row0, row0 + size_rows), r0, r1 - 1) - r0
    cols = np.clip(np.arange(col0, col0 + size_cols), c0, c1 - 1) - c0
    return inner[:, rows[:, None], cols[None, :]]


@contextmanager
def _grouped_warnings(what: str) -> Iterator[None]:
    """Re-emit the warnings of a block once per kind, not once per file (a series has many)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    groups: dict[tuple, list[warnings.WarningMessage]] = {}
    for w in caught:
        key = (w.category, re.sub(r"\S+\.tif|masks ", "", str(w.message)))
        groups.setdefault(key, []).append(w)
    for (category, _), items in groups.items():
        more = f" (and {len(items) - 1} other {what} alike)" if len(items) > 1 else ""
        warnings.warn(f"{items[0].message}{more}", category, stacklevel=4)


def _sentinel_helpers():
    # Imported lazily: the date helpers live in flairlc.data.sentinel (owned by the data stage).
    from flairlc.data.sentinel import dates_to_days, product_date

    return product_date, dates_to_days


class SentinelSeries:
    """A Sentinel-2 series folder (one 10-band GeoTIFF per date), read by coordinates.

    Layout (see ``docs/architecture.md``): ``{product_name}.tif`` per date, 10 bands uint16
    reflectance x 10 000 at 10 m; ``{product_name}_masks.tif`` (2 bands uint8, 0–100: band 1 snow
    probability, band 2 cloud probability, the channel order of FLAIR's ``_masks.npy``) when every
    date has one, for the cloud filter. Dates are parsed from the product names and sorted.
    ``dates_days`` are date − reference; the mapper takes the offsets it feeds a model from the
    model's :class:`~flairlc.data.sentinel.SeriesPreprocessing` instead (its profile's sign).

    Every file must have 10 m pixels (else resampled to 10 m with a warning, or refused, per
    ``resolution_policy``); files in another CRS are reprojected onto a 10 m grid in ``crs``.
    With ``aerial``, each file's coverage of the aerial extent is judged by ``coverage_policy``
    (:mod:`flairlc.mapping.coverage`), and :attr:`coverage` is the part every file covers.

    Args:
        folder: the series folder.
        crs: CRS of the aerial grid (the window centres are given in it).
        reference_date: date the day offsets count from.
        aerial: the aerial extent to map (none: coverage is not checked).
        aerial_path: the aerial image, for messages.
        coverage_policy: ``"error"`` or ``"warn"``.
        resolution_policy: ``"resample"`` or ``"error"``.
        need_masks: the model filters cloudy dates: a date without ``_masks.tif`` is an error
            (``coverage_policy="error"``) or a warning, and the filter is then skipped.
    """

    def __init__(self, folder: str | Path, crs, reference_date: datetime.date, *,
                 aerial: Extent | None = None, aerial_path: str | Path | None = None,
                 coverage_policy: str = "error", resolution_policy: str = "resample",
                 need_masks: bool = False) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MappingInputError(f"Sentinel-2 folder {self.folder} does not exist")
        product_date, dates_to_days = _sentinel_helpers()
        files = [p for p in self.folder.glob("*.tif") if not p.stem.endswith("_masks")]
        if not files:
            raise MappingInputError(f"Sentinel-2 folder {self.folder} holds no {{product}}.tif file")
        dated = []
        for p in files:
            try:
                dated.append((product_date(p.stem), p))
            except Exception as exc:  # noqa: BLE001
                raise MappingInputError(f"Sentinel-2 file {p}: cannot read a date from its name ({exc})") from exc
        dated.sort()
        self.dates = [d for d, _ in dated]
        self.paths = [p for _, p in dated]
        self.dates_days = np.asarray(dates_to_days(self.dates, reference_date), dtype=np.int64)
        self.crs = crs
        self.coverage: Extent | None = None
        self._checks = (Path(aerial_path) if aerial_path else None, aerial, check_policy(coverage_policy),
                        resolution_policy)
        self._stack = ExitStack()
        try:
            with _grouped_warnings("Sentinel-2 files"):
                self._ds = [self._open(p, "Sentinel-2 file", SENTINEL_BANDS, Resampling.bilinear) for p in self.paths]
                self._mask_ds = self._open_masks(need_masks, coverage_policy)
        except BaseException:
            self._stack.close()
            raise

    def _open(self, path: Path, what: str, count: int, resampling: Resampling):
        """Open one file of the series, check it, and put it on a 10 m grid in the aerial CRS."""
        aerial_path, aerial, coverage_policy, resolution_policy = self._checks
        ds = self._stack.enter_context(rasterio.open(path))
        if ds.count != count:
            raise MappingInputError(f"{what} {path} has {ds.count} bands, expected {count}")
        if ds.crs is None:
            raise MappingInputError(f"{what} {path} has no CRS")
        if aerial is not None:
            part = covered_part(what, path, Extent(*ds.bounds, ds.crs), aerial, aerial_path,
                                pixel_size(ds.transform), coverage_policy)
            if part is not None:
                self.coverage = part if self.coverage is None else self.coverage.intersection(part)
                if self.coverage is None:
                    raise MappingInputError(
                        f"the Sentinel-2 files of {self.folder} cover parts of the aerial image "
                        f"{aerial_path} that do not overlap: nothing to map"
                    )
        on_grid = _resolution_ok(ds, path, what, SENTINEL_PIXEL_SIZE_M, resolution_policy,
                                 f"{SENTINEL_PIXEL_SIZE_M:g} m ({resampling.name})")
        if on_grid and ds.crs == self.crs:
            return ds
        transform, width, height = calculate_default_transform(
            ds.crs, self.crs, ds.width, ds.height, *ds.bounds, resolution=SENTINEL_PIXEL_SIZE_M
        )
        return self._stack.enter_context(
            WarpedVRT(ds, crs=self.crs, transform=transform, width=width, height=height, resampling=resampling)
        )

    def _open_masks(self, need_masks: bool, coverage_policy: str) -> list | None:
        """The ``_masks.tif`` files when every date has one; else None (an error when needed)."""
        mask_paths = [p.with_name(p.stem + "_masks.tif") for p in self.paths]
        missing = [m for m in mask_paths if not m.is_file()]
        if not missing:
            return [self._open(m, "Sentinel-2 masks file", 2, Resampling.nearest) for m in mask_paths]
        if need_masks:
            problem = (
                f"the model was trained with the cloud filter, but {len(missing)} of the {len(mask_paths)} "
                f"dates in {self.folder} have no {{product}}_masks.tif (first: {missing[0].name})"
            )
            if coverage_policy == "error":
                raise MappingInputError(
                    f"{problem}; add them, or pass --coverage-policy warn to map without the filter"
                )
            warnings.warn(f"{problem}: mapping without the cloud filter (all {len(mask_paths)} dates)",
                          stacklevel=4)
        return None

    def read_window(self, x: float, y: float, size: int) -> np.ndarray:
        """The ``size x size`` window of every date centred on the point ``(x, y)`` (aerial CRS).

        The pixel containing the point is at index ``size // 2`` of the window; parts outside a
        file repeat its edge pixels (:func:`edge_read`), as the dataset does.

        Returns:
            float32 ``(T, 10, size, size)``, reflectance x 10 000.
        """
        out = np.empty((len(self._ds), SENTINEL_BANDS, size, size), dtype=np.float32)
        for t, ds in enumerate(self._ds):
            row, col = ds.index(x, y)
            out[t] = edge_read(ds, row - size // 2, col - size // 2, size, size)
        return out

    def read_masks_window(self, x: float, y: float, size: int) -> np.ndarray | None:
        """Snow and cloud probabilities ``(T, 2, size, size)`` (uint8) of the same window, or None.

        Channel 0 is snow, channel 1 cloud (bands 1 and 2 of the ``{product_name}_masks.tif``
        files); None when any date has no such file.
        """
        if self._mask_ds is None:
            return None
        out = np.empty((len(self._mask_ds), 2, size, size), dtype=np.uint8)
        for t, ds in enumerate(self._mask_ds):
            row, col = ds.index(x, y)
            out[t] = edge_read(ds, row - size // 2, col - size // 2, size, size)
        return out

    def close(self) -> None:
        """Close every file opened."""
        self._stack.close()

