"""Opening, checking and aligning the rasters a map is made from.

The aerial image defines the output grid. It must be a uint8 GeoTIFF/VRT with a CRS and 4 bands
(R, G, B, NIR; elevation then comes from a separate raster) or 5 bands (elevation included), at
0.2 m. Other resolutions are resampled on the fly onto a 0.2 m grid (a ``WarpedVRT``) or refused.
The elevation raster and the Sentinel-2 series are read by coordinates, so their grids need not
match the aerial one.
"""

from __future__ import annotations

import datetime
import math
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

#: Ground sampling distance of FLAIR aerial images, metres.
AERIAL_PIXEL_SIZE_M = 0.2
#: Number of Sentinel-2 bands expected per date (B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12).
SENTINEL_BANDS = 10


class MappingInputError(ValueError):
    """An input raster of the mapper is missing, malformed or does not match the others."""


def _same_grid(a: rasterio.io.DatasetReader | WarpedVRT, crs, transform: Affine, shape) -> bool:
    return a.crs == crs and a.transform.almost_equals(transform) and (a.height, a.width) == shape


class AerialSource:
    """The aerial image (+ elevation) on the 0.2 m output grid, read by windows.

    Args:
        aerial_path: GeoTIFF or VRT, uint8, 4 or 5 bands.
        elevation_path: single-band uint8 raster of normalized height; required for 4-band
            aerial images, replaces band 5 of a 5-band image when given.
        resolution_policy: ``"resample"`` (warn and warp onto a 0.2 m grid) or ``"error"``.
        expected_resolution_m: expected pixel size in metres.

    Attributes:
        crs, transform, height, width: the output grid (the aerial file's own grid unless it
            was resampled).
    """

    def __init__(
        self,
        aerial_path: str | Path,
        elevation_path: str | Path | None = None,
        resolution_policy: str = "resample",
        expected_resolution_m: float = AERIAL_PIXEL_SIZE_M,
    ) -> None:
        if resolution_policy not in ("resample", "error"):
            raise ValueError(f"resolution_policy must be 'resample' or 'error', not {resolution_policy!r}")
        self.aerial_path = Path(aerial_path)
        self._stack = ExitStack()
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
        if src.count not in (4, 5):
            raise MappingInputError(
                f"aerial image {path} has {src.count} bands: expected 4 (R, G, B, NIR + --elevation) "
                "or 5 (R, G, B, NIR, elevation)"
            )
        if any(dt != "uint8" for dt in src.dtypes):
            raise MappingInputError(f"aerial image {path} has dtypes {src.dtypes}: expected uint8")
        if src.count == 4 and elevation_path is None:
            raise MappingInputError(
                f"aerial image {path} has 4 bands (no elevation): pass the elevation raster "
                "(--elevation ELEV.tif) or a 5-band image"
            )
        if src.transform.b != 0 or src.transform.d != 0:
            raise MappingInputError(f"aerial image {path} has a rotated geotransform: not supported")
        res_x, res_y = abs(src.transform.a), abs(src.transform.e)
        self.resampled = False
        if not (math.isclose(res_x, expected_m, rel_tol=1e-3) and math.isclose(res_y, expected_m, rel_tol=1e-3)):
            if resolution_policy == "error":
                raise MappingInputError(
                    f"aerial image {path} has {res_x:g} x {res_y:g} m pixels, expected {expected_m:g} m "
                    "(use resolution_policy='resample' to resample on the fly)"
                )
            left, bottom, right, top = src.bounds
            width = max(1, round((right - left) / expected_m))
            height = max(1, round((top - bottom) / expected_m))
            target = Affine(expected_m, 0.0, left, 0.0, -expected_m, top)
            warnings.warn(
                f"aerial image {path} has {res_x:g} x {res_y:g} m pixels: resampling on the fly to "
                f"{expected_m:g} m ({width} x {height} px, bilinear)",
                stacklevel=3,
            )
            src = self._stack.enter_context(
                WarpedVRT(src, crs=src.crs, transform=target, width=width, height=height,
                          resampling=Resampling.bilinear)
            )
            self.resampled = True
        self._src = src
        self.crs = src.crs
        self.transform: Affine = src.transform
        self.height: int = src.height
        self.width: int = src.width
        self._elev = None
        if elevation_path is not None:
            self._elev = self._open_elevation(Path(elevation_path))

    def _open_elevation(self, path: Path):
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
            eb = transform_bounds(elev.crs, self.crs, *elev.bounds)
        except Exception as exc:  # noqa: BLE001 - any PROJ failure means "cannot align"
            raise MappingInputError(f"elevation raster {path}: cannot reproject {elev.crs} to {self.crs}: {exc}") from exc
        ab = self._src.bounds
        tol = 2 * max(abs(elev.transform.a), abs(self.transform.a))
        if eb[0] > ab[0] + tol or eb[1] > ab[1] + tol or eb[2] < ab[2] - tol or eb[3] < ab[3] - tol:
            raise MappingInputError(
                f"elevation raster {path} (bounds {tuple(round(v, 2) for v in eb)}) does not cover the aerial "
                f"image {self.aerial_path} (bounds {tuple(round(v, 2) for v in ab)})"
            )
        if _same_grid(elev, self.crs, self.transform, (self.height, self.width)):
            return elev
        return self._stack.enter_context(
            WarpedVRT(elev, crs=self.crs, transform=self.transform, width=self.width,
                      height=self.height, resampling=Resampling.bilinear)
        )

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read a window (inside the grid) of the 5-channel image and its validity.

        Returns:
            ``aerial`` uint8 ``(5, h, w)`` (R, G, B, NIR, elevation) and ``valid`` bool ``(h, w)``,
            False where all spectral bands are nodata (nodata value, mask or alpha).
        """
        bands = self._src.read(window=window)
        valid = self.valid(window)
        if self._elev is not None:
            elev = self._elev.read(1, window=window)
            bands = np.concatenate([bands[:4], elev[None]], axis=0)
        return bands, valid

    def valid(self, window: Window) -> np.ndarray:
        """bool ``(h, w)``: False where all spectral bands of the aerial image are nodata."""
        return self._src.read_masks([1, 2, 3, 4], window=window).any(axis=0)

    def close(self) -> None:
        """Close every file opened."""
        self._stack.close()

    def __enter__(self) -> AerialSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def boundless_read(ds, row0: int, col0: int, size_rows: int, size_cols: int, fill: float = 0) -> np.ndarray:
    """Read ``(count, size_rows, size_cols)`` at pixel offset ``(row0, col0)``, filling outside.

    Works on ``WarpedVRT`` too (whose own ``boundless=True`` is unsupported).
    """
    out = np.full((ds.count, size_rows, size_cols), fill, dtype=ds.dtypes[0])
    r0, c0 = max(row0, 0), max(col0, 0)
    r1, c1 = min(row0 + size_rows, ds.height), min(col0 + size_cols, ds.width)
    if r1 > r0 and c1 > c0:
        out[:, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] = ds.read(window=Window(c0, r0, c1 - c0, r1 - r0))
    return out


def _sentinel_helpers():
    # Imported lazily: the date helpers live in flairlc.data.sentinel (owned by the data stage).
    from flairlc.data.sentinel import dates_to_days, product_date

    return product_date, dates_to_days


class SentinelSeries:
    """A Sentinel-2 series folder (one 10-band GeoTIFF per date), read by coordinates.

    Layout (see ``docs/architecture.md``): ``{product_name}.tif`` per date, 10 bands uint16
    reflectance x 10 000 at 10 m; ``{product_name}_masks.tif`` (cloud and snow probability) when
    every date has one, for the cloud filter. Dates are parsed from the product names and sorted.

    Args:
        folder: the series folder.
        crs: CRS of the aerial grid (the window centres are given in it).
        reference_date: date the day offsets count from.
    """

    def __init__(self, folder: str | Path, crs, reference_date: datetime.date) -> None:
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
        self._stack = ExitStack()
        self._ds = []
        for p in self.paths:
            ds = self._stack.enter_context(rasterio.open(p))
            if ds.count != SENTINEL_BANDS:
                self._stack.close()
                raise MappingInputError(f"Sentinel-2 file {p} has {ds.count} bands, expected {SENTINEL_BANDS}")
            if ds.crs is None:
                self._stack.close()
                raise MappingInputError(f"Sentinel-2 file {p} has no CRS")
            if ds.crs != crs:
                # Reprojected onto the aerial CRS, at GDAL's chosen (about 10 m) resolution.
                ds = self._stack.enter_context(WarpedVRT(ds, crs=crs, resampling=Resampling.bilinear))
            self._ds.append(ds)
        mask_paths = [p.with_name(p.stem + "_masks.tif") for p in self.paths]
        self._mask_ds: list | None = None
        if all(m.is_file() for m in mask_paths):
            self._mask_ds = []
            for m in mask_paths:
                ds = self._stack.enter_context(rasterio.open(m))
                if ds.crs != crs:
                    ds = self._stack.enter_context(WarpedVRT(ds, crs=crs, resampling=Resampling.nearest))
                self._mask_ds.append(ds)

    def read_window(self, x: float, y: float, size: int) -> np.ndarray:
        """The ``size x size`` window of every date centred on the point ``(x, y)`` (aerial CRS).

        The pixel containing the point is at index ``size // 2`` of the window; parts outside a
        file are zeros.

        Returns:
            float32 ``(T, 10, size, size)``, reflectance x 10 000.
        """
        out = np.empty((len(self._ds), SENTINEL_BANDS, size, size), dtype=np.float32)
        for t, ds in enumerate(self._ds):
            row, col = ds.index(x, y)
            out[t] = boundless_read(ds, row - size // 2, col - size // 2, size, size)
        return out

    def read_masks_window(self, x: float, y: float, size: int) -> np.ndarray | None:
        """Cloud and snow probabilities ``(T, 2, size, size)`` (uint8) of the same window, or None.

        Read from the ``{product_name}_masks.tif`` files; None when any date has none.
        """
        if self._mask_ds is None:
            return None
        out = np.empty((len(self._mask_ds), 2, size, size), dtype=np.uint8)
        for t, ds in enumerate(self._mask_ds):
            row, col = ds.index(x, y)
            out[t] = boundless_read(ds, row - size // 2, col - size // 2, size, size)
        return out

    def close(self) -> None:
        """Close every file opened."""
        self._stack.close()

