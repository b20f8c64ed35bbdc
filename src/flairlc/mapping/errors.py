"""The errors of the mapping stage: an input that is missing, malformed, does not fit, or cannot be read."""

from __future__ import annotations

from pathlib import Path


class MappingInputError(ValueError):
    """An input raster of the mapper is missing, malformed or does not match the others."""


class MappingReadError(MappingInputError):
    """A window of an input raster could not be read (a truncated or corrupt file).

    Attributes:
        path: the file that failed: the member tile itself when the raster is a VRT mosaic.
        window: the pixel window ``(col_off, row_off, width, height)`` of that file being read
            (None when the file cannot even be opened to tell).
        cause: GDAL's message.
    """

    def __init__(self, path: Path, window: tuple[int, int, int, int] | None, cause: str) -> None:
        self.path = Path(path)
        self.window = None if window is None else tuple(int(v) for v in window)
        self.cause = " ".join(str(cause).split())
        where = ""
        if self.window is not None:
            col, row, width, height = self.window
            where = f" (window col {col}, row {row}, {width} x {height} px)"
        super().__init__(f"cannot read {self.path}{where}: {self.cause}")
