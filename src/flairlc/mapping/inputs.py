"""Opening, checking and aligning the rasters a map is made from.

The aerial image defines the output grid. It must be a uint8 GeoTIFF/VRT with a CRS, at 0.2 m,
holding the bands the model reads (:mod:`flairlc.data.bands`): by default a 3-band raster is
R, G, B, a 4-band one R, G, B, NIR and a 5-band one R, G, B, NIR, elevation (``raster_bands``
says otherwise); elevation may come from a separate raster: a 1-band elevation in digital numbers,
or a DSM/DTM raster in metres from which it is computed (:mod:`flairlc.mapping.dem`). Other
resolutions are resampled on the fly onto a 0.2 m grid (a ``WarpedVRT``) or refused.
The elevation (or DSM/DTM) raster and the Sentinel-2 series are read by coordinates, so their grids need not
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
from flairlc.map_options import RESOLUTION_POLICIES
from flairlc.mapping.coverage import Extent, check_policy, covered_part, pixel_size
from flairlc.mapping.dem import dem_band_indexes, elevation_from_dem
from flairlc.mapping.errors import MappingInputError, MappingReadError
from flairlc.mapping.read_errors import gdal_cause, read_error

#: Ground sampling distance of FLAIR aerial images, metres.
AERIAL_PIXEL_SIZE_M = 0.2
#: Number of Sentinel-2 bands expected per date (B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12).
SENTINEL_BANDS = 10
#: Sentinel-2 pixel size the models were trained on, metres.
SENTINEL_PIXEL_SIZE_M = 10.0
#: The bands of an aerial raster by band count, unless named otherwise.
DEFAULT_RASTER_BANDS: dict[int, tuple[str, ...]] = {3: AERIAL_BANDS[:3], 4: AERIAL_BANDS[:4], 5: AERIAL_BANDS}
#: Pixels of the output grid around a failed window searched for the VRT member at fault (a
#: ``WarpedVRT`` reads blocks of 512 px by default: a failing block may lie that far away).
WARP_BLOCK_SEARCH_PX = 1024

__all__ = ["AERIAL_PIXEL_SIZE_M", "AerialSource", "MappingInputError", "MappingReadError", "SentinelSeries", "edge_read"]


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


class _ThreadHandles:
    """Dataset handles opened once per thread: GDAL handles are not thread-safe, so each reader
    thread of the mapper reads through its own (:mod:`flairlc.mapping.pipeline`).

    ``open_handles(stack)`` opens one set, entering every file into ``stack``; the thread that
    built the object gets ``first`` (the handles its checks opened). A reader thread closes its
    own with :meth:`release` when it ends; :meth:`close` closes all that remain.
    """

    def __init__(self, open_handles, first) -> None:
        self._open_handles = open_handles
        self._local = threading.local()
        self._local.handles = first
        self._stacks: list[ExitStack] = []
        self._lock = threading.Lock()

    def get(self):
        handles = getattr(self._local, "handles", None)
        if handles is None:
            stack = ExitStack()
            with self._lock:
                self._stacks.append(stack)
            self._local.stack = stack
            handles = self._local.handles = self._open_handles(stack)
        return handles

    def release(self) -> None:
        """Close the calling thread's handles, if it opened some (not the first set)."""
        stack = getattr(self._local, "stack", None)
        if stack is None:
            return
        with self._lock:
            if stack in self._stacks:
                self._stacks.remove(stack)
        self._local.stack = self._local.handles = None
        stack.close()

    def close(self) -> None:
        with self._lock:
            stacks, self._stacks = self._stacks, []
        for stack in reversed(stacks):
            stack.close()


class AerialSource:
    """The aerial image (+ elevation) on the 0.2 m output grid, read by windows.

    Args:
        aerial_path: GeoTIFF or VRT, uint8, holding (at least) the bands the model reads.
        elevation_path: single-band uint8 raster of normalized height; required when the model
            reads elevation and the aerial image has none (unless ``dem_path`` gives it);
            replaces the image's when given.
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
        dem_path: instead of ``elevation_path``: a 2-band DSM/DTM raster in metres (FLAIR-HUB's
            ``DEM_ELEV``, or a VRT of a DSM and a DTM), from which the elevation band is computed
            window by window as FLAIR-HUB's data path does (:mod:`flairlc.mapping.dem`); read by
            coordinates, resampled (bilinear) and checked like ``elevation_path``.

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
        dem_path: str | Path | None = None,
    ) -> None:
        if resolution_policy not in RESOLUTION_POLICIES:
            raise ValueError(f"resolution_policy must be one of {RESOLUTION_POLICIES}, not {resolution_policy!r}")
        self.aerial_path = Path(aerial_path)
        self.resolution_policy = resolution_policy
        self.coverage_policy = check_policy(coverage_policy)
        self.coverage: Extent | None = None
        self._cover_px: tuple[int, int, int, int] | None = None
        self._stack = ExitStack()
        self.bands = normalize_bands(bands)
        self._raster_bands = raster_bands
        self._region = region
        #: How to open the files again in another thread: the warps, the elevation's path.
        self._aerial_warp: dict | None = None
        self._elev_path: Path | None = None
        self._elev_warp: dict | None = None
        #: The elevation raster's bands read: [1] (elevation), or the DSM's and the DTM's (a DEM).
        self._elev_bands: list[int] = [1]
        self._elev_is_dem = dem_path is not None
        try:
            if elevation_path is not None and dem_path is not None:
                raise MappingInputError(
                    f"the elevation is given twice, as {elevation_path} (--elevation) and as DSM/DTM {dem_path} "
                    "(--dem): pass one of them")
            self._open(elevation_path if dem_path is None else dem_path, resolution_policy, expected_resolution_m)
        except BaseException:
            self._stack.close()
            raise
        # Each reading thread reads through its own handles (GDAL's are not thread-safe).
        self._handles = _ThreadHandles(self._reopen, (self._src, self._elev, self._elev_masked))
        spectral = self._spectral_indexes()
        #: No pixel of the spectral bands is masked (no nodata, mask or alpha): no mask to read.
        self._all_valid = not self._alpha_is_data and all(
            MaskFlags.all_valid in self._src.mask_flag_enums[i - 1] for i in spectral)

    def _open(self, elevation_path, resolution_policy: str, expected_m: float) -> None:
        path = self.aerial_path
        if not path.exists():
            raise MappingInputError(f"aerial image {path} does not exist")
        src = self._stack.enter_context(rasterio.open(path))
        if src.crs is None:
            raise MappingInputError(f"aerial image {path} has no CRS: georeference it first")
        self.raster_bands = self._band_names(path, src.count)
        #: The aerial pixels are JPEG2000 (a .jp2, or a VRT over .jp2 tiles): fewer reader
        #: threads, more decoder threads each (:func:`~flairlc.mapping.pipeline.default_read_threads`).
        self.decodes_jpeg2000 = src.driver.startswith("JP2") or any(f.lower().endswith(".jp2") for f in src.files)
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
            hint = (" (pass the elevation raster, --elevation ELEV.tif, or the DSM/DTM raster, --dem DEM.tif)"
                    if missing == ["elevation"] else "")
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
            self._aerial_warp = dict(crs=src.crs, transform=target, width=width, height=height,
                                     resampling=Resampling.bilinear)
            src = self._stack.enter_context(WarpedVRT(src, **self._aerial_warp))
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
        """Open and check the elevation raster (or the DEM), put it on the whole image's grid."""
        what = "DEM raster" if self._elev_is_dem else "elevation raster"
        if not path.exists():
            raise MappingInputError(f"{what} {path} does not exist")
        elev = self._stack.enter_context(rasterio.open(path))
        if self._elev_is_dem:
            self._elev_bands = dem_band_indexes(path, elev.count, elev.dtypes, elev.descriptions)
        elif elev.count != 1 or elev.dtypes[0] != "uint8":
            raise MappingInputError(
                f"elevation raster {path} has {elev.count} band(s) of {elev.dtypes[0]}: expected 1 uint8 band"
                + (" (DSM and DTM in metres: --dem)" if elev.count == 2 else "")
            )
        if elev.crs is None:
            raise MappingInputError(f"{what} {path} has no CRS")
        try:
            part = covered_part(what, path, Extent(*elev.bounds, elev.crs), self.extent,
                                self.aerial_path, 2 * pixel_size(elev.transform), self.coverage_policy)
        except MappingInputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any PROJ failure means "cannot align"
            raise MappingInputError(f"{what} {path}: cannot reproject {elev.crs} to {self.crs}: {exc}") from exc
        self.restrict_to(part)
        if elev.crs == self.crs and any(MaskFlags.all_valid not in elev.mask_flag_enums[b - 1]
                                        for b in self._elev_bands):
            self._elev_masked = elev
        _resolution_ok(elev, path, what, expected_m, self.resolution_policy,
                       f"the {self.transform.a:g} m aerial grid (bilinear)")
        self._elev_path = path
        transform, height, width = self._full_grid
        if _same_grid(elev, self.crs, transform, (height, width)):
            return elev
        self._elev_warp = dict(crs=self.crs, transform=transform, width=width, height=height,
                               resampling=Resampling.bilinear)
        return self._stack.enter_context(WarpedVRT(elev, **self._elev_warp))

    def _reopen(self, stack: ExitStack) -> tuple:
        """The files opened again, as :meth:`_open` left them: ``(aerial, elevation on the aerial
        grid, elevation as opened when it masks pixels)``."""
        src = stack.enter_context(rasterio.open(self.aerial_path))
        if self._aerial_warp is not None:
            src = stack.enter_context(WarpedVRT(src, **self._aerial_warp))
        elev = elev_masked = None
        if self._elev_path is not None:
            raw = stack.enter_context(rasterio.open(self._elev_path))
            elev_masked = raw if self._elev_masked is not None else None
            elev = raw if self._elev_warp is None else stack.enter_context(WarpedVRT(raw, **self._elev_warp))
        return src, elev, elev_masked

    def _spectral_indexes(self) -> list[int]:
        """1-based indexes of the aerial image's spectral bands (all but elevation)."""
        return [i + 1 for i, b in enumerate(self.raster_bands) if b != "elevation"] or [1]

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

    def read(self, window: Window, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Read a window (inside the grid) of the image in FLAIR's 5-band layout, and its validity.

        Safe to call from several threads at once: each reads through its own file handles.

        Args:
            window: pixels of the output grid.
            out: uint8 ``(5, h', w')`` with ``h' >= h``, ``w' >= w`` to read into (its top-left
                ``(h, w)`` corner; bands the model does not read are zeroed), e.g. a slot of a
                batch buffer; None: a new array.

        Returns:
            ``aerial`` uint8 ``(5, h, w)`` (R, G, B, NIR, elevation; bands the model does not
            read are 0; a view of ``out`` when given) and ``valid`` bool ``(h, w)``, False where
            all spectral bands are nodata (nodata value, mask or alpha), where the elevation has
            none, or outside :attr:`coverage` (as :meth:`valid`).

        Raises:
            MappingReadError: a file could not be read there (names it, the window and GDAL's cause).
        """
        height, width = int(window.height), int(window.width)
        if out is None:
            out = np.zeros((len(AERIAL_BANDS), height, width), dtype=np.uint8)
        aerial = out[:, :height, :width]
        src, elev, _ = self._handles.get()
        image_window = self._in_image(window)
        from_raster = [b for b in self.bands if not (b == "elevation" and elev is not None)]
        unread = [k for k, b in enumerate(AERIAL_BANDS) if b not in self.bands]
        if unread:
            aerial[unread] = 0
        with self._naming_read_errors(self.aerial_path, window):
            valid = self._aerial_valid(src, window)
            if from_raster:
                indexes = [self.raster_bands.index(b) + 1 for b in from_raster]
                bands = [AERIAL_BANDS.index(b) for b in from_raster]
                if bands == list(range(bands[0], bands[0] + len(bands))):  # straight into the buffer
                    src.read(indexes, window=image_window, out=aerial[bands[0]:bands[0] + len(bands)])
                else:
                    aerial[bands] = src.read(indexes, window=image_window)
        if elev is not None:
            with self._naming_read_errors(self._elev_path, window):
                if self._elev_is_dem:
                    dsm_dtm = elev.read(self._elev_bands, window=image_window)
                    aerial[AERIAL_BANDS.index("elevation")] = elevation_from_dem(dsm_dtm)
                else:
                    elev.read(1, window=image_window, out=aerial[AERIAL_BANDS.index("elevation")])
        return aerial, self._restrict_valid(valid, window)

    @contextmanager
    def _naming_read_errors(self, path: Path, window: Window) -> Iterator[None]:
        """Turn a failed read of ``path`` over ``window`` (output grid) into a
        :class:`MappingReadError` naming the file at fault (a VRT's member tile)."""
        try:
            yield
        except rasterio.errors.RasterioError as error:
            bounds = rasterio.windows.bounds(window, self.transform)
            # A warped read (resampled aerial image or elevation) decodes whole blocks of the warped grid.
            margin = WARP_BLOCK_SEARCH_PX * abs(self.transform.a)
            raise read_error(path, bounds, self.crs, error, search_margin=margin) from None

    def valid(self, window: Window) -> np.ndarray:
        """bool ``(h, w)``: False where all spectral bands of the aerial image are nodata, where the
        elevation raster (when the model reads it and it masks pixels, e.g. a mosaic with a tile
        missing) has none, or outside the part of the image that every input covers
        (:attr:`coverage`). Safe to call from several threads at once."""
        src, _, _ = self._handles.get()
        with self._naming_read_errors(self.aerial_path, window):
            return self._restrict_valid(self._aerial_valid(src, window), window)

    def _aerial_valid(self, src, window: Window) -> np.ndarray:
        """bool ``(h, w)``: where some spectral band of the aerial image has data."""
        shape = (int(window.height), int(window.width))
        if self._all_valid:
            return np.ones(shape, dtype=bool)
        spectral = self._spectral_indexes()
        if self._alpha_is_data:
            nodata = src.nodata
            return (np.ones(shape, dtype=bool) if nodata is None
                    else (src.read(spectral, window=self._in_image(window)) != nodata).any(axis=0))
        return src.read_masks(spectral, window=self._in_image(window)).any(axis=0)

    def _restrict_valid(self, valid: np.ndarray, window: Window) -> np.ndarray:
        """``valid`` where the elevation has data and inside :attr:`coverage`."""
        if self._elev_masked is not None and "elevation" in self.bands:
            with self._naming_read_errors(self._elev_path, window):
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
        _, on_grid, elev = self._handles.get()
        shape = (int(window.height), int(window.width))
        if elev is on_grid:  # same grid
            return (elev.read_masks(self._elev_bands, window=self._in_image(window)) > 0).all(axis=0)
        left, bottom, right, top = rasterio.windows.bounds(window, self.transform)
        source_window = rasterio.windows.from_bounds(left, bottom, right, top, elev.transform)
        masks = elev.read_masks(self._elev_bands, window=source_window, out_shape=(len(self._elev_bands), *shape),
                                boundless=True, resampling=Resampling.nearest)
        return (masks > 0).all(axis=0)

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

    def release_thread_handles(self) -> None:
        """Close the files the calling thread opened to read (a reader thread, as it ends)."""
        self._handles.release()

    def close(self) -> None:
        """Close every file opened, by every thread."""
        handles = getattr(self, "_handles", None)
        if handles is not None:
            handles.close()
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
        #: How each file is opened again in another thread: its path and warp (or None).
        self._recipes: dict[Path, dict | None] = {}
        try:
            with _grouped_warnings("Sentinel-2 files"):
                self._ds = [self._open(p, "Sentinel-2 file", SENTINEL_BANDS, Resampling.bilinear) for p in self.paths]
                self._mask_ds = self._open_masks(need_masks, coverage_policy)
        except BaseException:
            self._stack.close()
            raise
        self._mask_paths = [p.with_name(p.stem + "_masks.tif") for p in self.paths] if self._mask_ds else None
        # Each reading thread reads through its own handles (GDAL's are not thread-safe).
        self._handles = _ThreadHandles(self._reopen, (self._ds, self._mask_ds))

    def _reopen(self, stack: ExitStack) -> tuple[list, list | None]:
        """The series' files opened again, as :meth:`_open` left them."""
        def again(path: Path):
            ds = stack.enter_context(rasterio.open(path))
            warp = self._recipes[path]
            return ds if warp is None else stack.enter_context(WarpedVRT(ds, **warp))

        masks = None if self._mask_paths is None else [again(p) for p in self._mask_paths]
        return [again(p) for p in self.paths], masks

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
            self._recipes[path] = None
            return ds
        transform, width, height = calculate_default_transform(
            ds.crs, self.crs, ds.width, ds.height, *ds.bounds, resolution=SENTINEL_PIXEL_SIZE_M
        )
        self._recipes[path] = dict(crs=self.crs, transform=transform, width=width, height=height, resampling=resampling)
        return self._stack.enter_context(WarpedVRT(ds, **self._recipes[path]))

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
        files, _ = self._handles.get()
        out = np.empty((len(files), SENTINEL_BANDS, size, size), dtype=np.float32)
        for t, (ds, path) in enumerate(zip(files, self.paths)):
            row, col = ds.index(x, y)
            out[t] = self._edge_read(ds, path, row - size // 2, col - size // 2, size)
        return out

    @staticmethod
    def _edge_read(ds, path: Path, row0: int, col0: int, size: int) -> np.ndarray:
        """:func:`edge_read` of a square window, a failed read named (:class:`MappingReadError`)."""
        try:
            return edge_read(ds, row0, col0, size, size)
        except rasterio.errors.RasterioError as error:
            raise MappingReadError(path, (col0, row0, size, size), gdal_cause(error)) from None

    def read_masks_window(self, x: float, y: float, size: int) -> np.ndarray | None:
        """Snow and cloud probabilities ``(T, 2, size, size)`` (uint8) of the same window, or None.

        Channel 0 is snow, channel 1 cloud (bands 1 and 2 of the ``{product_name}_masks.tif``
        files); None when any date has no such file.
        """
        _, masks = self._handles.get()
        if masks is None:
            return None
        out = np.empty((len(masks), 2, size, size), dtype=np.uint8)
        for t, (ds, path) in enumerate(zip(masks, self._mask_paths)):
            row, col = ds.index(x, y)
            out[t] = self._edge_read(ds, path, row - size // 2, col - size // 2, size)
        return out

    def release_thread_handles(self) -> None:
        """Close the files the calling thread opened to read (a reader thread, as it ends)."""
        self._handles.release()

    def close(self) -> None:
        """Close every file opened, by every thread."""
        handles = getattr(self, "_handles", None)
        if handles is not None:
            handles.close()
        self._stack.close()

