"""Mosaics of raster tiles as GDAL VRTs: the inputs of a tiled job, and its output map.

IGN delivers orthophotos and elevation as tiles (JPEG2000 or GeoTIFF, e.g. 5 km x 5 km at 0.2 m)
on a regular grid. :func:`scan_tiles` opens each one and checks that they form one mosaic (same
CRS, pixel size, pixel grid, bands and data type), naming the file that does not;
:func:`write_vrt` writes a GDAL VRT over them for any grid: the whole mosaic, or one output tile
with its halo. Each source also feeds the VRT's mask band (``mask,1``), so pixels that no tile
covers (a tile missing inside the area) read as nodata instead of zeros.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from flairlc.mapping.errors import MappingInputError
from flairlc.outputs import atomic_path

#: File suffixes read as raster tiles when a folder is given.
TILE_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
#: Largest misalignment of a tile with the mosaic's pixel grid, pixels.
_ALIGN_TOLERANCE_PX = 1e-3

_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
               "float32": "Float32", "float64": "Float64"}


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: ``transform`` (pixel size ``transform.a`` metres), ``width`` x ``height``
    pixels, in ``crs``."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units (metres)."""
        left, top = self.transform.c, self.transform.f
        return left, top + self.height * self.transform.e, left + self.width * self.transform.a, top

    def window_grid(self, col_off: int, row_off: int, width: int, height: int) -> Grid:
        """The grid of the pixel window ``(col_off, row_off, width, height)`` of this grid."""
        return Grid(self.crs, self.transform * Affine.translation(col_off, row_off), width, height)

    def to_dict(self) -> dict:
        """A JSON-able form (CRS as WKT, the six transform coefficients)."""
        return {"crs": self.crs.to_wkt(), "transform": list(self.transform)[:6], "width": self.width,
                "height": self.height}


@dataclass(frozen=True)
class RasterTile:
    """One tile of a mosaic: its file, grid, band count and data type."""

    path: Path
    grid: Grid
    count: int
    dtype: str

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.grid.bounds


@dataclass(frozen=True)
class Mosaic:
    """Tiles that form one mosaic, and the grid that holds them all."""

    tiles: tuple[RasterTile, ...]
    grid: Grid
    count: int
    dtype: str

    def gaps(self) -> list[tuple[float, float, float, float]]:
        """The cells of the tiling that no tile covers, as (left, bottom, right, top), when the
        tiles lie on a regular grid (the most common tile size, from the mosaic's corner): a tile
        missing inside the area. Edge tiles may be smaller; cells are judged by their centre."""
        from collections import Counter

        def size(tile: RasterTile) -> tuple[float, float]:
            return round(tile.bounds[2] - tile.bounds[0], 6), round(tile.bounds[3] - tile.bounds[1], 6)

        (width_m, height_m), _ = Counter(map(size, self.tiles)).most_common(1)[0]
        left, bottom, right, top = self.grid.bounds
        # The tiling's origin: a full-size tile's corner, moved back to the mosaic's corner.
        full = next(t for t in self.tiles if size(t) == (width_m, height_m))
        x0 = full.bounds[0] - math.floor((full.bounds[0] - left) / width_m + 1e-9) * width_m
        y0 = full.bounds[3] + math.floor((top - full.bounds[3]) / height_m + 1e-9) * height_m
        gaps = []
        y = y0
        while y > bottom + 1e-6:
            x = x0
            while x < right - 1e-6:
                cell = (max(x, left), max(y - height_m, bottom), min(x + width_m, right), min(y, top))
                cx, cy = (cell[0] + cell[2]) / 2, (cell[1] + cell[3]) / 2
                if not any(t.bounds[0] <= cx < t.bounds[2] and t.bounds[1] <= cy < t.bounds[3] for t in self.tiles):
                    gaps.append(cell)
                x += width_m
            y -= height_m
        return gaps

    def tiles_in(self, bounds: tuple[float, float, float, float]) -> list[RasterTile]:
        """The tiles that overlap ``bounds`` (left, bottom, right, top)."""
        left, bottom, right, top = bounds
        return [t for t in self.tiles
                if t.bounds[0] < right and t.bounds[2] > left and t.bounds[1] < top and t.bounds[3] > bottom]


def tile_paths(inputs: str | Path | Sequence[str | Path], what: str) -> list[Path]:
    """The raster files of ``inputs``: a folder (its ``*.tif``, ``*.tiff``, ``*.jp2``, sorted; its
    ``*.vrt`` only when it holds nothing else), one file, or a list of files."""
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in TILE_SUFFIXES and p.is_file())
            if any(p.suffix.lower() != ".vrt" for p in found):
                # A mosaic VRT kept beside its tiles would cover them all: the tiles are read.
                found = [p for p in found if p.suffix.lower() != ".vrt"]
            if not found:
                raise MappingInputError(f"{what} folder {item} holds no raster tile ({', '.join(TILE_SUFFIXES)})")
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            raise MappingInputError(f"{what} {item} does not exist")
    if not paths:
        raise MappingInputError(f"no {what} given")
    return paths


def _open_tile(path: Path, what: str) -> RasterTile:
    try:
        with rasterio.open(path) as ds:
            if ds.crs is None:
                raise MappingInputError(f"{what} tile {path} has no CRS: georeference it first")
            t = ds.transform
            if t.b != 0 or t.d != 0 or t.a <= 0 or t.e >= 0:
                raise MappingInputError(f"{what} tile {path} is not a north-up grid (geotransform {tuple(t)[:6]})")
            if len(set(ds.dtypes)) != 1:
                raise MappingInputError(f"{what} tile {path} mixes data types {ds.dtypes}")
            return RasterTile(path.resolve(), Grid(ds.crs, t, ds.width, ds.height), ds.count, ds.dtypes[0])
    except RasterioIOError as error:
        raise MappingInputError(f"{what} tile {path} cannot be read: {error}") from None


def scan_tiles(inputs: str | Path | Sequence[str | Path], what: str = "aerial") -> Mosaic:
    """Open every tile of ``inputs`` (see :func:`tile_paths`) and check that they form one mosaic.

    The tiles must share the CRS, the pixel size, the pixel grid (origins a whole number of
    pixels apart), the band count and the data type; the first tile that does not is named.
    Overlapping tiles are allowed (the later one in name order wins where they overlap).

    Raises:
        MappingInputError: a missing, unreadable or non-matching tile.
    """
    tiles = [_open_tile(p, what) for p in tile_paths(inputs, what)]
    first = tiles[0]
    res_x, res_y = first.grid.transform.a, -first.grid.transform.e
    for tile in tiles[1:]:
        where = f"{what} tile {tile.path}"
        if tile.grid.crs != first.grid.crs:
            raise MappingInputError(f"{where} is in {tile.grid.crs.to_string()}, {first.path.name} in "
                                    f"{first.grid.crs.to_string()}: reproject the tiles to one CRS")
        t = tile.grid.transform
        if not (math.isclose(t.a, res_x, rel_tol=1e-6) and math.isclose(-t.e, res_y, rel_tol=1e-6)):
            raise MappingInputError(f"{where} has {t.a:g} x {-t.e:g} m pixels, {first.path.name} "
                                    f"{res_x:g} x {res_y:g} m: a mosaic needs one pixel size")
        dx, dy = (t.c - first.grid.transform.c) / res_x, (first.grid.transform.f - t.f) / res_y
        if abs(dx - round(dx)) > _ALIGN_TOLERANCE_PX or abs(dy - round(dy)) > _ALIGN_TOLERANCE_PX:
            raise MappingInputError(f"{where} is not on the pixel grid of {first.path.name} "
                                    f"(offset {dx:.3f}, {dy:.3f} px)")
        if (tile.count, tile.dtype) != (first.count, first.dtype):
            raise MappingInputError(f"{where} has {tile.count} band(s) of {tile.dtype}, {first.path.name} "
                                    f"{first.count} of {first.dtype}")
    left = min(t.bounds[0] for t in tiles)
    top = max(t.bounds[3] for t in tiles)
    right = max(t.bounds[2] for t in tiles)
    bottom = min(t.bounds[1] for t in tiles)
    width, height = round((right - left) / res_x), round((top - bottom) / res_y)
    grid = Grid(first.grid.crs, Affine(res_x, 0.0, left, 0.0, -res_y, top), width, height)
    return Mosaic(tuple(tiles), grid, first.count, first.dtype)


def _pixel_rect(grid: Grid, tile: RasterTile) -> tuple[int, int, int, int] | None:
    """The part of ``tile`` inside ``grid``: (src col, src row, dst col, dst row, width, height)."""
    inverse = ~grid.transform
    col, row = inverse @ (tile.grid.transform.c, tile.grid.transform.f)
    col, row = round(col), round(row)
    c0, r0 = max(col, 0), max(row, 0)
    c1, r1 = min(col + tile.grid.width, grid.width), min(row + tile.grid.height, grid.height)
    if c1 <= c0 or r1 <= r0:
        return None
    return c0 - col, r0 - row, c0, r0, c1 - c0, r1 - r0


def _source(parent: ET.Element, tile: RasterTile, band: str, rect: tuple[int, ...]) -> None:
    sx, sy, dx, dy, w, h = rect
    source = ET.SubElement(parent, "SimpleSource")
    ET.SubElement(source, "SourceFilename", relativeToVRT="0").text = str(tile.path)
    ET.SubElement(source, "SourceBand").text = band
    ET.SubElement(source, "SrcRect", xOff=str(sx), yOff=str(sy), xSize=str(w), ySize=str(h))
    ET.SubElement(source, "DstRect", xOff=str(dx), yOff=str(dy), xSize=str(w), ySize=str(h))


def write_vrt(
    path: str | Path,
    grid: Grid,
    tiles: Iterable[RasterTile],
    count: int,
    dtype: str = "uint8",
    nodata: float | None = None,
    with_mask: bool = True,
    colormap: dict[int, tuple[int, ...]] | None = None,
    tags: dict[str, str] | None = None,
    descriptions: Sequence[str] | None = None,
) -> Path:
    """Write a GDAL VRT of ``tiles`` on ``grid`` to ``path`` (atomically).

    Args:
        path: the ``.vrt`` to write; source paths in it are absolute.
        grid: the VRT's grid (any window of the tiles' pixel grid).
        tiles: the sources; the parts outside ``grid`` are left out, and later tiles are drawn
            over earlier ones.
        count, dtype: bands and data type of the tiles.
        nodata: the bands' nodata value, if any.
        with_mask: give the VRT a mask band made of the sources' masks (``mask,1``): pixels no
            tile covers are masked. Not with ``nodata`` (the nodata value is the mask then).
        colormap: band 1's colour table, value → RGBA.
        tags: dataset metadata (read back by ``rasterio``'s ``tags()``).
        descriptions: band descriptions.
    """
    path = Path(path)
    root = ET.Element("VRTDataset", rasterXSize=str(grid.width), rasterYSize=str(grid.height))
    ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = grid.crs.to_wkt()
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in (
        grid.transform.c, grid.transform.a, 0.0, grid.transform.f, 0.0, grid.transform.e))
    if tags:
        metadata = ET.SubElement(root, "Metadata")
        for key, value in tags.items():
            ET.SubElement(metadata, "MDI", key=key).text = value
    placed = [(t, r) for t in tiles if (r := _pixel_rect(grid, t)) is not None]
    gdal_type = _GDAL_TYPES[dtype]
    for b in range(1, count + 1):
        band = ET.SubElement(root, "VRTRasterBand", dataType=gdal_type, band=str(b))
        if descriptions is not None:
            ET.SubElement(band, "Description").text = descriptions[b - 1]
        if nodata is not None:
            ET.SubElement(band, "NoDataValue").text = repr(float(nodata))
        if colormap is not None and b == 1:
            ET.SubElement(band, "ColorInterp").text = "Palette"
            table = ET.SubElement(band, "ColorTable")
            for value in range(max(colormap) + 1):
                rgba = (tuple(colormap.get(value, (0, 0, 0, 0))) + (255,))[:4]
                ET.SubElement(table, "Entry", c1=str(rgba[0]), c2=str(rgba[1]), c3=str(rgba[2]), c4=str(rgba[3]))
        for tile, rect in placed:
            _source(band, tile, str(b), rect)
    if with_mask and nodata is None:
        mask = ET.SubElement(ET.SubElement(root, "MaskBand"), "VRTRasterBand", dataType="Byte")
        for tile, rect in placed:
            _source(mask, tile, "mask,1", rect)
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode") + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path  # unchanged: keep its date (work resumed from it checks the date)
    with atomic_path(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")
    return path
