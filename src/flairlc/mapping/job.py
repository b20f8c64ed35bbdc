"""Mapping a whole département or country: a grid of independent, resumable output tiles.

A *map job* lives in one folder::

    JOB/job.json                 what decides the map (inputs, model, tiling, options); fixed
    JOB/inputs/aerial.vrt        the orthophoto tiles as one mosaic (elevation.vrt, dem.vrt likewise)
    JOB/tiles/X_Y.tif            one COG per output tile (X, Y: its upper-left corner, metres)
    JOB/tiles/X_Y.json           how that tile went (seconds, windows, worker, nodata share)
    JOB/failures/X_Y.json        a tile that failed after its retries: the error and traceback
    JOB/map.vrt, map.qml         the mosaic of the finished tiles, with the colour table
    JOB/summary.json             tiles done / failed / empty, km², km²/h, failures

How it works:

* :meth:`MapJob.create` scans the orthophoto (and elevation, or DSM/DTM) tiles into VRT mosaics
  (:mod:`flairlc.mapping.mosaic`), and cuts the area (the aerial extent, or the bounding box of a
  zone polygon) into output tiles of ``tile_px`` pixels on a grid anchored at multiples of the
  tile side in the CRS, so that two jobs over the same area (two survey years) cut it alike.
* The windows are laid out once for the whole area, as ``flairlc map`` would lay them over one
  raster of it (:func:`~flairlc.mapping.blending.window_starts`). Each output tile is an
  independent, idempotent task (:func:`map_tile`): its *context* is the union of the windows that
  reach into it; :func:`~flairlc.mapping.map_raster` maps the context with those very windows,
  so every pixel of the tile is the same blend of the same windows as in one map of the whole
  area: there are no seams between tiles, only the blending between windows. The tile is then cut
  out as a COG, written under a temporary name and renamed. A tile whose COG exists is done: a
  rerun skips it. An interrupted tile resumes from its own working files.
* Engines: :func:`run_local` (one process, optionally one shard ``i/n`` of the tiles, for a SLURM
  job array or torchrun), and :func:`flairlc.mapping.distributed.run_ray` (Ray: one task per
  tile, with CPU/GPU shares and retries when a worker fails). Whatever runs the tiles, the last
  step (:meth:`MapJob.finish`) writes the mosaic VRT, its style and the summary; any process may
  run it again.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.windows import Window

from flairlc import nomenclature
from flairlc.hashing import file_sha256
from flairlc.map_options import MapOptions
from flairlc.mapping.acquisition import ACQUISITION_TAG, AerialAcquisition, read_acquisition
from flairlc.mapping.blending import fit_window, window_starts
from flairlc.mapping.cog import crop_to_cog, finalize_cog
from flairlc.mapping.coverage import SeriesDatesWarning, check_dates
from flairlc.mapping.errors import MappingInputError, MappingReadError
from flairlc.mapping.mosaic import Grid, Mosaic, RasterTile, scan_tiles, write_vrt
from flairlc.mapping.qml import write_qml
from flairlc.outputs import check_writable_dir, write_json

if TYPE_CHECKING:
    from flairlc.inference import TrainedModel

#: Default side of an output tile, pixels (2 km at 0.2 m). The windows that straddle a tile's edge
#: are predicted by both tiles: about ``(1 + stride / tile_px)²`` passes for one of a single map
#: (1.19 with 1 024 px windows, 1.4 at 5 000 px, 2.1 at 2 048 px; ``benchmarks/RESULTS.md``).
DEFAULT_TILE_PX = 10000
#: Version of the job folder layout.
JOB_FORMAT = 1


@dataclass(frozen=True)
class TileTask:
    """One output tile: its name, its pixel window in the job's grid, and the window mapped for it
    (its context: the union of the area's windows that reach into the tile)."""

    name: str
    window: tuple[int, int, int, int]
    context: tuple[int, int, int, int]

    @property
    def inner(self) -> Window:
        """The tile inside its context window (pixels of the context)."""
        col, row, width, height = self.window
        return Window(col - self.context[0], row - self.context[1], width, height)


@dataclass
class TileOutcome:
    """What one tile task gave: ``status`` "done", "skipped" (already done), "empty" (no aerial
    data) or "failed" (``error``), with the task's seconds and windows."""

    name: str
    status: str
    km2: float = 0.0
    seconds: float = 0.0
    windows: int = 0
    error: str | None = None


def _tile_name(x: float, y: float) -> str:
    def coordinate(v: float) -> str:
        return f"{v:.2f}".rstrip("0").rstrip(".").replace("-", "m")
    return f"{coordinate(x)}_{coordinate(y)}"


@dataclass
class MapJob:
    """A tiled map job in folder ``root`` (see the module docstring); build it with :meth:`create`
    or open it with :meth:`open`.

    Attributes:
        root: the job folder.
        spec: what decides the map (inputs, checkpoint and its SHA-256, tiling, and as ``"map"``
            the map options that decide it, :meth:`MapOptions.spec`): ``job.json``.
        grid: the job's pixel grid (the aerial mosaic's, clipped to the zone's bounding box).
        aerial: the orthophoto tiles (:class:`~flairlc.mapping.mosaic.Mosaic`).
        zone_geometry: the zone's polygons as one shapely geometry in the grid's CRS, or None.
        tasks: the output tiles, in row-major order.
        options: how the tiles are mapped (:class:`~flairlc.map_options.MapOptions`, window
            resolved): those of ``spec["map"]``, and the ones that do not change the map
            (reader threads…) of the run; None: all from ``spec["map"]``.
    """

    root: Path
    spec: dict[str, Any]
    grid: Grid
    aerial: Mosaic
    zone_geometry: Any = None
    tasks: list[TileTask] = field(default_factory=list)
    options: MapOptions | None = None

    def __post_init__(self) -> None:
        if self.options is None:
            self.options = MapOptions.from_spec(self.spec["map"])
        elif self.options.spec() != self.spec["map"]:
            raise ValueError(f"options {self.options.spec()} are not the job's {self.spec['map']}")

    # --- paths -------------------------------------------------------------------------------
    @property
    def aerial_vrt(self) -> Path:
        return self.root / "inputs" / "aerial.vrt"

    @property
    def elevation_vrt(self) -> Path | None:
        return self.root / "inputs" / "elevation.vrt" if self.spec["elevation"] else None

    @property
    def dem_vrt(self) -> Path | None:
        """The DSM/DTM tiles' mosaic, when the job computes the elevation from them."""
        return self.root / "inputs" / "dem.vrt" if self.spec.get("dem") else None

    def tile_path(self, name: str) -> Path:
        """The COG of tile ``name``."""
        return self.root / "tiles" / f"{name}.tif"

    def proba_path(self, name: str) -> Path:
        """The probability COG of tile ``name`` (when the job writes probabilities)."""
        return self.root / "tiles" / f"{name}.proba.tif"

    def record_path(self, name: str) -> Path:
        return self.root / "tiles" / f"{name}.json"

    def failure_path(self, name: str) -> Path:
        return self.root / "failures" / f"{name}.json"

    @property
    def mosaic_path(self) -> Path:
        """The mosaic of the finished tiles: ``JOB/map.vrt``."""
        return self.root / "map.vrt"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    @property
    def grid_offset(self) -> tuple[int, int]:
        """The job grid's origin in the aerial mosaic's pixels (col, row): not 0 with a zone."""
        col, row = ~self.aerial.grid.transform @ (self.grid.transform.c, self.grid.transform.f)
        return round(col), round(row)

    @property
    def pixel_km2(self) -> float:
        return abs(self.grid.transform.a * self.grid.transform.e) / 1e6

    def is_done(self, name: str) -> bool:
        """Whether tile ``name`` is finished (its COG exists: it is only ever renamed into place)."""
        return self.tile_path(name).exists() and (not self.options.probabilities or self.proba_path(name).exists())

    # --- creation ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str | Path,
        checkpoint: str | Path,
        aerial: str | Path | Sequence[str | Path],
        elevation: str | Path | Sequence[str | Path] | None = None,
        sentinel: str | Path | None = None,
        zone: str | Path | None = None,
        tile_px: int = DEFAULT_TILE_PX,
        aerial_date: str | None = None,
        options: MapOptions | None = None,
        dem: str | Path | Sequence[str | Path] | None = None,
    ) -> MapJob:
        """Create the job in ``root``, or reopen it when ``root`` holds the same job.

        Args:
            root: the job folder, created once every input is checked (a refused start leaves
                nothing behind: no folder without ``job.json``).
            checkpoint: the model (a flairlc checkpoint, e.g. from ``flairlc import-weights``).
            aerial: orthophoto tiles: a folder of ``.tif``/``.jp2`` tiles, a list of them, or one
                raster or VRT. Bands as for ``flairlc map`` (``aerial_bands`` names them).
            elevation: elevation tiles or raster, any tiling and resolution (read by coordinates).
            sentinel: Sentinel-2 series folder, for models that read it.
            zone: polygons (GeoPackage, shapefile…) to map: tiles outside are left out, pixels
                outside are nodata.
            tile_px: output tile side, pixels (see :data:`DEFAULT_TILE_PX` for its cost).
            aerial_date: the orthophoto's survey date or year (``YYYY-MM-DD``, ``YYYY``) when its
                tiles do not say it (:mod:`flairlc.mapping.acquisition`): the Sentinel-2 dates
                must fall in that year (:func:`~flairlc.mapping.coverage.check_dates`). Written in
                ``inputs/aerial.vrt``, where the tiles' maps read it; not part of ``job.json``.
            options: how the tiles are mapped (:class:`~flairlc.map_options.MapOptions`, default
                ``MapOptions()``); the window side is decided once for the area (``window``, else
                as ``map`` decides it for one raster of the area:
                :func:`~flairlc.mapping.blending.fit_window` up to ``max_window`` for aerial-only
                models, 512 for models that read Sentinel-2). Those that decide the map are
                written in ``job.json`` (:meth:`MapOptions.spec`): reopening the job with others
                is refused; the others (reader threads…) may change from run to run.
            dem: instead of ``elevation``: DSM/DTM tiles or raster (2 bands, metres: FLAIR-HUB's
                ``DEM_ELEV``), any tiling and resolution; the elevation band is computed from them
                as FLAIR-HUB's data path does (:mod:`flairlc.mapping.dem`).

        Raises:
            MappingInputError: a missing or mismatching input, or ``root`` holding another job.
        """
        if tile_px < 64:
            raise ValueError(f"tile_px must be at least 64 (got {tile_px})")
        if elevation is not None and dem is not None:
            raise MappingInputError("the elevation is given twice, as elevation tiles (--elevation) and as DSM/DTM "
                                    "tiles (--dem): pass one of them")
        options = MapOptions() if options is None else options
        root = Path(root)
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise MappingInputError(f"checkpoint {checkpoint} does not exist")
        if sentinel is not None and not Path(sentinel).is_dir():
            raise MappingInputError(f"Sentinel-2 folder {sentinel} does not exist")
        if zone is not None and not Path(zone).is_file():
            raise MappingInputError(f"zone file {zone} does not exist")
        aerial_mosaic = scan_tiles(aerial, "aerial")
        if aerial_mosaic.dtype != "uint8":
            raise MappingInputError(f"aerial tiles are {aerial_mosaic.dtype}: expected uint8")
        elevation_mosaic = scan_tiles(elevation, "elevation") if elevation is not None else None
        dem_mosaic, dem_descriptions = _scan_dem(dem) if dem is not None else (None, None)
        zone_geometry = _zone_geometry(Path(zone), aerial_mosaic.grid.crs) if zone else None
        grid = _job_grid(aerial_mosaic.grid, zone_geometry)
        model = _trained_model(checkpoint)
        acquisition = read_acquisition([t.path for t in aerial_mosaic.tiles], aerial_date)
        if options.window is None:
            options = replace(options, window=_default_window(model, grid, options))
        spec = {
            "format": JOB_FORMAT,
            "checkpoint": str(checkpoint.resolve()),
            "checkpoint_sha256": file_sha256(checkpoint),
            "aerial": [str(t.path) for t in aerial_mosaic.tiles],
            "elevation": [str(t.path) for t in elevation_mosaic.tiles] if elevation_mosaic else None,
            "sentinel": str(Path(sentinel).resolve()) if sentinel else None,
            "zone": str(Path(zone).resolve()) if zone else None,
            "tile_px": tile_px,
            "map": options.spec(),
        }
        if dem_mosaic is not None:  # (only then: job folders without one still resume)
            spec["dem"] = [str(t.path) for t in dem_mosaic.tiles]
        spec_path = root / "job.json"
        if spec_path.exists():
            try:
                previous = json.loads(spec_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise MappingInputError(f"{spec_path} cannot be read ({error}): delete it to start over") from None
            try:  # (the options as this version writes them: older job folders still resume)
                previous["map"] = MapOptions.from_spec(previous.get("map", {})).spec()
            except ValueError as error:
                raise MappingInputError(f"{spec_path}: {error}: delete it to start over") from None
            if previous != spec:
                keys = sorted(k for k in set(spec) | set(previous) if spec.get(k) != previous.get(k))
                raise MappingInputError(
                    f"{root} holds a map job with other settings ({', '.join(keys)} differ): give another "
                    "job folder, or delete this one to start over"
                )
        # Every input is read and checked before the folder is made; what a refused start wrote
        # is taken back, so that a folder without job.json is never left behind.
        fresh = not spec_path.exists()
        made = [p for p in (*reversed(root.absolute().parents), root.absolute(), root.absolute() / "inputs")
                if not p.exists()]
        check_writable_dir(root, "job folder")
        try:
            write_vrt(root / "inputs" / "aerial.vrt", aerial_mosaic.grid, aerial_mosaic.tiles,
                      aerial_mosaic.count, aerial_mosaic.dtype,
                      tags={ACQUISITION_TAG: acquisition.tag()} if acquisition else None)
            if elevation_mosaic is not None:
                write_vrt(root / "inputs" / "elevation.vrt", elevation_mosaic.grid, elevation_mosaic.tiles,
                          elevation_mosaic.count, elevation_mosaic.dtype)
            else:
                (root / "inputs" / "elevation.vrt").unlink(missing_ok=True)
            if dem_mosaic is not None:
                write_vrt(root / "inputs" / "dem.vrt", dem_mosaic.grid, dem_mosaic.tiles, dem_mosaic.count,
                          dem_mosaic.dtype, descriptions=dem_descriptions)
            else:
                (root / "inputs" / "dem.vrt").unlink(missing_ok=True)
            aerial_name = Path(aerial) if isinstance(aerial, (str, os.PathLike)) else aerial_mosaic.tiles[0].path.parent
            _check_inputs(root, model, options, sentinel, acquisition, aerial_name)
            if not spec_path.exists():
                write_json(spec_path, spec, indent=1)
        except BaseException:
            if fresh and not spec_path.exists():
                _undo_start(root, made)
            raise
        job = cls(root, spec, grid, aerial_mosaic, zone_geometry, options=options)
        job.tasks = job._plan()
        return job

    @classmethod
    def open(cls, root: str | Path) -> MapJob:
        """Reopen the job in ``root`` (e.g. in a worker), from its ``job.json``."""
        root = Path(root)
        spec_path = root / "job.json"
        if not spec_path.exists():
            raise MappingInputError(f"{root} holds no map job (no job.json)")
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        try:  # (older versions' job.json: options they did not write take their defaults)
            spec["map"] = MapOptions.from_spec(spec.get("map", {})).spec()
        except ValueError as error:
            raise MappingInputError(f"{spec_path}: {error}") from None
        aerial = scan_tiles(spec["aerial"], "aerial")
        zone_geometry = _zone_geometry(Path(spec["zone"]), aerial.grid.crs) if spec["zone"] else None
        job = cls(root, spec, _job_grid(aerial.grid, zone_geometry), aerial, zone_geometry)
        job.tasks = job._plan()
        return job

    def _plan(self) -> list[TileTask]:
        """The output tiles: cells of ``tile_px`` anchored at multiples of the tile side in the CRS,
        clipped to the grid, minus those outside the zone; each with its context (the area's
        windows that reach into it)."""
        from shapely.geometry import box

        tile, g = self.spec["tile_px"], self.grid
        window, overlap = self.options.window, self.options.overlap
        rows = window_starts(g.height, window, window - overlap)
        cols = window_starts(g.width, window, window - overlap)

        def context(starts: list[int], lo: int, hi: int, length: int) -> tuple[int, int]:
            reaching = [s for s in starts if s < hi and s + window > lo]
            return reaching[0], min(reaching[-1] + window, length)

        res_x, res_y = g.transform.a, -g.transform.e
        left, bottom, right, top = g.bounds
        shift_x = round((left - math.floor(left / (tile * res_x)) * tile * res_x) / res_x) % tile
        shift_y = round((math.ceil(top / (tile * res_y)) * tile * res_y - top) / res_y) % tile
        tasks = []
        for row in range(-shift_y, g.height, tile):
            for col in range(-shift_x, g.width, tile):
                c0, r0 = max(col, 0), max(row, 0)
                c1, r1 = min(col + tile, g.width), min(row + tile, g.height)
                x0, y0 = g.transform @ (c0, r0)
                x1, y1 = g.transform @ (c1, r1)
                if self.zone_geometry is not None and not self.zone_geometry.intersects(box(x0, y1, x1, y0)):
                    continue
                (ctx_c0, ctx_c1), (ctx_r0, ctx_r1) = context(cols, c0, c1, g.width), context(rows, r0, r1, g.height)
                cell_x, cell_y = g.transform @ (col, row)
                tasks.append(TileTask(_tile_name(cell_x, cell_y), (c0, r0, c1 - c0, r1 - r0),
                                      (ctx_c0, ctx_r0, ctx_c1 - ctx_c0, ctx_r1 - ctx_r0)))
        return tasks

    # --- progress ----------------------------------------------------------------------------
    def task(self, name: str) -> TileTask:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"no tile {name!r} in job {self.root}")

    def tile_km2(self, task: TileTask) -> float:
        return task.window[2] * task.window[3] * self.pixel_km2

    def pending(self) -> list[TileTask]:
        """The tiles not finished yet."""
        return [t for t in self.tasks if not self.is_done(t.name)]

    def shard(self, index: int, count: int) -> list[TileTask]:
        """Shard ``index`` of ``count`` (0-based): every ``count``-th tile from ``index`` in
        row-major order, the same split on every rerun."""
        if not 0 <= index < count:
            raise ValueError(f"shard {index}/{count}: the index must be in [0, {count})")
        return self.tasks[index::count]

    def missing_input_tiles(self) -> dict[str, list[list[float]]]:
        """Cells of the orthophoto and elevation tilings with no tile, inside the area
        (left, bottom, right, top): mapped as nodata."""
        missing = {"aerial": [list(g) for g in self.aerial.gaps()]}
        if self.spec["elevation"]:
            missing["elevation"] = [list(g) for g in scan_tiles(self.spec["elevation"], "elevation").gaps()]
        if self.spec.get("dem"):
            missing["dem"] = [list(g) for g in scan_tiles(self.spec["dem"], "DEM").gaps()]
        return missing

    # --- the mosaic --------------------------------------------------------------------------
    def finish(self, engine: str = "local", wall_seconds: float | None = None,
               outcomes: Iterable[TileOutcome] = (), single_cog: str | Path | None = None) -> dict[str, Any]:
        """Write the mosaic VRT of the finished tiles, its QGIS style and ``summary.json``.

        Returns the summary (tiles total/done/failed/empty, km², throughput of this run,
        failures with their tile and error). With ``single_cog`` and every tile done, the mosaic
        is also copied to one COG (BigTIFF when large) there; if that fails, the summary is
        written all the same, with the error as ``single_cog_error``.
        """
        done = [t for t in self.tasks if self.is_done(t.name)]
        failures = {}
        for t in self.tasks:
            path = self.failure_path(t.name)
            if path.exists() and not self.is_done(t.name):
                try:
                    record = json.loads(path.read_text(encoding="utf-8"))
                    failures[t.name] = {"error": record["error"]} | ({"input": record["input"]} if "input" in record else {})
                except (OSError, ValueError, KeyError):
                    failures[t.name] = {"error": "unknown error (unreadable failure record)"}
        records = {}
        for t in done:
            try:
                records[t.name] = json.loads(self.record_path(t.name).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                records[t.name] = {}
        empty = [name for name, r in records.items() if r.get("empty")]
        nomen = None
        if done:
            nomen = self._write_mosaic([t.name for t in done])
        outcomes = list(outcomes)
        computed = [o for o in outcomes if o.status == "done"]
        km2_run = sum(o.km2 for o in computed)
        summary = {
            "job": str(self.root.resolve()),
            "engine": engine,
            "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "tiles": {"total": len(self.tasks), "done": len(done), "failed": len(failures),
                      "pending": len(self.tasks) - len(done) - len(failures), "without_aerial_data": len(empty)},
            "area_km2": {"total": sum(self.tile_km2(t) for t in self.tasks),
                         "done": sum(self.tile_km2(t) for t in done),
                         "nodata": sum(r.get("nodata_km2", 0.0) for r in records.values())},
            "this_run": {"tiles_computed": len(computed), "tiles_skipped": sum(o.status == "skipped" for o in outcomes),
                         "km2": km2_run, "seconds": wall_seconds,
                         "km2_per_hour": km2_run / wall_seconds * 3600 if wall_seconds else None,
                         "tile_seconds": sum(o.seconds for o in computed)},
            "missing_input_tiles": self.missing_input_tiles(),
            "failures": [{"tile": name, **failure} for name, failure in sorted(failures.items())],
            "tiles_without_aerial_data": sorted(empty),
            "mosaic": str(self.mosaic_path) if done else None,
        }
        if single_cog is not None and len(done) == len(self.tasks) and done:
            try:
                summary["single_cog"] = str(finalize_cog(self.mosaic_path, single_cog, resampling="nearest"))
            except Exception as error:  # noqa: BLE001 - the tiles are done: the summary is written whatever failed
                summary["single_cog_error"] = f"{type(error).__name__}: {' '.join(str(error).split())}"
        write_json(self.summary_path, summary, indent=1)
        if nomen is not None:
            write_qml(self.mosaic_path, nomen)
        return summary

    def _write_mosaic(self, names: list[str]) -> nomenclature.Nomenclature | None:
        tiles = []
        for name in names:
            with rasterio.open(self.tile_path(name)) as ds:
                tags = ds.tags()
                colormap = _colormap(ds)
                tiles.append(RasterTile(self.tile_path(name).resolve(), Grid(ds.crs, ds.transform, ds.width, ds.height),
                                        1, "uint8"))
        keep = {k: v for k, v in tags.items() if k.startswith("FLAIRLC_") and k not in ("FLAIRLC_TILE",)}
        write_vrt(self.mosaic_path, self.grid, tiles, 1, "uint8", nodata=nomenclature.NODATA_VALUE,
                  colormap=colormap, tags=keep)
        if self.options.probabilities:
            probas = []
            for name in names:
                with rasterio.open(self.proba_path(name)) as ds:
                    count, descriptions = ds.count, ds.descriptions
                    probas.append(RasterTile(self.proba_path(name).resolve(),
                                             Grid(ds.crs, ds.transform, ds.width, ds.height), ds.count, "uint8"))
            write_vrt(self.root / "probabilities.vrt", self.grid, probas, count, "uint8", with_mask=False,
                      descriptions=[d or "" for d in descriptions])
        try:
            return nomenclature.get(json.loads(keep["FLAIRLC_CLASSES"])) if "FLAIRLC_CLASSES" in keep else None
        except ValueError:
            return None


def _colormap(ds) -> dict[int, tuple[int, ...]] | None:
    try:
        return ds.colormap(1)
    except ValueError:
        return None


def _undo_start(root: Path, made: list[Path]) -> None:
    """Remove what a refused :meth:`MapJob.create` wrote: the input VRTs, and the folders it made
    (when empty: another process may be starting the same job)."""
    for name in ("aerial.vrt", "elevation.vrt", "dem.vrt"):
        (root / "inputs" / name).unlink(missing_ok=True)
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            pass


def _trained_model(checkpoint: Path) -> TrainedModel:
    """The checkpoint's model on the CPU, or a :class:`MappingInputError` saying why not."""
    from flairlc.inference import CheckpointError, load_trained_model
    from flairlc.mapping.predictor import check_mapped_inputs

    try:
        model = load_trained_model(checkpoint)
    except CheckpointError as error:
        raise MappingInputError(str(error)) from None
    check_mapped_inputs(model, str(checkpoint))
    return model


def _check_inputs(root: Path, model: TrainedModel, options: MapOptions, sentinel,
                  acquisition: AerialAcquisition | None, aerial_name: Path) -> None:
    """Before any tile: the mosaics hold the bands the model reads, at a usable resolution, and the
    elevation and the Sentinel-2 series cover the aerial tiles in space and time (as ``map``
    checks one raster)."""
    from flairlc.mapping.inputs import AerialSource, SentinelSeries

    if model.uses_sentinel and sentinel is None:
        raise MappingInputError("the model uses Sentinel-2: pass the series folder (--sentinel DIR)")
    elevation, dem = root / "inputs" / "elevation.vrt", root / "inputs" / "dem.vrt"
    with AerialSource(root / "inputs" / "aerial.vrt", elevation if elevation.exists() and model.uses_aerial else None,
                      options.resolution_policy, coverage_policy=options.coverage_policy,
                      bands=model.bands if model.uses_aerial else ("R",),
                      raster_bands=options.aerial_bands,
                      dem_path=dem if dem.exists() and model.uses_aerial else None) as source:
        if sentinel is not None and model.uses_sentinel:
            series = SentinelSeries(sentinel, source.crs, model.reference_date, aerial=source.extent,
                                    aerial_path=source.aerial_path, coverage_policy=options.coverage_policy,
                                    resolution_policy=options.resolution_policy,
                                    need_masks=model.series_preprocessing.filter_clouds)
            series.close()
            check_dates(series.folder, series.dates, acquisition, aerial_name, options.coverage_policy)


def _default_window(model: TrainedModel, grid: Grid, options: MapOptions) -> int:
    """The window ``map`` would use over one raster of the area: 512 for models that read
    Sentinel-2 (their training patch), else :func:`fit_window` up to ``max_window``."""
    from flairlc.mapping.infer import SENTINEL_MODEL_WINDOW_PX

    if model.uses_sentinel:
        return SENTINEL_MODEL_WINDOW_PX
    return fit_window(grid.height, grid.width, options.max_window, options.overlap)


def _scan_dem(dem: str | Path | Sequence[str | Path]) -> tuple[Mosaic, list[str]]:
    """The DSM/DTM tiles as a mosaic, checked as a DEM raster (the first tile named), and the
    band descriptions the mosaic's VRT carries (the first tile's: which band is the DSM)."""
    from flairlc.mapping.dem import dem_band_indexes

    mosaic = scan_tiles(dem, "DEM")
    first = mosaic.tiles[0].path
    with rasterio.open(first) as ds:
        descriptions = ds.descriptions
    dem_band_indexes(first, mosaic.count, (mosaic.dtype,) * mosaic.count, descriptions)
    return mosaic, [d or "" for d in descriptions]


def _zone_geometry(path: Path, crs):
    """The union of the zone file's polygons, in ``crs`` (a shapely geometry)."""
    from shapely.geometry import shape
    from shapely.ops import unary_union

    from flairlc.mapping.areas import read_zones

    zones = read_zones(path, None, crs)
    if not zones:
        raise MappingInputError(f"zone file {path} holds no polygon")
    return unary_union([shape(g) for _, g in zones])


def _job_grid(aerial: Grid, zone_geometry) -> Grid:
    """The aerial mosaic's grid, clipped to the zone's bounding box (whole pixels)."""
    if zone_geometry is None:
        return aerial
    left, bottom, right, top = zone_geometry.bounds
    inverse = ~aerial.transform
    c0, r0 = inverse @ (left, top)
    c1, r1 = inverse @ (right, bottom)
    c0, r0 = max(math.floor(c0), 0), max(math.floor(r0), 0)
    c1, r1 = min(math.ceil(c1), aerial.width), min(math.ceil(r1), aerial.height)
    if c1 <= c0 or r1 <= r0:
        raise MappingInputError("the zone does not overlap the aerial tiles")
    return aerial.window_grid(c0, r0, c1 - c0, r1 - r0)


# --- one tile ----------------------------------------------------------------------------------
_PREDICTORS: dict[tuple[str, str, str, str], Any] = {}


def load_predictor(checkpoint: str | Path, device: str = "cpu", sha256: str | None = None,
                   runtime: str = "torch") -> Any:
    """The model of ``checkpoint`` on ``device``, loaded once per process (tile tasks reuse it);
    with ``runtime="compile"`` its network is compiled by ``torch.compile``, with ``"onnx"`` it runs
    in ONNX Runtime (:mod:`flairlc.mapping.runtime`)."""
    from flairlc.inference import load_trained_model
    from flairlc.mapping.runtime import with_runtime

    key = (str(checkpoint), device, sha256 or "", runtime)
    if key not in _PREDICTORS:
        _PREDICTORS.clear()
        _PREDICTORS[key] = with_runtime(load_trained_model(checkpoint, map_location=device), runtime)
    return _PREDICTORS[key]


def map_tile(job: MapJob, task: TileTask, predictor: Any, device: str = "cpu") -> TileOutcome:
    """Map one output tile of ``job`` (idempotent: a finished tile is skipped).

    The tile's context (a region of the aerial mosaic) is mapped by
    :func:`~flairlc.mapping.map_raster` into ``JOB/work/`` (resumable there), then the tile is cut out to ``JOB/tiles/NAME.tif``
    (atomically), with pixels outside the zone set to nodata, and its record written.
    """
    from flairlc.mapping.infer import map_raster

    if job.is_done(task.name):
        return TileOutcome(task.name, "skipped")
    t0 = time.perf_counter()
    work = job.root / "work"
    tiles_here = job.aerial.tiles_in(job.grid.window_grid(*task.context).bounds)
    options = job.options
    nodata_km2 = job.tile_km2(task)
    empty = not tiles_here
    outside = _outside_zone(job, task)
    tags = {"FLAIRLC_JOB": job.spec["checkpoint_sha256"][:16], "FLAIRLC_TILE": task.name}
    if empty:
        _write_nodata_tile(job, task, predictor, tags)
    else:
        col, row = job.grid_offset
        region = Window(task.context[0] + col, task.context[1] + row, task.context[2], task.context[3])
        context_map = work / f"{task.name}.context.tif"
        context_proba = work / f"{task.name}.context.proba.tif" if options.probabilities else None
        result = _without_date_warnings(map_raster)(
            predictor, job.aerial_vrt, context_map, job.elevation_vrt, job.spec["sentinel"], options=options,
            dem_path=job.dem_vrt, region=region, probabilities_path=context_proba, progress=False, device=device,
            predictor_id=job.spec["checkpoint_sha256"],
        )
        if context_proba is not None:
            crop_to_cog(context_proba, task.inner, job.proba_path(task.name), "average", outside, tags)
        crop_to_cog(context_map, task.inner, job.tile_path(task.name), "nearest", outside, tags)
        with rasterio.open(job.tile_path(task.name)) as ds:
            nodata_km2 = float(np.count_nonzero(ds.read(1) == nomenclature.NODATA_VALUE)) * job.pixel_km2
        for path in (context_map, context_proba, context_map.with_suffix(".qml")):
            if path is not None:
                path.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    windows = 0 if empty else result.windows_predicted
    write_json(job.record_path(task.name), {
        "tile": task.name, "window": list(task.window), "context": list(task.context),
        "bounds": list(job.grid.window_grid(*task.window).bounds), "km2": job.tile_km2(task),
        "nodata_km2": nodata_km2, "empty": empty, "seconds": seconds, "windows": windows,
        "worker": f"{socket.gethostname()}:{os.getpid()}", "device": device,
        "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
    }, indent=1)
    job.failure_path(task.name).unlink(missing_ok=True)
    return TileOutcome(task.name, "empty" if empty else "done", job.tile_km2(task), seconds, windows)


def _without_date_warnings(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with :class:`~flairlc.mapping.coverage.SeriesDatesWarning` silenced: the job
    judged the Sentinel-2 dates once, when it was created, and says it once, not per tile."""
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SeriesDatesWarning)
            return function(*args, **kwargs)
    return call


def _outside_zone(job: MapJob, task: TileTask) -> np.ndarray | None:
    """bool ``(h, w)``: pixels of the tile outside the job's zone (None without a zone)."""
    if job.zone_geometry is None:
        return None
    from rasterio.features import geometry_mask

    grid = job.grid.window_grid(*task.window)
    return geometry_mask([job.zone_geometry], out_shape=(grid.height, grid.width), transform=grid.transform)


def _write_nodata_tile(job: MapJob, task: TileTask, predictor: Any, tags: dict[str, str]) -> None:
    """A tile with no aerial data: all nodata, with the classes' colour table and tags."""
    from flairlc.mapping.cog import working_profile
    from flairlc.mapping.infer import describe_class_map, predictor_nomenclature

    grid = job.grid.window_grid(*task.window)
    template = {"crs": grid.crs, "transform": grid.transform, "width": grid.width, "height": grid.height}
    nomen = predictor_nomenclature(predictor)
    work = job.root / "work" / f"{task.name}.nodata.tif"
    work.parent.mkdir(parents=True, exist_ok=True)
    outputs = [(work, job.tile_path(task.name), 1, nomenclature.NODATA_VALUE)]
    if job.options.probabilities:
        outputs.append((work.with_suffix(".proba.tif"), job.proba_path(task.name), predictor.num_classes, None))
    for path, _, count, nodata in outputs:
        with rasterio.open(path, "w", **working_profile(template, count, "uint8", nodata)) as ds:
            ds.write(np.full((count, grid.height, grid.width), nodata or 0, dtype=np.uint8))
            describe_class_map(ds, predictor.num_classes, nomen)
            ds.update_tags(**tags)
    # The probabilities first: the class map's COG is what marks the tile done.
    for path, final, _, _ in reversed(outputs):
        finalize_cog(path, final)
        path.unlink(missing_ok=True)


def record_failure(job: MapJob, name: str, error: BaseException | str, attempts: int) -> TileOutcome:
    """Write ``JOB/failures/NAME.json`` for a tile that failed after ``attempts`` attempts (with
    ``input``, the file at fault, when an input could not be read)."""
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(error))
    else:
        text, trace = str(error), ""
    failed_input = {"input": str(error.path)} if isinstance(error, MappingReadError) else {}
    write_json(job.failure_path(name), {"tile": name, "error": text, **failed_input, "attempts": attempts,
                                        "traceback": trace,
                                        "at": datetime.datetime.now().isoformat(timespec="seconds")}, indent=1)
    return TileOutcome(name, "failed", error=text)


# --- engines -----------------------------------------------------------------------------------
def parse_shard(text: str | None, environ: dict[str, str] | None = None) -> tuple[int, int] | None:
    """A shard ``(index, count)`` from ``"i/n"``, else from the environment (SLURM job array:
    ``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT`` (minus ``SLURM_ARRAY_TASK_MIN``); torchrun:
    ``RANK``/``WORLD_SIZE``); None for all tiles."""
    environ = dict(os.environ) if environ is None else environ
    if text:
        try:
            index, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard takes INDEX/COUNT, e.g. 0/4, not {text!r}") from None
    elif "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
        index = int(environ["SLURM_ARRAY_TASK_ID"]) - int(environ.get("SLURM_ARRAY_TASK_MIN", 0))
        count = int(environ["SLURM_ARRAY_TASK_COUNT"])
    elif "RANK" in environ and "WORLD_SIZE" in environ:
        index, count = int(environ["RANK"]), int(environ["WORLD_SIZE"])
    else:
        return None
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: the index must be in [0, {count})")
    return index, count


def progress_bar(job: MapJob, tasks: list[TileTask], desc: str):
    """A tqdm bar over ``tasks`` in km² (tiles done/total, km²/h and the ETA in the postfix)."""
    from tqdm import tqdm

    total = sum(job.tile_km2(t) for t in tasks)
    return tqdm(total=total, unit="km²", desc=desc,
                bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} km² [{elapsed}<{remaining}{postfix}]")


class TileAccounting:
    """Tiles done, km² and km²/h of a run, shown on a bar."""

    def __init__(self, job: MapJob, tasks: list[TileTask], progress: bool, desc: str) -> None:
        self.job, self.total = job, len(tasks)
        self.done_before = sum(job.is_done(t.name) for t in tasks)
        self.bar = progress_bar(job, tasks, desc) if progress else None
        if self.bar is not None:
            self.bar.update(sum(job.tile_km2(t) for t in tasks if job.is_done(t.name)))
        self.t0 = time.perf_counter()
        self.km2 = 0.0
        self.outcomes: list[TileOutcome] = []

    def add(self, outcome: TileOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status in ("done", "empty"):
            self.km2 += outcome.km2
            if self.bar is not None:
                self.bar.update(outcome.km2)
        if self.bar is not None:
            finished = self.done_before + sum(o.status in ("done", "empty") for o in self.outcomes)
            failed = sum(o.status == "failed" for o in self.outcomes)
            rate = self.km2 / max(time.perf_counter() - self.t0, 1e-9) * 3600
            self.bar.set_postfix_str(f"tiles {finished}/{self.total}" + (f", {failed} failed" if failed else "")
                                     + f", {rate:.2f} km²/h")
            if outcome.status == "failed":
                self.bar.write(f"tile {outcome.name} failed: {outcome.error}")

    def close(self) -> float:
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.t0


def run_local(
    job: MapJob,
    device: str = "cpu",
    shard: tuple[int, int] | None = None,
    retries: int = 1,
    progress: bool = True,
    threads: int | None = None,
    tile_function: Callable[[MapJob, TileTask, Any, str], TileOutcome] = map_tile,
    predictor: Any = None,
) -> RunResult:
    """Map the job's tiles (or one shard of them) in this process, one after another.

    A tile that raises is tried again up to ``retries`` more times, then recorded in
    ``JOB/failures/`` while the others go on. ``tile_function`` maps one tile
    (:func:`map_tile`); ``predictor`` replaces the job's checkpoint (already on ``device``). Returns the outcome of every tile of the shard and the wall time.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    tasks = job.shard(*shard) if shard else list(job.tasks)
    desc = f"tiles of {job.root.name}" + (f" (shard {shard[0]}/{shard[1]})" if shard else "")
    accounting = TileAccounting(job, tasks, progress, desc)
    try:
        for task in tasks:
            if job.is_done(task.name):
                accounting.add(TileOutcome(task.name, "skipped"))
                continue
            if predictor is None:
                predictor = load_predictor(job.spec["checkpoint"], device, job.spec["checkpoint_sha256"],
                                           job.options.runtime)
            for attempt in range(1, retries + 2):
                try:
                    accounting.add(tile_function(job, task, predictor, device))
                    break
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as error:  # noqa: BLE001 - recorded, the job goes on
                    if attempt == retries + 1:
                        accounting.add(record_failure(job, task.name, error, attempt))
    finally:
        seconds = accounting.close()
    return RunResult(accounting.outcomes, seconds)


@dataclass
class RunResult:
    """The outcome of every tile an engine ran, and its wall time, seconds."""

    outcomes: list[TileOutcome]
    seconds: float

    @property
    def failed(self) -> list[TileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [asdict(o) for o in self.outcomes]
