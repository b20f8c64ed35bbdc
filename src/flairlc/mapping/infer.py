"""Mapping a raster of any size with a trained predictor: tiled, blended, resumable inference.

How it works:

* The aerial grid is cut into windows of ``window`` pixels stepping by ``window - overlap``
  (:func:`~flairlc.mapping.blending.window_starts`); the last row/column of windows is shifted
  inward, and rasters smaller than a window are padded by reflection.
* Work is organised in *chunks*: one row of windows (a *strip*) within a *column band* of
  ``band_width`` pixels. Per band, strips are processed top to bottom; probabilities weighted by
  a Hann taper are accumulated in a buffer of ``(K, window, band_width + 2 window)`` floats that
  slides down. After strip ``i`` the rows ``[ys[i], ys[i+1])`` are final: their argmax is written
  to a working file and the buffer shifts. Memory is bounded by window, batch size and band
  width, never by the raster size. Windows straddling two bands are predicted twice.
* Threads (:mod:`flairlc.mapping.pipeline`): ``read_threads`` readers read windows (and their
  validity, once) through file handles of their own, a batch thread stacks them (in pinned
  memory for CUDA), this thread predicts and blends, and a writer thread writes the strips.
* Resuming: the working file ``MAP.tif.partial`` (+ ``MAP.tif.proba.partial``) sits beside the
  output with a JSON sidecar ``MAP.tif.partial.json`` listing finished chunks, rewritten
  atomically after each flush of the working files (every few seconds, and at the end). A second run with the same parameters skips finished chunks
  (re-predicting the few window rows whose overlap feeds the first unfinished strip); different
  parameters start over with a warning. The final COG is written under a temporary name and
  renamed; the working files are then removed.
* Several processes / GPUs: each of ``world_size`` ranks takes a contiguous range of strips (in
  every band) and writes its own ``MAP.tif.rank{r}.partial``. Launch one process per GPU, e.g.
  ``torchrun --nproc-per-node 4 script.py`` with ``map_raster(..., rank=int(os.environ["RANK"]),
  world_size=int(os.environ["WORLD_SIZE"]), device=f"cuda:{os.environ['LOCAL_RANK']}")`` (under
  Lightning, ``trainer.global_rank`` / ``trainer.world_size``). Ranks other than 0 return once
  their strips are done; rank 0 then waits for every rank's sidecar to be complete (a shared
  file system is required), copies their strips into its own working file and writes the COG.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window
from tqdm import tqdm

from flairlc import nomenclature
from flairlc.data.bands import AERIAL_BANDS
from flairlc.map_options import MapOptions
from flairlc.mapping.acquisition import read_acquisition
from flairlc.mapping.blending import blend_weights, fit_window, window_starts
from flairlc.mapping.cog import finalize_cog, working_profile
from flairlc.mapping.coverage import check_dates
from flairlc.mapping.inputs import AerialSource, MappingInputError, SentinelSeries
from flairlc.mapping.pipeline import StripWriter, default_read_threads, ordered_map, prefetched
from flairlc.mapping.predictor import Predictor, check_mapped_inputs
from flairlc.mapping.qml import write_qml
from flairlc.outputs import check_writable, same_file, write_json

#: Window side of models that read Sentinel-2: the FLAIR patch they were trained on, pixels.
SENTINEL_MODEL_WINDOW_PX = 512
#: Seconds between checks of the other ranks' progress by rank 0.
_MERGE_POLL_S = 2.0


@dataclass(frozen=True)
class MapResult:
    """What :func:`map_raster` produced.

    Attributes:
        map_path: the class map COG (None on ranks other than 0).
        probabilities_path: the probability COG, if asked (None on ranks other than 0).
        qml_path: the QGIS style beside the map (None if not written).
        area_km2: area of the grid processed by this rank in this run, km².
        seconds: wall time of this run, s.
        km2_per_hour: throughput of this run, km²/h.
        windows_predicted: windows passed through the predictor in this run.
        chunks_resumed: chunks found already finished in a previous run.
    """

    map_path: Path | None
    probabilities_path: Path | None
    qml_path: Path | None
    area_km2: float
    seconds: float
    km2_per_hour: float
    windows_predicted: int
    chunks_resumed: int


def predictor_nomenclature(predictor: Predictor) -> nomenclature.Nomenclature | None:
    """The predictor's nomenclature (its ``nomenclature`` attribute, e.g. a checkpoint's), else
    FLAIR's of its class count, else None (classes then go unnamed)."""
    nomen = getattr(predictor, "nomenclature", None)
    if isinstance(nomen, nomenclature.Nomenclature) and nomen.num_classes == predictor.num_classes:
        return nomen
    return nomenclature.for_class_count(predictor.num_classes)


@dataclass(frozen=True)
class _Layout:
    height: int
    width: int
    window: int
    ys: list[int]
    xs: list[int]
    bands: list[tuple[int, int]]

    @classmethod
    def build(cls, height: int, width: int, window: int, overlap: int, band_width: int) -> _Layout:
        if not 0 <= overlap < window:
            raise ValueError(f"overlap ({overlap}) must be in [0, window={window})")
        if band_width < window:
            raise ValueError(f"band_width ({band_width}) must be at least the window ({window})")
        stride = window - overlap
        bands = [(b, min(b + band_width, width)) for b in range(0, width, band_width)]
        return cls(height, width, window, window_starts(height, window, stride),
                   window_starts(width, window, stride), bands)

    def strip_rows(self, i: int) -> tuple[int, int]:
        """Output rows made final by strip ``i``."""
        end = self.ys[i + 1] if i + 1 < len(self.ys) else self.height
        return self.ys[i], end

    def band_windows(self, b: int) -> list[int]:
        x0, x1 = self.bands[b]
        return [x for x in self.xs if x < x1 and x + self.window > x0]

    def rank_strips(self, rank: int, world_size: int) -> range:
        n = len(self.ys)
        return range(rank * n // world_size, (rank + 1) * n // world_size)


def _file_id(path: Path | None) -> Any:
    if path is None:
        return None
    st = path.stat()
    return [str(path.resolve()), st.st_size, int(st.st_mtime)]


class _WorkFiles:
    """The working files of one rank: class map, optional probabilities, JSON sidecar."""

    def __init__(self, out_path: Path, rank: int, world_size: int, with_proba: bool) -> None:
        stem = out_path.name if world_size == 1 else f"{out_path.name}.rank{rank}"
        self.classes = out_path.with_name(stem + ".partial")
        self.proba = out_path.with_name(stem + ".proba.partial") if with_proba else None
        self.sidecar = out_path.with_name(stem + ".partial.json")

    def paths(self) -> list[Path]:
        return [p for p in (self.classes, self.proba, self.sidecar) if p is not None]

    def remove(self) -> None:
        for p in self.paths():
            p.unlink(missing_ok=True)

    def load_done(self, params: dict[str, Any]) -> set[str]:
        """Finished chunk keys of a previous run with the same parameters (else start over)."""
        if not self.sidecar.exists() or not self.classes.exists() or (self.proba and not self.proba.exists()):
            self.remove()
            return set()
        try:
            state = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        if state.get("params") != params:
            warnings.warn(
                f"working files {self.classes} come from a run with other parameters: starting over",
                stacklevel=3,
            )
            self.remove()
            return set()
        return set(state.get("done", []))

    def create(self, grid: dict[str, Any], num_classes: int, nomen: nomenclature.Nomenclature | None) -> None:
        with rasterio.open(self.classes, "w", **working_profile(grid, 1, "uint8", nomenclature.NODATA_VALUE)) as ds:
            describe_class_map(ds, num_classes, nomen)
        if self.proba is not None:
            with rasterio.open(self.proba, "w", **working_profile(grid, num_classes, "uint8", None)) as ds:
                describe_class_map(ds, num_classes, nomen)

    def save_done(self, params: dict[str, Any], done: set[str], complete: bool) -> None:
        write_json(self.sidecar, {"params": params, "done": sorted(done), "complete": complete}, indent=1)


def describe_class_map(ds: Any, num_classes: int, nomen: nomenclature.Nomenclature | None) -> None:
    """What a map file carries: for a class map (1 band), the colour table and the
    nomenclature tags; for probabilities (``num_classes`` bands), the class names as band
    descriptions; for both, ``FLAIRLC_NUM_CLASSES``."""
    if nomen is not None and ds.count == 1:
        ds.write_colormap(1, nomen.colormap())
        ds.update_tags(**nomenclature.to_tags(nomen))
    elif nomen is not None:
        for k, name in enumerate(nomen.names):
            ds.set_band_description(k + 1, name)
    if ds.count == 1:
        ds.update_tags(FLAIRLC_NUM_CLASSES=str(num_classes))


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    """Pad ``(..., h, w)`` to ``(..., size, size)`` by reflection at the bottom/right."""
    h, w = array.shape[-2:]
    if h == size and w == size:
        return array
    pad = [(0, 0)] * (array.ndim - 2) + [(0, size - h), (0, size - w)]
    return np.pad(array, pad, mode="reflect" if min(h, w) > 1 else "edge")


@dataclass
class _Window:
    """One window read by a reader thread: its place, pixels, validity and Sentinel-2 series."""

    row0: int
    col0: int
    #: uint8 ``(5, window, window)``, padded by reflection at the raster's bottom/right edge.
    aerial: np.ndarray
    #: bool ``(h, w)``: the window's valid pixels (before padding).
    valid: np.ndarray
    #: The preprocessed series and its day offsets (models that read Sentinel-2), else None.
    series: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class _Batch:
    """Windows grouped for one predictor call, in host memory (pinned when the device is CUDA)."""

    windows: list[_Window]
    aerial: torch.Tensor
    sentinel: dict[str, torch.Tensor] | None


@dataclass
class _Strip:
    """One finished strip of a band, for the writer thread."""

    window: Window
    classes: np.ndarray
    proba: np.ndarray | None


class _Mapper:
    """Runs the chunks of one rank (see the module docstring).

    Reader threads (:func:`~flairlc.mapping.pipeline.ordered_map`) read each window and its
    validity once, and preprocess its Sentinel-2 series; a batch thread stacks them into (pinned)
    host buffers; this thread copies batches to the device (asynchronously from pinned memory),
    runs the predictor and blends; the blending buffers live on ``device`` as torch tensors, so on
    a GPU the probabilities never leave it: only the uint8 classes (and probabilities, if asked)
    are copied back, and written by the caller's writer. No work on the host grows with the class
    count except the probabilities asked for.
    """

    def __init__(self, predictor: Predictor, source: AerialSource, sentinel: SentinelSeries | None,
                 layout: _Layout, options: MapOptions, device: str, with_proba: bool) -> None:
        self.predictor = predictor
        self.source = source
        self.sentinel = sentinel
        self.layout = layout
        self.batch_size = options.batch_size
        self.device = torch.device(device)
        self.with_proba = with_proba
        self.weights = torch.from_numpy(blend_weights(layout.window)).to(self.device)
        self.windows_predicted = 0
        #: Batches read ahead while the model runs (0: read in turn with the model, one thread).
        self.prefetch = options.prefetch
        #: Threads reading windows (each through its own file handles).
        self.read_threads = default_read_threads(source.decodes_jpeg2000) if options.read_threads is None else options.read_threads
        #: Run the model under bfloat16 autocast.
        self.bf16 = options.precision == "bf16"
        self.pin_memory = self.device.type == "cuda"
        if sentinel is not None:
            from flairlc.data.sentinel import SeriesPreprocessing

            preprocessing = getattr(predictor, "series_preprocessing", None)
            self.preprocessing = preprocessing or SeriesPreprocessing(reference_date=predictor.reference_date)

    def _read_window(self, place: tuple[int, int]) -> _Window | None:
        """Read the window at ``(row0, col0)`` (a reader thread), or None when it holds no data."""
        lay, win = self.layout, self.layout.window
        row0, col0 = place
        h, w = min(win, lay.height - row0), min(win, lay.width - col0)
        if (h, w) == (win, win):
            aerial, valid = self.source.read(Window(col0, row0, w, h), out=np.empty((5, win, win), np.uint8))
        else:
            aerial, valid = self.source.read(Window(col0, row0, w, h))
            aerial = _pad_to(aerial, win)
        if not valid.any():
            return None  # nothing to predict; neighbours (or nodata) cover these pixels
        return _Window(row0, col0, aerial, valid, self._series(row0, col0) if self.sentinel is not None else None)

    def _series(self, row0: int, col0: int) -> tuple[np.ndarray, np.ndarray]:
        """The Sentinel-2 window centred on an aerial window, preprocessed as in training."""
        s, win = self.predictor.sat_patch_size, self.layout.window
        x, y = self.source.transform @ (col0 + win / 2, row0 + win / 2)
        data = self.sentinel.read_window(x, y, s)
        masks = self.sentinel.read_masks_window(x, y, s) if self.preprocessing.filter_clouds else None
        return self.preprocessing.apply(data, masks, self.sentinel.dates)

    def _batch(self, windows: list[_Window]) -> _Batch:
        """Stack windows into one host batch (pinned for a CUDA device)."""
        win = self.layout.window
        aerial = torch.empty((len(windows), 5, win, win), dtype=torch.uint8, pin_memory=self.pin_memory)
        np.stack([w.aerial for w in windows], out=aerial.numpy())
        sentinel = None
        if self.sentinel is not None:
            from flairlc.data.collate import pad_series

            series, pad_mask = pad_series([torch.from_numpy(w.series[0]) for w in windows])
            dates_days, _ = pad_series([torch.from_numpy(w.series[1]) for w in windows])
            sentinel = {"sentinel": series, "dates_days": dates_days, "sentinel_pad_mask": pad_mask}
            if self.pin_memory:
                sentinel = {key: value.pin_memory() for key, value in sentinel.items()}
        return _Batch(windows, aerial, sentinel)

    def _batches(self, rows: list[int], cols: list[int]) -> Iterator[_Batch]:
        """The windows with data of window rows ``rows`` (indices into ``ys``), row by row, read
        and grouped into batches. Batches run across window rows, so every batch but the last is
        full: a GPU gets the batch size it was given, and a compiled network sees one shape."""
        threads = self.read_threads if self.prefetch else 0
        groups = self._window_groups(rows, cols, max(threads, 1))
        read = ordered_map(self._read_group, groups, threads, ahead=2 * threads, lane=lambda group: group[0],
                           thread_end=self._release_handles)
        pending: list[_Window] = []
        try:
            for windows in read:
                for window in windows:
                    if window is None:
                        continue
                    pending.append(window)
                    if len(pending) == self.batch_size:
                        yield self._batch(pending)
                        pending = []
            if pending:
                yield self._batch(pending)
        finally:
            read.close()  # stops the reader threads

    def _window_groups(self, rows: list[int], cols: list[int], threads: int) -> list[tuple[int, list[tuple[int, int]]]]:
        """The windows of ``rows`` as ``(lane, [(row0, col0), ...])``: each window row cut into
        ``threads`` runs of neighbouring windows, the same columns in the same lane (reader
        thread) from row to row, so that the blocks two windows share are decoded once, in that
        thread's handles. With fewer windows in a row than threads, the lanes take turns."""
        per_row = min(threads, len(cols))
        runs = [cols[j * len(cols) // per_row:(j + 1) * len(cols) // per_row] for j in range(per_row)]
        groups = []
        for n, k in enumerate(rows):
            for j, run in enumerate(runs):
                lane = j if per_row == threads else n * per_row + j
                groups.append((lane, [(self.layout.ys[k], col0) for col0 in run]))
        return groups

    def _release_handles(self) -> None:
        """Close the files a reader thread opened (as it ends: every band starts new readers)."""
        self.source.release_thread_handles()
        if self.sentinel is not None:
            self.sentinel.release_thread_handles()

    def _read_group(self, group: tuple[int, list[tuple[int, int]]]) -> list[_Window | None]:
        """The windows of a group, read in turn (a reader thread)."""
        return [self._read_window(place) for place in group[1]]

    def _predict(self, batch: _Batch) -> torch.Tensor:
        win, n = self.layout.window, len(batch.windows)
        to_device = dict(device=self.device, non_blocking=self.pin_memory)
        inputs: dict[str, torch.Tensor] = {"aerial": batch.aerial.to(**to_device)}
        if batch.sentinel is not None:
            inputs.update({key: value.to(**to_device) for key, value in batch.sentinel.items()})
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            proba = self.predictor.predict_proba(inputs)
        expected = (n, self.predictor.num_classes, win, win)
        if tuple(proba.shape) != expected:
            raise RuntimeError(f"predictor returned probabilities of shape {tuple(proba.shape)}, expected {expected}")
        self.windows_predicted += n
        return proba.to(device=self.device, dtype=torch.float32)

    def _predictions(self, rows: list[int], cols: list[int]) -> Iterator[tuple[_Window, torch.Tensor]]:
        """Every window with data of ``rows`` and its probabilities ``(K, window, window)``, in order.

        The next batches are read and assembled by background threads while the model runs on
        this one (``prefetch`` batches ahead; rasterio releases the GIL while GDAL decodes).
        """
        batches = self._batches(rows, cols)
        stream = prefetched(batches, self.prefetch) if self.prefetch else batches
        try:
            for batch in stream:
                proba = self._predict(batch)
                yield from zip(batch.windows, proba)
        finally:
            stream.close()  # (a generator either way: stops the reading threads)

    @torch.inference_mode()
    def run_band(self, b: int, strips: list[int], on_strip) -> None:
        """Process band ``b``; call ``on_strip(i, strip)`` per strip (a :class:`_Strip`: ``classes``
        uint8 ``(h, w)`` argmax, nodata where no input has data; ``proba`` uint8 ``(K, h, w)``
        probabilities x 255 (0 there), or None).
        """
        lay, win = self.layout, self.layout.window
        cols = lay.band_windows(b)
        cx0 = cols[0]
        aw = cols[-1] + win - cx0
        acc = torch.zeros((self.predictor.num_classes, win, aw), dtype=torch.float32, device=self.device)
        wsum = torch.zeros((win, aw), dtype=torch.float32, device=self.device)
        # Validity of the windows read: a valid pixel lies only in windows with data, all read,
        # so pixels no window set are nodata.
        valid = np.zeros((win, aw), dtype=bool)
        first = strips[0]
        # Window rows above the first strip whose windows still reach into it (their overlap).
        k0 = min(k for k in range(first + 1) if lay.ys[k] + win > lay.ys[first])
        bx0, bx1 = lay.bands[b]
        predictions = self._predictions(list(range(k0, strips[-1] + 1)), cols)
        try:
            following = next(predictions, None)
            for k in range(k0, strips[-1] + 1):
                if k > k0:
                    d = lay.ys[k] - lay.ys[k - 1]
                    acc[:, : win - d] = acc[:, d:].clone()
                    acc[:, win - d :] = 0
                    wsum[: win - d] = wsum[d:].clone()
                    wsum[win - d :] = 0
                    valid[: win - d] = valid[d:].copy()
                    valid[win - d :] = False
                # This row's windows: the predictions up to the first of the next row.
                while following is not None and following[0].row0 == lay.ys[k]:
                    window, p = following
                    c = window.col0 - cx0
                    acc[:, :, c : c + win].addcmul_(p, self.weights)
                    wsum[:, c : c + win] += self.weights
                    h, w = window.valid.shape
                    valid[:h, c : c + w] = window.valid
                    following = next(predictions, None)
                if k < first:
                    continue
                r0, r1 = lay.strip_rows(k)
                a = acc[:, : r1 - r0, bx0 - cx0 : bx1 - cx0]
                invalid = ~valid[: r1 - r0, bx0 - cx0 : bx1 - cx0]
                classes = a.max(dim=0).indices.to(torch.uint8).cpu().numpy()  # (faster than argmax on CPU)
                classes[invalid] = nomenclature.NODATA_VALUE
                proba = None
                if self.with_proba:
                    w = wsum[: r1 - r0, bx0 - cx0 : bx1 - cx0]
                    proba = torch.round(a / w.clamp_min(1e-12) * 255.0).clamp_(0, 255).to(torch.uint8).cpu().numpy()
                    proba[:, invalid] = 0
                on_strip(k, _Strip(Window(bx0, r0, bx1 - bx0, r1 - r0), classes, proba))
        finally:
            predictions.close()  # stops the reading threads, also on errors


def _write_strip(files: list, strip: _Strip) -> None:
    """Write a strip into the open working files (class map, then probabilities if any)."""
    files[0].write(strip.classes, 1, window=strip.window)
    if strip.proba is not None and len(files) > 1:
        files[1].write(strip.proba, window=strip.window)


def _merge_ranks(out_path: Path, main: _WorkFiles, layout: _Layout, world_size: int, with_proba: bool,
                 merge_timeout_s: float) -> None:
    """Rank 0: wait for the other ranks' working files to be complete and copy their strips."""
    others = {r: _WorkFiles(out_path, r, world_size, with_proba) for r in range(1, world_size)}
    deadline = time.monotonic() + merge_timeout_s
    pending = set(others)
    while pending:
        for r in sorted(pending):
            try:
                if json.loads(others[r].sidecar.read_text(encoding="utf-8")).get("complete"):
                    pending.discard(r)
            except (OSError, ValueError):
                pass
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ranks {sorted(pending)} did not finish within {merge_timeout_s} s")
            time.sleep(_MERGE_POLL_S)
    for r, work in others.items():
        strips = layout.rank_strips(r, world_size)
        if len(strips) == 0:
            work.remove()
            continue
        r0, r1 = layout.ys[strips[0]], layout.strip_rows(strips[-1])[1]
        for y in range(r0, r1, 1024):  # copy in slabs to keep memory bounded
            w = Window(0, y, layout.width, min(1024, r1 - y))
            pairs = [(work.classes, main.classes)] + ([(work.proba, main.proba)] if with_proba else [])
            for src_path, dst_path in pairs:
                with rasterio.open(src_path) as src, rasterio.open(dst_path, "r+") as dst:
                    dst.write(src.read(window=w), window=w)
        work.remove()


def map_raster(
    predictor: Predictor,
    aerial_path: str | Path,
    out_path: str | Path,
    elevation_path: str | Path | None = None,
    sentinel_dir: str | Path | None = None,
    *,
    options: MapOptions | None = None,
    dem_path: str | Path | None = None,
    probabilities_path: str | Path | None = None,
    aerial_date: str | None = None,
    region: Window | None = None,
    device: str = "cpu",
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    predictor_id: str | None = None,
    merge_timeout_s: float = 24 * 3600.0,
    expected_resolution_m: float = 0.2,
) -> MapResult:
    """Map an aerial raster of any size to a land-cover COG with a trained predictor.

    Args:
        predictor: the trained model (:class:`~flairlc.mapping.predictor.Predictor`).
        aerial_path: GeoTIFF or VRT, uint8, with a CRS, holding the bands the predictor reads
            (its ``bands`` attribute, default R, G, B, NIR, elevation; elevation may come from
            ``elevation_path``): by default 3 bands are R, G, B, 4 are R, G, B, NIR and 5 are
            R, G, B, NIR, elevation (``options.aerial_bands`` names them otherwise).
        out_path: the class map to write: uint8 COG of zero-based class indices, nodata 255, with
            the nomenclature colour table, and ``MAP.qml`` beside it.
        elevation_path: single-band uint8 elevation raster, read by coordinates (any grid
            covering the aerial image); required when the predictor reads elevation and the
            aerial image has none, unless ``dem_path`` gives it.
        sentinel_dir: Sentinel-2 series folder (one GeoTIFF per date); used when the predictor
            ``uses_sentinel``.
        options: how windows are cut and run through the model (:class:`~flairlc.map_options.MapOptions`:
            window, overlap, batch size, precision, reader threads, band names, policies…);
            None: ``MapOptions()``.
        dem_path: instead of ``elevation_path``: a 2-band DSM/DTM raster in metres (FLAIR-HUB's
            ``DEM_ELEV``, or a VRT of both), from which the elevation band is computed as
            FLAIR-HUB's data path does (:mod:`flairlc.mapping.dem`), read by coordinates alike.
        probabilities_path: optional K-band uint8 COG of probabilities x 255 (needed when
            ``options.probabilities``).
        expected_resolution_m: expected pixel size, metres.
        progress: show a progress bar (km² done, km²/h).
        device: torch device the batches are moved to (the predictor must already be there).
        rank, world_size: this process's share of the strips (see the module docstring).
        merge_timeout_s: how long rank 0 waits for the other ranks, seconds.
        predictor_id: identifies the model for the resume check (e.g. the checkpoint path and
            its modification time); a run with another id starts over.
        region: map only this pixel window ``(col_off, row_off, width, height)`` of the aerial
            image: the map covers it, reading exactly what a map of the whole image reads there
            (:func:`flairlc.mapping.job.map_tile` maps the tiles of a job so).
        aerial_date: the aerial image's survey date or year (``YYYY-MM-DD``, ``YYYY``), when its
            file does not say it: the Sentinel-2 dates must fall in that year
            (:func:`~flairlc.mapping.coverage.check_dates`, by ``options.coverage_policy``).

    Returns:
        a :class:`MapResult`.

    Raises:
        MappingInputError: a missing, malformed or non-matching input (the message names it).
        OutputError: an output that cannot be written there; raised before any inference.
    """
    t_start = time.perf_counter()
    out_path = Path(out_path)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    options = MapOptions() if options is None else options
    if options.probabilities and probabilities_path is None:
        raise ValueError("options.probabilities: give probabilities_path, the file to write them to")
    with_proba = probabilities_path is not None
    nomen = predictor_nomenclature(predictor)
    check_mapped_inputs(predictor)
    if predictor.uses_sentinel and sentinel_dir is None:
        raise MappingInputError("the model uses Sentinel-2: pass the series folder (--sentinel DIR)")
    if sentinel_dir is not None and not predictor.uses_sentinel:
        warnings.warn(f"the model does not use Sentinel-2: ignoring {sentinel_dir}", stacklevel=2)
        sentinel_dir = None

    preprocessing = getattr(predictor, "series_preprocessing", None)
    if hasattr(predictor, "use_channels_last"):
        predictor.use_channels_last(options.channels_last)
    bands = tuple(getattr(predictor, "bands", AERIAL_BANDS))
    with AerialSource(aerial_path, elevation_path, options.resolution_policy, expected_resolution_m,
                      options.coverage_policy, bands=bands, raster_bands=options.aerial_bands,
                      region=region, dem_path=dem_path) as source:
        sentinel = None
        if sentinel_dir:
            sentinel = SentinelSeries(
                sentinel_dir, source.crs, predictor.reference_date, aerial=source.extent,
                aerial_path=source.aerial_path, coverage_policy=options.coverage_policy,
                resolution_policy=options.resolution_policy,
                need_masks=bool(getattr(preprocessing, "filter_clouds", False)),
            )
        try:
            if sentinel is not None:
                check_dates(sentinel.folder, sentinel.dates, read_acquisition(aerial_path, aerial_date),
                            source.aerial_path, options.coverage_policy)
                source.restrict_to(sentinel.coverage)
            _check_outputs(out_path, probabilities_path, aerial_path, elevation_path, dem_path)
            window, overlap = options.window, options.overlap
            if window is None:
                # Models with Sentinel-2 keep the window they were trained with (a FLAIR patch).
                window = (SENTINEL_MODEL_WINDOW_PX if predictor.uses_sentinel
                          else fit_window(source.height, source.width, options.max_window, overlap))
                if max(source.height, source.width) <= window:
                    overlap = 0  # one window covers the raster
            layout = _Layout.build(source.height, source.width, window, overlap, max(options.band_width, window))
            grid = {"crs": source.crs, "transform": source.transform, "width": source.width, "height": source.height}
            params = {
                "aerial": _file_id(Path(aerial_path)),
                "elevation": _file_id(Path(elevation_path)) if elevation_path else None,
                "sentinel": str(Path(sentinel_dir).resolve()) if sentinel_dir else None,
                "grid": [source.width, source.height, list(source.transform)[:6]],
                "window": window, "overlap": overlap, "batch_size": options.batch_size,
                "band_width": options.band_width,
                "num_classes": predictor.num_classes, "predictor": type(predictor).__qualname__,
                "predictor_id": predictor_id,
                "probabilities": with_proba, "rank": rank, "world_size": world_size,
                "coverage_policy": options.coverage_policy,
                "bands": list(bands), "aerial_bands": list(source.raster_bands),
                "region": [int(v) for v in (region.col_off, region.row_off, region.width, region.height)] if region else None,
            }
            if dem_path:  # (only then: the work files of maps without one still resume)
                params["dem"] = _file_id(Path(dem_path))
            params["hash"] = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()
            work = _WorkFiles(out_path, rank, world_size, with_proba)
            done = work.load_done(params)
            if not done:
                work.create(grid, predictor.num_classes, nomen)
                work.save_done(params, done, complete=False)
            resumed = len(done)
            result = _run_chunks(predictor, source, sentinel, layout, work, params, done, options, device,
                                 rank, world_size, progress)
        finally:
            if sentinel is not None:
                sentinel.close()
    area_km2, n_windows = result
    work.save_done(params, done, complete=True)
    map_final = proba_final = qml = None
    if rank == 0:
        if world_size > 1:
            _merge_ranks(out_path, work, layout, world_size, with_proba, merge_timeout_s)
        map_final = finalize_cog(work.classes, out_path, resampling="nearest")
        if with_proba:
            proba_final = finalize_cog(work.proba, Path(probabilities_path), resampling="average")
        if nomen is not None:
            qml = write_qml(out_path, nomen)
        work.remove()
    seconds = time.perf_counter() - t_start
    return MapResult(map_final, proba_final, qml, area_km2, seconds,
                     area_km2 / max(seconds, 1e-9) * 3600.0, n_windows, resumed)


def _check_outputs(out_path: Path, probabilities_path, aerial_path, elevation_path, dem_path=None) -> None:
    """Before any inference: every output can be written, and none replaces an input or another."""
    inputs = [Path(p) for p in (aerial_path, elevation_path, dem_path) if p is not None]
    outputs = [(out_path, "map")] + ([(Path(probabilities_path), "probabilities")] if probabilities_path else [])
    for path, what in outputs:
        for source in inputs:
            if same_file(path, source):
                raise MappingInputError(f"the {what} output {path} is an input of the map: give another file name")
        check_writable(path, f"{what} output")
    if probabilities_path and same_file(out_path, probabilities_path):
        raise MappingInputError(f"the map and the probabilities would both be written to {out_path}")


def _run_chunks(predictor: Predictor, source: AerialSource, sentinel: SentinelSeries | None, layout: _Layout,
                work: _WorkFiles, params: dict[str, Any], done: set[str], options: MapOptions, device: str,
                rank: int, world_size: int, progress: bool) -> tuple[float, int]:
    """Run this rank's unfinished chunks; returns (area mapped in this run in km², windows predicted).

    Strips go to a writer thread (:class:`~flairlc.mapping.pipeline.StripWriter`) that keeps the
    working files open; the sidecar records a chunk as done once its strip is flushed to disk.
    """
    pixel_km2 = abs(source.transform.a * source.transform.e) / 1e6
    strips = list(layout.rank_strips(rank, world_size))
    mapper = _Mapper(predictor, source, sentinel, layout, options, device, work.proba is not None)

    def chunk_px(i: int, b: int) -> int:
        r0, r1 = layout.strip_rows(i)
        x0, x1 = layout.bands[b]
        return (r1 - r0) * (x1 - x0)

    total = sum(chunk_px(i, b) for b in range(len(layout.bands)) for i in strips)
    already = sum(chunk_px(i, b) for b in range(len(layout.bands)) for i in strips if f"{b}:{i}" in done)
    # The bar counts pixels and shows km² (unit_scale).
    bar = tqdm(total=total, initial=already, unit="km²", unit_scale=pixel_km2, disable=not progress,
               desc=f"mapping {source.aerial_path.name}",
               bar_format="{l_bar}{bar}| {n:.3f}/{total:.3f} km² [{elapsed}<{remaining}{postfix}]")
    t0 = time.perf_counter()
    mapped = 0.0

    def open_files() -> list:
        return [rasterio.open(path, "r+") for path in (work.classes, work.proba) if path is not None]

    def flushed(keys: list[str]) -> None:
        done.update(keys)
        work.save_done(params, done, complete=False)

    def on_strip(b: int):
        def write(i: int, strip: _Strip) -> None:
            nonlocal mapped
            writer.put(f"{b}:{i}", strip)
            px = chunk_px(i, b)
            mapped += px * pixel_km2
            bar.update(px)
            bar.set_postfix_str(f"{mapped / max(time.perf_counter() - t0, 1e-9) * 3600:.2f} km²/h")
        return write

    todo = {b: [i for i in strips if f"{b}:{i}" not in done] for b in range(len(layout.bands))}
    writer = StripWriter(open_files, _write_strip, flushed)
    try:
        for b, band_todo in todo.items():
            if band_todo:
                # Strips are processed in order, so the unfinished ones of a band form a suffix.
                mapper.run_band(b, list(range(band_todo[0], strips[-1] + 1)), on_strip(b))
    except BaseException:
        try:
            writer.close()  # the strips written so far count as done
        except Exception:  # noqa: BLE001 - the first error is the one to tell
            pass
        raise
    finally:
        bar.close()
    writer.close()
    return mapped, mapper.windows_predicted
