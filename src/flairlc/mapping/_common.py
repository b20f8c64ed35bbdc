"""Small shared helpers of the mapping stage: class names of a map, strips (files: flairlc.outputs)."""

from __future__ import annotations

from collections.abc import Iterator

import rasterio
from rasterio.windows import Window

from flairlc import nomenclature

#: Rows read at once by the statistics passes (memory: STRIP_ROWS x width bytes per map).
STRIP_ROWS = 1024


def map_nomenclature(ds: rasterio.io.DatasetReader) -> nomenclature.Nomenclature | None:
    """The nomenclature a class map was made with, from its tags (:func:`flairlc.nomenclature.from_tags`)."""
    return nomenclature.from_tags(ds.tags())


def map_class_names(ds: rasterio.io.DatasetReader, max_value: int | None = None) -> list[str]:
    """Class names of a class map: from its nomenclature tags (:func:`map_nomenclature`), else
    baseline (13) unless values of 13..18 occur (then raw, 19)."""
    tags = ds.tags()
    nomen = map_nomenclature(ds)
    if nomen is not None:
        return nomen.names
    if "FLAIRLC_NUM_CLASSES" in tags:
        k = int(tags["FLAIRLC_NUM_CLASSES"])
        return [f"class {i}" for i in range(k)]
    if max_value is not None and max_value >= nomenclature.NUM_BASELINE_CLASSES:
        return nomenclature.class_names("raw")
    return nomenclature.class_names("baseline")


def class_colors_for(names: list[str]) -> list[str]:
    """Display colours for a list of class names (nomenclature colours when it matches)."""
    for nomen in nomenclature.BUILT_IN_NOMENCLATURES:
        if names == nomenclature.class_names(nomen):
            return nomenclature.class_colors(nomen)
    return ["#808080"] * len(names)


def area_decimals(unit_area: float, max_decimals: int = 12) -> int:
    """Decimals that write every multiple of ``unit_area`` exactly, and no float noise.

    E.g. 2 for a 0.2 m pixel in m² (0.04), 6 in hectares (0.000004): an area of 3 797 pixels is
    then 0.015188 ha, not 0.015187999999999757.
    """
    for decimals in range(max_decimals + 1):
        if abs(round(unit_area, decimals) - unit_area) <= 1e-9 * abs(unit_area):
            return decimals
    return max_decimals


def row_strips(height: int, width: int, rows: int = STRIP_ROWS, col_off: int = 0, row_off: int = 0) -> Iterator[Window]:
    """Windows of full width and up to ``rows`` rows covering ``height`` rows."""
    for y in range(0, height, rows):
        yield Window(col_off, row_off + y, width, min(rows, height - y))

