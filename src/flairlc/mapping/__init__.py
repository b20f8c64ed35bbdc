"""Mapping any area: large-raster inference, land-cover statistics and change between years.

* :func:`map_raster`: tiled, blended, resumable inference of a trained :class:`Predictor` over a
  GeoTIFF/VRT of any size, written as a Cloud-Optimized GeoTIFF with a colour table and QGIS style;
  :class:`MapOptions` says how (window, overlap, batch size, precision, policies…).
* :func:`compute_areas`: area per class (m², ha, %), overall and per zone polygon.
* :func:`compute_change`: transition matrix, change raster and summaries between two maps.
* :func:`polygonize_map`: the map as GeoPackage polygons.
"""

from flairlc.map_options import MapOptions
from flairlc.mapping.areas import AreaTable, ZoneAreas, compute_areas
from flairlc.mapping.blending import blend_weights, window_starts
from flairlc.mapping.change import ChangeResult, compute_change
from flairlc.mapping.coverage import COVERAGE_POLICIES, CoverageError
from flairlc.mapping.infer import MapResult, map_raster
from flairlc.mapping.inputs import AERIAL_PIXEL_SIZE_M, MappingInputError, SentinelSeries
from flairlc.mapping.predictor import Predictor
from flairlc.mapping.qml import write_qml
from flairlc.mapping.vector import polygonize_map

__all__ = [
    "AERIAL_PIXEL_SIZE_M",
    "AreaTable",
    "COVERAGE_POLICIES",
    "ChangeResult",
    "CoverageError",
    "MapOptions",
    "MapResult",
    "MappingInputError",
    "Predictor",
    "SentinelSeries",
    "ZoneAreas",
    "blend_weights",
    "compute_areas",
    "compute_change",
    "map_raster",
    "polygonize_map",
    "window_starts",
    "write_qml",
]
