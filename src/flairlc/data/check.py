"""Validation of a FLAIR dataset root (``flairlc check``): every file against the format.

:func:`check_dataset` walks a root laid out as in ``shared/spec/flair-format.md`` and collects one
:class:`Issue` per problem, each naming the offending file: missing partner files (image without
mask, mask without image, patch without centroid or metadata entry, area without Sentinel-2 files),
aerial images and masks of the wrong size, band count, dtype or CRS, truncated or corrupt files,
label values outside 1..19, metadata entries that cannot be encoded, Sentinel-2 super-areas whose
number of dates T differs between the data, masks and product list, product names with no date,
centroid windows leaving the super-area, and unreadable files (TIFF, ``.npy`` or JSON). No
per-file exception escapes: each becomes an issue.

By default every byte a training run reads is read: all pixels of every aerial image and mask and
the whole of every ``.npy`` array, so that a file the check passes is a file training can read.
Files are read by ``workers`` processes. The quick mode (``quick=True``) reads only the headers of
aerial images and ``.npy`` arrays (and the TIFF block table, which finds truncated images) and
still reads masks in full (their values are checked).

:func:`validate_records` is the cheap, header-only part of the same checks, run on the patches of a
:class:`~flairlc.training.FlairDataModule` before training: it stops a run at setup, with one message
that names the first bad file.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from tqdm import tqdm

from flairlc.data.check_report import (
    ERROR,
    WARNING,
    CheckReport,
    Issue,
    Issues,
    Severity,
    print_report,
)
from flairlc.data.dataset import metadata_problem, window_outside_entirely
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import (
    AREA_MODALITIES,
    CENTROIDS_JSON_NAMES,
    FLAIR_MODALITIES,
    METADATA_JSON_NAMES,
    FlairModality,
    PatchRecord,
    RootFiles,
    SplitFiles,
    area_files,
    find_json,
    find_trees,
    load_json,
    parse_centroid,
    scan_root,
)
from flairlc.data.readers import describe_error, truncation_problem
from flairlc.data.sentinel import product_date, window_outside
from flairlc.nomenclature import NUM_RAW_CLASSES

__all__ = [
    "ERROR",
    "WARNING",
    "CheckReport",
    "Issue",
    "Issues",
    "check_dataset",
    "print_report",
    "validate_records",
]

#: Expected CRS of aerial images and masks (Lambert-93).
EXPECTED_EPSG = 2154
#: Default number of reading processes: reading is I/O- and decompression-bound, a few suffice.
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
#: Bytes read at a time from a ``.npy`` file in the full check (bounds memory per worker).
NPY_CHUNK_BYTES = 16 * 2**20
#: GDAL options while checking: no listing of a folder at each open to look for sidecar files
#: (``.aux.xml``, ``.ovr``), which FLAIR has none of; it costs ~0.6 ms per open in a folder of
#: 600 patches, and grows with the folder.
READING_GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
#: Issue kinds that do not stop a training run (:func:`validate_records` ignores them).
TRAINING_HARMLESS_KINDS = frozenset({"bad-crs"})


def check_dataset(
    root: str | Path,
    toy: bool | None = None,
    sat_patch_size: int = 40,
    progress: bool = False,
    quick: bool = False,
    workers: int | None = None,
) -> CheckReport:
    """Validate a FLAIR dataset root file by file.

    Args:
        root: dataset root (the folder holding the ``flair_*`` trees and the JSON files).
        toy: True for the toy trees only, False for the full trees only, None for the full trees
            when there are any, else the toy ones (as :func:`flairlc.data.layout.find_trees`).
        sat_patch_size: Sentinel-2 window size in pixels used to check the centroids (a multiple
            of 8 between 8 and 112).
        progress: show a progress bar over the files (on stderr).
        quick: read only the headers of aerial images and ``.npy`` arrays (and the TIFF block
            table, which finds truncated images) instead of every pixel; masks are still read.
        workers: reading processes (default :data:`DEFAULT_WORKERS`; 1 reads in this process).

    Returns:
        The report: patch counts per split and domain and every issue found. A missing root or
        a root without any aerial tree gives a report with one error.

    Raises:
        ValueError: when ``sat_patch_size`` is not a multiple of 8 between 8 and 112, or
            ``workers`` is below 1.
    """
    if sat_patch_size % 8 or not 8 <= sat_patch_size <= 112:
        raise ValueError(f"sat_patch_size must be a multiple of 8 in 8..112, got {sat_patch_size}")
    workers = DEFAULT_WORKERS if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    root = Path(root)
    report = CheckReport(root=root, sat_patch_size=sat_patch_size, quick=quick)
    checker = _Checker(report)
    try:
        trees = find_trees(root, toy)
    except FlairDataError:
        checker.error("missing-root", root, "dataset root does not exist or is not a folder")
        return checker.finish()
    if not any(modality == "aerial" for modality, _ in trees):
        checker.error(
            "missing-aerial",
            root,
            "no aerial tree found (expected e.g. flair_aerial_train/ or flair_2_aerial_test/); "
            "is this a FLAIR dataset root?",
        )
        return checker.finish()
    checker.run(scan_root(trees), progress, workers)
    return checker.finish()


def validate_records(
    records: Sequence[PatchRecord],
    modalities: Sequence[str] = ("aerial", "mask"),
    sat_patch_size: int = 40,
    root: str | Path | None = None,
    workers: int = 1,
    progress: bool = False,
) -> tuple[int, int] | None:
    """Cheap check, before training, of the files a dataset of these patches will read.

    Reads headers only (no pixel): the size, band count and dtype of every aerial image and mask
    and whether the file holds all its pixel blocks; for Sentinel-2, the ``.npy`` headers
    (memory-mapped), the product list (one date per line, as many as the arrays' T) and every
    centroid against its super-area's shape; every metadata entry is encoded. About 1 ms per
    raster. ``flairlc check`` does all of this and reads every pixel besides.

    Args:
        records: the patches (see :func:`flairlc.data.discover_patches`).
        modalities: the modalities that will be read (see :class:`flairlc.data.FlairDataset`).
        sat_patch_size: Sentinel-2 window side in 10 m pixels.
        root: the dataset root, named in the advice of the error message.
        workers: reading processes (1 reads in this process).
        progress: show a progress bar over the files (on stderr).

    Returns:
        The aerial patch size ``(H, W)`` in pixels shared by the patches (the most common one;
        of the masks when no aerial image is read), or None when there is none to read.

    Raises:
        FlairDataError: naming the first bad file and the problem, and how many more there are.
    """
    modalities = set(modalities)
    rasters = [key for key in ("aerial", "mask") if key in modalities]
    tasks = [(key, r.files[key], False) for key in rasters for r in records if key in r.files]
    if "sentinel" in modalities:
        super_areas = {r.files["sentinel"].parent for r in records if "sentinel" in r.files}
        tasks += [("sen", sen_dir, False) for sen_dir in sorted(super_areas)]
    with tqdm(total=len(tasks), desc="validating files", unit="file", disable=not progress) as bar:
        inspected = _inspect_all(tasks, workers, bar)
    results = dict(zip(((kind, path) for kind, path, _ in tasks), inspected))
    issues = [issue for _, file_issues in results.values() for issue in file_issues]

    def header(record: PatchRecord, key: str) -> _Header | None:
        return results[(key, record.files[key])][0] if key in rasters and key in record.files else None

    patch_size = _most_common_size(header(r, "aerial") for r in records) or (
        _most_common_size(header(r, "mask") for r in records)
    )
    for record in records:
        image, mask = header(record, "aerial"), header(record, "mask")
        if image is not None and patch_size is not None:
            issues += _size_issues(record.files["aerial"], image, patch_size, "the patches' size")
        if mask is not None:
            reference, what = _mask_reference(image, patch_size)
            if reference is not None:
                issues += _size_issues(record.files["mask"], mask, reference, what)
        if "sentinel" in modalities and "sentinel" in record.files:
            shape = results[("sen", record.files["sentinel"].parent)][0]
            centroids = {record.name: list(record.centroid)} if record.centroid else {}
            issues += _centroid_issues(
                record.files["aerial"], centroids, record.centroids_json, shape, sat_patch_size
            )
        if "metadata" in modalities:
            metadata = {f"IMG_{record.id}": record.metadata} if record.metadata is not None else {}
            issues += _metadata_issues(
                record.files["aerial"], record.id, metadata, record.metadata_json
            )
    errors = [i for i in issues if i.severity == ERROR and i.kind not in TRAINING_HARMLESS_KINDS]
    if errors:
        first = errors[0]
        others = len(errors) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        where = f" {root}" if root is not None else " on the dataset root"
        raise FlairDataError(
            first.path, f"{first.message}{more}; run `flairlc check{where}` to list every bad file"
        )
    return patch_size


# --------------------------------------------------------------------------------------------
# Reading files (in worker processes): each function returns what it found, never raises.


@dataclass(frozen=True)
class _Header:
    """The parts of a raster header compared across files (the rest is checked per file)."""

    height: int
    width: int
    transform: tuple[float, ...]


def _inspect(task: tuple[str, Path, bool]) -> tuple[Any, list[Issue]]:
    """Inspect one file (``"aerial"``, ``"mask"``) or super-area folder (``"sen"``).

    Returns:
        The raster ``_Header`` (the super-area's ``(H, W)`` for ``"sen"``), or None when unknown,
        and the issues found.
    """
    kind, path, read_all = task
    if kind == "sen":
        return _inspect_super_area(path, read_all)
    return _inspect_raster(path, kind, read_all)


def _inspect_raster(path: Path, kind: str, read_all: bool) -> tuple[_Header | None, list[Issue]]:
    """Check one aerial image or mask: header, completeness and (when read) its pixels."""
    issues = Issues()
    header = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as dataset:
                header = _Header(dataset.height, dataset.width, tuple(dataset.transform)[:6])
                bands = len(FLAIR_MODALITIES[kind].bands)
                _check_header(issues, path, dataset, bands)
                truncated = truncation_problem(dataset, path)
                if truncated is not None:
                    issues.error("truncated", path, truncated)
                elif read_all:
                    values = dataset.read()
                    if kind == "mask":
                        _check_label_values(issues, path, values[0])
    except Exception as error:  # noqa: BLE001 - any reader failure is a finding, not a crash
        what = "read" if header is not None else "open"
        issues.error("unreadable", path, f"cannot {what} as a GeoTIFF ({describe_error(error)})")
    return header, issues


def _check_header(issues: Issues, path: Path, dataset: Any, bands: int) -> None:
    if dataset.count != bands:
        issues.error("bad-band-count", path, f"{dataset.count} bands, expected {bands}")
    bad_dtypes = sorted({d for d in dataset.dtypes if d != "uint8"})
    if bad_dtypes:
        issues.error("bad-dtype", path, f"dtype {', '.join(bad_dtypes)}, expected uint8")
    if dataset.crs is None:
        issues.error("bad-crs", path, f"no CRS, expected EPSG:{EXPECTED_EPSG}")
    elif dataset.crs.to_epsg() != EXPECTED_EPSG:
        issues.error(
            "bad-crs", path, f"CRS {_crs_name(dataset.crs)}, expected EPSG:{EXPECTED_EPSG}"
        )


def _check_label_values(issues: Issues, path: Path, values: np.ndarray) -> None:
    bad = _bad_label_values(values)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
        issues.error(
            "bad-label-values", path, f"label values outside 1..{NUM_RAW_CLASSES}: {shown}"
        )


def _inspect_super_area(
    sen_dir: Path, read_all: bool
) -> tuple[tuple[int, int] | None, list[Issue]]:
    """Check the three files of a super-area; returns its ``(H, W)`` when known."""
    issues = Issues()
    try:
        names = sorted(os.listdir(sen_dir))
    except OSError as error:
        issues.error("unreadable", sen_dir, f"cannot list this folder ({describe_error(error)})")
        return None, issues
    files: dict[str, Path] = {}
    for modality, matches in zip(AREA_MODALITIES, area_files(sen_dir, names).values(), strict=True):
        if not matches:
            issues.error("missing-sentinel", sen_dir, f"no *{modality.suffix} file in this folder")
        elif len(matches) > 1:
            found = ", ".join(path.name for path in matches)
            issues.error("ambiguous-sentinel", sen_dir, f"several *{modality.suffix} files: {found}")
        else:
            files[modality.suffix] = matches[0]
    data = _load_npy(issues, files.get("_data.npy"), FLAIR_MODALITIES["sentinel"], read_all)
    masks = _load_npy(issues, files.get("_masks.npy"), FLAIR_MODALITIES["sentinel_masks"], read_all)
    products = _load_products(issues, files.get("_products.txt"))
    lengths = {
        suffix: (files[suffix], length)
        for suffix, length in (
            ("_data.npy", None if data is None else data[0]),
            ("_masks.npy", None if masks is None else masks[0]),
            ("_products.txt", products),
        )
        if length is not None
    }
    if len({length for _, length in lengths.values()}) > 1:
        detail = ", ".join(f"{path.name}: {length}" for path, length in lengths.values())
        first = next(iter(lengths.values()))[0]
        issues.error("sentinel-length-mismatch", first, f"number of dates T differs ({detail})")
    if data is not None and masks is not None and data[2:] != masks[2:]:
        issues.error(
            "sentinel-shape-mismatch",
            files["_masks.npy"],
            f"spatial size {masks[2:]} differs from the data's {data[2:]}",
        )
    source = data or masks
    return ((int(source[2]), int(source[3])) if source else None), issues


def _load_npy(
    issues: Issues, path: Path | None, modality: FlairModality, read_all: bool
) -> tuple[int, ...] | None:
    """The shape of a ``(T, C, H, W)`` array when it is readable and well formed."""
    if path is None:
        return None
    channels, dtype = len(modality.bands), modality.dtype
    try:
        array = np.load(path, mmap_mode="r")
    except Exception as error:  # noqa: BLE001 - any reader failure is a finding, not a crash
        issues.error("unreadable", path, f"cannot read as a .npy array ({describe_error(error)})")
        return None
    if array.ndim != 4 or array.shape[1] != channels:
        issues.error("bad-shape", path, f"shape {array.shape}, expected (T, {channels}, H, W)")
        return None
    if array.dtype != np.dtype(dtype):
        issues.error("bad-dtype", path, f"dtype {array.dtype}, expected {dtype}")
    if read_all:
        try:
            _read_every_byte(path)
        except OSError as error:
            issues.error("unreadable", path, f"cannot read the array ({describe_error(error)})")
    return tuple(int(n) for n in array.shape)


def _read_every_byte(path: Path) -> None:
    """Read a file to its end in bounded chunks (finds I/O errors that a header read misses)."""
    buffer = memoryview(bytearray(NPY_CHUNK_BYTES))
    with open(path, "rb", buffering=0) as file:
        while file.readinto(buffer):
            pass


def _load_products(issues: Issues, path: Path | None) -> int | None:
    """The number of product names when the file is readable."""
    if path is None:
        return None
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        issues.error("unreadable", path, f"cannot read as text ({describe_error(error)})")
        return None
    names = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
    if not names:
        issues.error("bad-products", path, "no product names")
        return 0
    bad = []
    for number, name in names:
        try:
            product_date(name)
        except ValueError:
            bad.append(f"line {number} {name[:40]!r}")
    if bad:
        shown = "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
        issues.error(
            "bad-products",
            path,
            f"{len(bad)} product names without a YYYYMMDD date at offsets 11-18: {shown}",
        )
    return len(names)


def _inspect_all(
    tasks: Sequence[tuple[str, Path, bool]], workers: int, bar: tqdm | None = None
) -> list[tuple[Any, list[Issue]]]:
    """``[_inspect(task) for task in tasks]``, in order, in ``workers`` processes when above 1."""
    if workers <= 1 or len(tasks) < 2:
        results = []
        with rasterio.Env(**READING_GDAL_OPTIONS):
            for task in tasks:
                results.append(_inspect(task))
                if bar is not None:
                    bar.update(1)
        return results
    # fork: the workers start in milliseconds (spawn would import torch again in each one).
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    chunksize = max(1, min(32, len(tasks) // (workers * 8)))
    results = []
    with ProcessPoolExecutor(
        min(workers, len(tasks)), mp_context=context, initializer=_enter_reading_env
    ) as pool:
        for result in pool.map(_inspect, tasks, chunksize=chunksize):
            results.append(result)
            if bar is not None:
                bar.update(1)
    return results


def _enter_reading_env() -> None:
    """Open a GDAL environment for the life of a worker process (one per file costs more)."""
    global _WORKER_ENV
    _WORKER_ENV = rasterio.Env(**READING_GDAL_OPTIONS)
    _WORKER_ENV.__enter__()


_WORKER_ENV: Any = None


# --------------------------------------------------------------------------------------------
# Checks across files (in this process)


def _size_issues(path: Path, header: _Header, size: tuple[int, int], what: str) -> list[Issue]:
    if (header.height, header.width) == tuple(size):
        return []
    message = f"{header.height}x{header.width} px, expected {size[0]}x{size[1]} ({what})"
    return [Issue(ERROR, "bad-size", path, message)]


def _mask_reference(
    image: _Header | None, patch_size: tuple[int, int] | None
) -> tuple[tuple[int, int] | None, str]:
    """The size a mask must have: its image's, else the dataset's patch size."""
    if image is not None:
        return (image.height, image.width), "its image's size"
    return patch_size, "the dataset's patch size"


def _most_common_size(headers: Iterable[_Header | None]) -> tuple[int, int] | None:
    sizes = Counter((h.height, h.width) for h in headers if h is not None)
    return sizes.most_common(1)[0][0] if sizes else None


def _centroid_issues(
    image: Path,
    centroids: dict[str, Any],
    json_path: Path | None,
    shape: tuple[int, int] | None,
    size: int,
) -> list[Issue]:
    """The centroid of a patch against its super-area's ``(H, W)``."""
    json_name = json_path.name if json_path is not None else "the centroids JSON"
    if image.name not in centroids:
        return [Issue(ERROR, "missing-centroid", image, f"no {image.name} entry in {json_name}")]
    try:
        row, col = parse_centroid(centroids[image.name])
    except ValueError:
        value = centroids[image.name]
        message = f"centroid {value!r} in {json_name} is not a [row, col] pair of integers"
        return [Issue(ERROR, "bad-centroid", image, message)]
    if shape is None:
        return []
    where = (
        f"its centroid ({row}, {col}) in {json_name}: the {size}x{size} Sentinel-2 window "
        f"centred there"
    )
    height, width = shape
    if window_outside_entirely(shape, row, col, size):
        message = f"{where} lies entirely outside the {height}x{width} super-area"
        return [Issue(ERROR, "centroid-window-outside", image, message)]
    if window_outside(shape, row, col, size):
        message = f"{where} leaves the {height}x{width} super-area partly (edge-padded)"
        return [Issue(WARNING, "centroid-window-outside", image, message)]
    return []


def _metadata_issues(
    image: Path, patch_id: str, metadata: dict[str, Any], json_path: Path | None
) -> list[Issue]:
    """A patch's entry in the aerial metadata JSON: present, and one the encoder can read."""
    json_name = json_path.name if json_path is not None else "the aerial metadata JSON"
    key = f"IMG_{patch_id}"
    if key not in metadata:
        return [Issue(ERROR, "missing-metadata", image, f"no {key} entry in {json_name}")]
    problem = metadata_problem(metadata[key])
    if problem is not None:
        return [Issue(ERROR, "bad-metadata", image, f"entry {key} in {json_name} {problem}")]
    return []


# --------------------------------------------------------------------------------------------
# The walk over a root


@dataclass
class _Split:
    """The patch files of one split, each id once (see :meth:`_Checker.unique`)."""

    images: dict[str, Path]
    masks: dict[str, Path]
    files: SplitFiles


class _Checker:
    """Collects issues while checking one root."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self.root = report.root
        self.issues = Issues()
        self.seen_ids: dict[str, Path] = {}
        self.json_paths: dict[str, Path | None] = {}

    def error(self, kind: str, path: Path, message: str) -> None:
        self.issues.error(kind, path, message)

    def warn(self, kind: str, path: Path, message: str) -> None:
        self.issues.warn(kind, path, message)

    def finish(self) -> CheckReport:
        self.report.issues = self.issues.in_report_order()
        return self.report

    # -- the whole root ----------------------------------------------------------------------

    def run(self, scan: RootFiles, progress: bool, workers: int) -> None:
        for folder in scan.misplaced:
            self.warn("bad-layout", folder, "folder is not at D{ddd}_{yyyy}/Z{n}_{AA}/" + folder.name)
        splits = {split: self.unique(files) for split, files in scan.splits.items()}
        splits = {s: found for s, found in splits.items() if found.images or found.masks}
        if not splits:
            self.error("no-patches", self.root, "no aerial image (…/img/IMG_*.tif) in the trees")
            return
        has_sen = any(found.files.sentinel_trees for found in splits.values())
        # Centroids are needed only with Sentinel-2 trees; metadata is an optional modality.
        centroids = self._load_root_json(
            CENTROIDS_JSON_NAMES, "missing-centroid", ERROR if has_sen else None
        )
        metadata = self._load_root_json(METADATA_JSON_NAMES, "missing-metadata", WARNING)

        # Every file is read once, in the worker processes; the checks across files follow.
        full = not self.report.quick
        tasks: list[tuple[str, Path, bool]] = []
        for found in splits.values():
            tasks += [("aerial", path, full) for path in found.images.values()]
            tasks += [("mask", path, True) for path in found.masks.values()]  # values checked
            tasks += [("sen", path, full) for path in found.files.area_folders.values()]
        with tqdm(total=len(tasks), desc="checking", unit="file", disable=not progress) as bar:
            inspected = _inspect_all(tasks, workers, bar)
        results = dict(zip(((kind, path) for kind, path, _ in tasks), inspected))
        for _, file_issues in results.values():
            self.issues += file_issues
        headers = {path: header for (kind, path), (header, _) in results.items() if kind != "sen"}
        images = [p for found in splits.values() for p in found.images.values()]
        masks = [p for found in splits.values() for p in found.masks.values()]
        self.report.patch_size = _most_common_size(headers.get(p) for p in images) or (
            _most_common_size(headers.get(p) for p in masks)
        )
        shapes = {path: shape for (kind, path), (shape, _) in results.items() if kind == "sen"}
        for split, found in splits.items():
            self._check_split(split, found, headers, shapes, centroids, metadata)

    def unique(self, files: SplitFiles) -> _Split:
        """A split's images and masks, each id once in the root: the first file of an id met
        (splits, trees, folders and files in order) is kept, the others are ``duplicate-id``."""
        kept: dict[str, dict[str, Path]] = {}
        for key, leaf in (("aerial", "img"), ("mask", "msk")):
            kept[key] = {}
            for patch_id, path in files.patch_files[key]:
                seen = self.seen_ids.setdefault(f"{leaf}:{patch_id}", path)
                if seen != path:
                    self.error("duplicate-id", path, f"patch id {patch_id} also used by {seen}")
                    continue
                kept[key][patch_id] = path
        return _Split(kept["aerial"], kept["mask"], files)

    def _load_root_json(
        self, names: tuple[str, ...], kind: str, if_missing: Severity | None
    ) -> dict[str, Any] | None:
        """A root JSON file's content; None (and an issue) when it is missing or unreadable."""
        path = find_json(self.root, names)
        self.json_paths[kind] = path
        if path is None:
            if if_missing is not None:
                message = f"no {' or '.join(names)} at the root"
                self.issues.append(Issue(if_missing, kind, self.root / names[0], message))
            return None
        try:
            return load_json(path)
        except FlairDataError as error:
            self.error("unreadable", path, error.problem)
        except (OSError, ValueError) as error:  # load_json lets UnicodeDecodeError through
            self.error("unreadable", path, f"cannot read as JSON ({describe_error(error)})")
        return None

    # -- one split ---------------------------------------------------------------------------

    def _check_split(
        self,
        split: str,
        found: _Split,
        headers: dict[Path, _Header | None],
        shapes: dict[Path, tuple[int, int] | None],
        centroids: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
    ) -> None:
        counts: dict[str, int] = defaultdict(int)
        areas: dict[tuple[str, str], list[Path]] = defaultdict(list)
        patch_size = self.report.patch_size
        for patch_id, image in sorted(found.images.items()):
            domain, area = image.parts[-4], image.parts[-3]
            counts[domain] += 1
            areas[(domain, area)].append(image)
            header = headers.get(image)
            if header is not None and patch_size is not None:
                self.issues += _size_issues(image, header, patch_size, "the dataset's patch size")
            mask = found.masks.get(patch_id)
            if mask is not None:
                self._check_mask(mask, headers.get(mask), header)
            elif found.files.labelled:
                self.error("missing-mask", image, f"no mask MSK_{patch_id}.tif for this image")
            if metadata is not None:
                self._check_metadata(image, patch_id, domain, metadata)
        for patch_id, mask in sorted(found.masks.items()):
            if patch_id not in found.images:
                self.error(
                    "missing-image", mask, f"no aerial image IMG_{patch_id}.tif for this mask"
                )
                self._check_mask(mask, headers.get(mask), None)
        self.report.counts[split] = dict(sorted(counts.items()))
        if found.files.sentinel_trees:
            self._check_sentinel(found.files, areas, shapes, centroids)

    def _check_mask(self, mask: Path, header: _Header | None, image: _Header | None) -> None:
        if header is None:
            return
        reference, what = _mask_reference(image, self.report.patch_size)
        if reference is not None:
            self.issues += _size_issues(mask, header, reference, what)
        if image is not None and image.transform != header.transform:
            self.warn("grid-mismatch", mask, "geotransform differs from its image's")

    def _check_metadata(
        self, image: Path, patch_id: str, domain: str, metadata: dict[str, Any]
    ) -> None:
        json_path = self.json_paths.get("missing-metadata")
        self.issues += _metadata_issues(image, patch_id, metadata, json_path)
        entry = metadata.get(f"IMG_{patch_id}")
        if isinstance(entry, dict) and "domain" in entry and entry["domain"] != domain:
            self.warn(
                "metadata-mismatch",
                image,
                f"metadata says domain {entry['domain']!r}, the file is in {domain!r}",
            )

    def _check_sentinel(
        self,
        found: SplitFiles,
        areas: dict[tuple[str, str], list[Path]],
        shapes: dict[Path, tuple[int, int] | None],
        centroids: dict[str, Any] | None,
    ) -> None:
        json_path = self.json_paths.get("missing-centroid")
        for key, images in sorted(areas.items()):
            sen_dir = found.area_folders.get(key)
            if sen_dir is None:
                expected = found.sentinel_trees[0] / key[0] / key[1] / "sen"
                self.error("missing-sentinel", expected, "no Sentinel-2 folder for this area")
                continue
            if centroids is not None:
                for image in images:
                    self.issues += _centroid_issues(
                        image, centroids, json_path, shapes.get(sen_dir),
                        self.report.sat_patch_size,
                    )
        for key, sen_dir in sorted(found.area_folders.items()):
            if key not in areas:
                self.warn("orphan-sentinel", sen_dir, "Sentinel-2 folder of an area with no images")


def _bad_label_values(values: np.ndarray) -> list[int]:
    if values.dtype == np.uint8:
        present = np.flatnonzero(np.bincount(values.ravel(), minlength=256))
    else:
        present = np.unique(values)
    return [int(v) for v in present if not 1 <= v <= NUM_RAW_CLASSES]


def _crs_name(crs: Any) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]
