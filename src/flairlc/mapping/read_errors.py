"""Naming a failed read: which file (the member tile of a VRT mosaic), which window, GDAL's cause.

rasterio reports a failed read as ``RasterioIOError: Read failed. See previous exception for
details.``; GDAL's own message is the exception's cause, and for a VRT it may not name the member
tile at fault. :func:`read_error` turns such an exception into one
:class:`~flairlc.mapping.errors.MappingReadError` line: for a VRT it rereads the members that
intersect the failing window, one by one, and names the first that fails.
"""

from __future__ import annotations

from pathlib import Path

import rasterio
import rasterio.windows
from rasterio.errors import RasterioError, WindowError
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from flairlc.mapping.errors import MappingReadError


def gdal_cause(error: BaseException) -> str:
    """GDAL's message behind a rasterio exception (the innermost cause), else the exception's own."""
    messages = []
    while error is not None:
        messages.append(str(error))
        error = error.__cause__ or error.__context__
    return next((m for m in reversed(messages) if m.strip()), "unknown read error")


def read_error(path: Path, bounds: tuple[float, float, float, float], crs, error: BaseException,
               search_margin: float = 0.0) -> MappingReadError:
    """The one-line error of a failed read of ``path`` over ``bounds`` (in ``crs``).

    A VRT's members that intersect the bounds are reread; the first that fails is named, with its
    window and cause. When none does, those within ``search_margin`` (units of ``crs``) of the
    bounds are: a read through a warp reads whole blocks of the warped grid, beyond the window.
    Otherwise (a plain file, or no member fails when read alone) ``path`` is named, with the
    window of its own pixels and the cause of ``error``.
    """
    path = Path(path)
    if path.suffix.lower() == ".vrt":
        try:
            with rasterio.open(path) as vrt:
                members = [Path(f) for f in vrt.files if Path(f).resolve() != path.resolve()]
        except RasterioError:
            members = []
        left, bottom, right, top = bounds
        for margin in (0.0, search_margin) if search_margin > 0 else (0.0,):
            around = (left - margin, bottom - margin, right + margin, top + margin)
            for member in members:
                found = _member_error(member, around, crs)
                if found is not None:
                    return found
    return MappingReadError(path, _file_window(path, bounds, crs), gdal_cause(error))


def _file_window(path: Path, bounds: tuple[float, float, float, float], crs) -> tuple[int, int, int, int] | None:
    """``bounds`` (in ``crs``) as a pixel window of ``path``, clipped to it; None if it cannot tell."""
    try:
        with rasterio.open(path) as ds:
            return _window_of(ds, bounds, crs)
    except (RasterioError, ValueError):
        return None


def _window_of(ds, bounds: tuple[float, float, float, float], crs) -> tuple[int, int, int, int] | None:
    """``bounds`` (in ``crs``) as a pixel window of ``ds``, clipped to it; None outside it."""
    if ds.crs is not None and crs is not None and ds.crs != crs:
        bounds = transform_bounds(crs, ds.crs, *bounds)
    window = rasterio.windows.from_bounds(*bounds, transform=ds.transform).round_offsets().round_lengths()
    try:
        window = window.intersection(Window(0, 0, ds.width, ds.height))
    except WindowError:
        return None
    return (int(window.col_off), int(window.row_off), int(window.width), int(window.height))


def _member_error(member: Path, bounds: tuple[float, float, float, float], crs) -> MappingReadError | None:
    """The error of reading ``bounds`` (in ``crs``) from a VRT's ``member``, or None when it reads."""
    window = None
    try:
        with rasterio.open(member) as ds:
            window = _window_of(ds, bounds, crs)
            if window is None:
                return None  # the member does not reach into the window
            ds.read(window=Window(*window))
            ds.read_masks(window=Window(*window))
    except RasterioError as error:
        return MappingReadError(member, window, gdal_cause(error))
    return None
