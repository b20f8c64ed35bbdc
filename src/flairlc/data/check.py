"""Validation of a FLAIR dataset root (``flairlc check``): every file against the format.

:func:`check_dataset` walks a root laid out as in ``shared/spec/flair-format.md`` and collects one
:class:`Issue` per problem, each naming the offending file: missing partner files (image without
mask, mask without image, patch without centroid or metadata entry, area without Sentinel-2 files),
aerial images and masks of the wrong size, band count, dtype or CRS, label values outside 1..19,
Sentinel-2 super-areas whose number of dates T differs between the data, masks and product list,
product names with no date, centroid windows leaving the super-area, and unreadable files (corrupt
TIFF, ``.npy`` or JSON). No per-file exception escapes: each becomes an issue.

Only raster headers are read for aerial images; masks are read in full (their values are checked);
``.npy`` arrays are memory-mapped, so only their headers are read.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from tqdm import tqdm

from flairlc.data.errors import FlairDataError
from flairlc.data.layout import (
    CENTROIDS_JSON_NAMES,
    METADATA_JSON_NAMES,
    SPLITS,
    find_json,
    find_trees,
    load_json,
)
from flairlc.data.sentinel import SENTINEL_BANDS, product_date, window_outside
from flairlc.nomenclature import NUM_RAW_CLASSES

Severity = Literal["error", "warning"]
ERROR: Severity = "error"
WARNING: Severity = "warning"

#: Expected CRS of aerial images and masks (Lambert-93).
EXPECTED_EPSG = 2154
#: Band counts of an aerial image and of a label mask.
AERIAL_BAND_COUNT = 5
MASK_BAND_COUNT = 1
#: Patch size assumed when no image header can be read.
DEFAULT_PATCH_SIZE_PX = 512
#: How many files :meth:`CheckReport.to_text` lists per kind of issue.
MAX_LISTED_PER_KIND = 20

_IMG = re.compile(r"^IMG_(\d+)\.tiff?$")
_MSK = re.compile(r"^MSK_(\d+)\.tiff?$")
_SEN_SUFFIXES = ("_data.npy", "_masks.npy", "_products.txt")


@dataclass(frozen=True)
class Issue:
    """One problem found in a FLAIR root.

    Attributes:
        severity: ``"error"`` (the file cannot be used as is) or ``"warning"`` (usable, but odd).
        kind: short stable code, e.g. ``"missing-mask"``, ``"bad-size"``, ``"unreadable"``.
        path: the offending file or folder.
        message: what is wrong, in words a user can act on.
    """

    severity: Severity
    kind: str
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: [{self.kind}] {self.path}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        """A JSON-serializable dict (the path as a string)."""
        return {
            "severity": self.severity,
            "kind": self.kind,
            "path": str(self.path),
            "message": self.message,
        }


@dataclass
class CheckReport:
    """The result of :func:`check_dataset`.

    Attributes:
        root: the dataset root checked.
        counts: number of aerial patches per split, then per domain: ``{"train": {"D004_2021": n}}``.
        issues: every problem found, errors first, then by kind and path.
        patch_size: the expected aerial patch size ``(H, W)`` in pixels (most common one).
        sat_patch_size: the Sentinel-2 window size used for the centroid checks, in pixels.
    """

    root: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    patch_size: tuple[int, int] = (DEFAULT_PATCH_SIZE_PX, DEFAULT_PATCH_SIZE_PX)
    sat_patch_size: int = 40

    @property
    def ok(self) -> bool:
        """True when no issue is an error (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> list[Issue]:
        """The issues of severity ``"error"``."""
        return [issue for issue in self.issues if issue.severity == ERROR]

    @property
    def warnings(self) -> list[Issue]:
        """The issues of severity ``"warning"``."""
        return [issue for issue in self.issues if issue.severity == WARNING]

    @property
    def num_patches(self) -> int:
        """Total number of aerial patches found."""
        return sum(sum(domains.values()) for domains in self.counts.values())

    def kinds(self, severity: Severity | None = None) -> set[str]:
        """The kinds of issue found, optionally of one severity only."""
        return {i.kind for i in self.issues if severity is None or i.severity == severity}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable summary: root, verdict, counts and every issue."""
        return {
            "root": str(self.root),
            "ok": self.ok,
            "num_patches": self.num_patches,
            "num_errors": len(self.errors),
            "num_warnings": len(self.warnings),
            "patch_size": list(self.patch_size),
            "sat_patch_size": self.sat_patch_size,
            "counts": {split: dict(domains) for split, domains in self.counts.items()},
            "issues": [issue.to_dict() for issue in self.issues],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def to_text(self, max_per_kind: int = MAX_LISTED_PER_KIND) -> str:
        """A readable report: header, patch counts per split and domain, issues grouped by kind.

        Args:
            max_per_kind: files listed per kind of issue before ``... and N more``.
        """
        height, width = self.patch_size
        lines = [
            f"FLAIR dataset check: {self.root}",
            f"  aerial patch size {height}x{width} px, Sentinel-2 window {self.sat_patch_size} px",
            "",
            "Patches per split and domain",
        ]
        lines += _counts_lines(self.counts)
        for severity, title in ((ERROR, "Errors"), (WARNING, "Warnings")):
            selected = [i for i in self.issues if i.severity == severity]
            if not selected:
                continue
            lines += ["", f"{title} ({len(selected)})"]
            for kind, group in _group_by_kind(selected).items():
                lines.append(f"  {kind} ({len(group)})")
                for issue in group[:max_per_kind]:
                    lines.append(f"    {self.display_path(issue.path)}: {issue.message}")
                if len(group) > max_per_kind:
                    lines.append(f"    ... and {len(group) - max_per_kind} more")
        verdict = "OK" if self.ok else "FAILED"
        lines += [
            "",
            f"Result: {verdict}: {self.num_patches} patches, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings",
        ]
        return "\n".join(lines) + "\n"

    def display_path(self, path: Path) -> str:
        """A path relative to the root when it lies under it (for reports), else as is."""
        try:
            relative = path.relative_to(self.root)
        except ValueError:
            return str(path)
        return str(path) if relative == Path() else str(relative)


def print_report(report: CheckReport, console: Any = None) -> None:
    """Print a :class:`CheckReport` to a terminal with rich (tables and colours).

    Args:
        report: the report to print.
        console: a ``rich.console.Console``; a new one on stdout by default.
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    height, width = report.patch_size
    console.print(f"[bold]FLAIR dataset check:[/bold] {escape(str(report.root))}")
    console.print(
        f"aerial patch size {height}x{width} px, Sentinel-2 window {report.sat_patch_size} px"
    )
    table = Table(title="Patches per split and domain")
    table.add_column("split")
    table.add_column("domain")
    table.add_column("patches", justify="right")
    for split, domains in report.counts.items():
        for domain, count in sorted(domains.items()):
            table.add_row(split, domain, str(count))
        table.add_row(split, "[bold]total[/bold]", f"[bold]{sum(domains.values())}[/bold]")
    console.print(table)
    for severity, style in ((ERROR, "red"), (WARNING, "yellow")):
        selected = [i for i in report.issues if i.severity == severity]
        if not selected:
            continue
        console.print(f"[bold {style}]{severity.capitalize()}s ({len(selected)})[/bold {style}]")
        for kind, group in _group_by_kind(selected).items():
            console.print(f"  [{style}]{kind}[/{style}] ({len(group)})")
            for issue in group[:MAX_LISTED_PER_KIND]:
                path = escape(report.display_path(issue.path))
                console.print(f"    {path}: {escape(issue.message)}")
            if len(group) > MAX_LISTED_PER_KIND:
                console.print(f"    ... and {len(group) - MAX_LISTED_PER_KIND} more")
    verdict = "[bold green]OK[/bold green]" if report.ok else "[bold red]FAILED[/bold red]"
    console.print(
        f"Result: {verdict}: {report.num_patches} patches, {len(report.errors)} errors, "
        f"{len(report.warnings)} warnings"
    )


def check_dataset(
    root: str | Path,
    toy: bool | None = None,
    sat_patch_size: int = 40,
    progress: bool = False,
) -> CheckReport:
    """Validate a FLAIR dataset root file by file.

    Args:
        root: dataset root (the folder holding the ``flair_*`` trees and the JSON files).
        toy: True for the toy trees only, False for the full trees only, None for the full trees
            when there are any, else the toy ones (as :func:`flairlc.data.layout.find_trees`).
        sat_patch_size: Sentinel-2 window size in pixels used to check the centroids (a multiple
            of 8 between 8 and 112).
        progress: show a progress bar over the patches.

    Returns:
        The report: patch counts per split and domain and every issue found. A missing root or
        a root without any aerial tree gives a report with one error.

    Raises:
        ValueError: when ``sat_patch_size`` is not a multiple of 8 between 8 and 112.
    """
    if sat_patch_size % 8 or not 8 <= sat_patch_size <= 112:
        raise ValueError(f"sat_patch_size must be a multiple of 8 in 8..112, got {sat_patch_size}")
    root = Path(root)
    report = CheckReport(root=root, sat_patch_size=sat_patch_size)
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
    checker.run(trees, progress)
    return checker.finish()


# --------------------------------------------------------------------------------------------
# Internals


@dataclass
class _Split:
    """What the walk found in the trees of one split."""

    images: dict[str, Path] = field(default_factory=dict)
    masks: dict[str, Path] = field(default_factory=dict)
    sen_dirs: dict[tuple[str, str], Path] = field(default_factory=dict)
    has_labels: bool = False
    sen_trees: list[Path] = field(default_factory=list)


@dataclass
class _Header:
    """The parts of a raster header that the format constrains."""

    height: int
    width: int
    count: int
    dtypes: tuple[str, ...]
    crs: Any
    transform: Any

    @classmethod
    def of(cls, dataset: Any) -> _Header:
        """The header of an open rasterio dataset."""
        return cls(
            dataset.height, dataset.width, dataset.count, tuple(dataset.dtypes), dataset.crs,
            dataset.transform,
        )


class _Checker:
    """Collects issues while checking one root; each method checks one kind of file."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self.root = report.root
        self.issues: list[Issue] = []
        self.seen_ids: dict[str, Path] = {}

    def error(self, kind: str, path: Path, message: str) -> None:
        self.issues.append(Issue(ERROR, kind, Path(path), message))

    def warn(self, kind: str, path: Path, message: str) -> None:
        self.issues.append(Issue(WARNING, kind, Path(path), message))

    def finish(self) -> CheckReport:
        order = {ERROR: 0, WARNING: 1}
        self.report.issues = sorted(
            self.issues, key=lambda i: (order[i.severity], i.kind, str(i.path))
        )
        return self.report

    # -- the whole root ----------------------------------------------------------------------

    def run(self, trees: dict[tuple[str, str], list[Path]], progress: bool) -> None:
        splits = {split: self._walk(trees, split) for split in SPLITS}
        splits = {s: found for s, found in splits.items() if found.images or found.masks}
        has_sen = any(found.sen_trees for found in splits.values())
        # Centroids are needed only with Sentinel-2 trees; metadata is an optional modality.
        centroids = self._load_root_json(
            CENTROIDS_JSON_NAMES, "missing-centroid", ERROR if has_sen else None
        )
        metadata = self._load_root_json(METADATA_JSON_NAMES, "missing-metadata", WARNING)

        headers: dict[str, _Header] = {}
        for found in splits.values():
            for path in found.images.values():
                header = self._header(path)
                if header is not None:
                    headers[str(path)] = header
        sizes = Counter((h.height, h.width) for h in headers.values())
        if sizes:
            self.report.patch_size = sizes.most_common(1)[0][0]

        total = sum(len(found.images) + len(found.masks) for found in splits.values())
        with tqdm(total=total, desc="checking", unit="file", disable=not progress) as bar:
            for split, found in splits.items():
                self._check_split(split, found, headers, centroids, metadata, bar)

    def _walk(self, trees: dict[tuple[str, str], list[Path]], split: str) -> _Split:
        found = _Split(
            has_labels=bool(trees.get(("labels", split))),
            sen_trees=list(trees.get(("sen", split), [])),
        )
        for modality in ("aerial", "labels", "sen"):
            for tree in trees.get((modality, split), []):
                for leaf_dir, filenames in _leaf_dirs(tree):
                    self._index_leaf(modality, tree, leaf_dir, filenames, found)
        return found

    def _index_leaf(
        self, modality: str, tree: Path, leaf_dir: Path, filenames: list[str], found: _Split
    ) -> None:
        leaf = leaf_dir.name
        if len(leaf_dir.relative_to(tree).parts) != 3:
            if leaf in ("img", "msk", "sen"):
                self.warn(
                    "bad-layout", leaf_dir, "folder is not at D{ddd}_{yyyy}/Z{n}_{AA}/" + leaf
                )
            return
        if leaf == "sen" and modality == "sen":
            found.sen_dirs[(leaf_dir.parts[-3], leaf_dir.parts[-2])] = leaf_dir
            return
        if (modality, leaf) not in (("aerial", "img"), ("aerial", "msk"), ("labels", "msk")):
            return
        pattern, target = (_IMG, found.images) if leaf == "img" else (_MSK, found.masks)
        if leaf == "msk":
            # FLAIR #1-style roots keep masks beside the images, in the aerial tree.
            found.has_labels = True
        for filename in sorted(filenames):
            match = pattern.match(filename)
            if not match:
                continue
            path = leaf_dir / filename
            key = f"{leaf}:{match[1]}"
            if key in self.seen_ids:
                self.error(
                    "duplicate-id", path, f"patch id {match[1]} also used by {self.seen_ids[key]}"
                )
                continue
            self.seen_ids[key] = path
            target[match[1]] = path

    def _load_root_json(
        self, names: tuple[str, ...], kind: str, if_missing: Severity | None
    ) -> dict[str, Any] | None:
        """A root JSON file's content; None (and an issue) when it is missing or unreadable."""
        path = find_json(self.root, names)
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
            self.error("unreadable", path, f"cannot read as JSON ({_short(error)})")
        return None

    # -- one split ---------------------------------------------------------------------------

    def _check_split(
        self,
        split: str,
        found: _Split,
        headers: dict[str, _Header],
        centroids: dict[str, Any] | None,
        metadata: dict[str, Any] | None,
        bar: tqdm,
    ) -> None:
        counts: dict[str, int] = defaultdict(int)
        areas: dict[tuple[str, str], list[Path]] = defaultdict(list)
        for patch_id, image in sorted(found.images.items()):
            domain, area = image.parts[-4], image.parts[-3]
            counts[domain] += 1
            areas[(domain, area)].append(image)
            header = headers.get(str(image))
            if header is not None:
                self._check_image(image, header)
            mask = found.masks.get(patch_id)
            if mask is not None:
                self._check_mask(mask, header)
                bar.update(1)
            elif found.has_labels:
                self.error("missing-mask", image, f"no mask MSK_{patch_id}.tif for this image")
            if metadata is not None:
                self._check_metadata(image, patch_id, domain, metadata)
            bar.update(1)
        for patch_id, mask in sorted(found.masks.items()):
            if patch_id not in found.images:
                self.error(
                    "missing-image", mask, f"no aerial image IMG_{patch_id}.tif for this mask"
                )
                bar.update(1)
        self.report.counts[split] = dict(sorted(counts.items()))
        if found.sen_trees:
            self._check_sentinel(found, areas, centroids)

    def _check_metadata(
        self, image: Path, patch_id: str, domain: str, metadata: dict[str, Any]
    ) -> None:
        entry = metadata.get(f"IMG_{patch_id}")
        if entry is None:
            self.error(
                "missing-metadata", image, f"no IMG_{patch_id} entry in the aerial metadata JSON"
            )
        elif not isinstance(entry, dict):
            self.error("bad-metadata", image, f"metadata entry IMG_{patch_id} is not a JSON object")
        elif "domain" in entry and entry["domain"] != domain:
            self.warn(
                "metadata-mismatch",
                image,
                f"metadata says domain {entry['domain']!r}, the file is in {domain!r}",
            )

    # -- rasters -----------------------------------------------------------------------------

    def _header(self, path: Path) -> _Header | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as dataset:
                    return _Header.of(dataset)
        except Exception as error:  # noqa: BLE001 - any reader failure is a finding, not a crash
            self.error("unreadable", path, f"cannot open as a GeoTIFF ({_short(error)})")
            return None

    def _check_raster(
        self, path: Path, header: _Header, bands: int, size: tuple[int, int], size_what: str
    ) -> None:
        if (header.height, header.width) != size:
            self.error(
                "bad-size",
                path,
                f"{header.height}x{header.width} px, expected {size[0]}x{size[1]} ({size_what})",
            )
        if header.count != bands:
            self.error("bad-band-count", path, f"{header.count} bands, expected {bands}")
        bad_dtypes = sorted({d for d in header.dtypes if d != "uint8"})
        if bad_dtypes:
            self.error("bad-dtype", path, f"dtype {', '.join(bad_dtypes)}, expected uint8")
        if header.crs is None:
            self.error("bad-crs", path, f"no CRS, expected EPSG:{EXPECTED_EPSG}")
        elif header.crs.to_epsg() != EXPECTED_EPSG:
            self.error(
                "bad-crs", path, f"CRS {_crs_name(header.crs)}, expected EPSG:{EXPECTED_EPSG}"
            )

    def _check_image(self, path: Path, header: _Header) -> None:
        self._check_raster(
            path, header, AERIAL_BAND_COUNT, self.report.patch_size, "the dataset's patch size"
        )

    def _check_mask(self, path: Path, image: _Header | None) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                with rasterio.open(path) as dataset:
                    header = _Header.of(dataset)
                    values = dataset.read(1)
        except Exception as error:  # noqa: BLE001 - any reader failure is a finding, not a crash
            self.error("unreadable", path, f"cannot read as a GeoTIFF ({_short(error)})")
            return
        if image is not None:
            size, what = (image.height, image.width), "its image's size"
        else:
            size, what = self.report.patch_size, "the dataset's patch size"
        self._check_raster(path, header, MASK_BAND_COUNT, size, what)
        if image is not None and image.transform != header.transform:
            self.warn("grid-mismatch", path, "geotransform differs from its image's")
        bad = _bad_label_values(values)
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            self.error(
                "bad-label-values", path, f"label values outside 1..{NUM_RAW_CLASSES}: {shown}"
            )

    # -- Sentinel-2 --------------------------------------------------------------------------

    def _check_sentinel(
        self,
        found: _Split,
        areas: dict[tuple[str, str], list[Path]],
        centroids: dict[str, Any] | None,
    ) -> None:
        for key, images in sorted(areas.items()):
            sen_dir = found.sen_dirs.get(key)
            if sen_dir is None:
                expected = found.sen_trees[0] / key[0] / key[1] / "sen"
                self.error("missing-sentinel", expected, "no Sentinel-2 folder for this area")
                continue
            shape = self._check_super_area(sen_dir)
            if centroids is not None:
                for image in images:
                    self._check_centroid(image, centroids, shape)
        for key, sen_dir in sorted(found.sen_dirs.items()):
            if key not in areas:
                self.warn("orphan-sentinel", sen_dir, "Sentinel-2 folder of an area with no images")

    def _check_super_area(self, sen_dir: Path) -> tuple[int, int] | None:
        """Check the three files of a super-area; returns its ``(H, W)`` when known."""
        names = sorted(os.listdir(sen_dir))
        files: dict[str, Path] = {}
        for suffix in _SEN_SUFFIXES:
            matches = [name for name in names if name.endswith(suffix)]
            if not matches:
                self.error("missing-sentinel", sen_dir, f"no *{suffix} file in this folder")
            elif len(matches) > 1:
                self.error(
                    "ambiguous-sentinel", sen_dir, f"several *{suffix} files: {', '.join(matches)}"
                )
            else:
                files[suffix] = sen_dir / matches[0]
        data = self._load_npy(files.get("_data.npy"), len(SENTINEL_BANDS), "uint16")
        masks = self._load_npy(files.get("_masks.npy"), 2, "uint8")
        products = self._load_products(files.get("_products.txt"))
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
            self.error("sentinel-length-mismatch", first, f"number of dates T differs ({detail})")
        if data is not None and masks is not None and data[2:] != masks[2:]:
            self.error(
                "sentinel-shape-mismatch",
                files["_masks.npy"],
                f"spatial size {masks[2:]} differs from the data's {data[2:]}",
            )
        source = data or masks
        return (int(source[2]), int(source[3])) if source else None

    def _load_npy(self, path: Path | None, channels: int, dtype: str) -> tuple[int, ...] | None:
        """The shape of a ``(T, C, H, W)`` array when it is readable and well formed."""
        if path is None:
            return None
        try:
            array = np.load(path, mmap_mode="r")
        except Exception as error:  # noqa: BLE001 - any reader failure is a finding, not a crash
            self.error("unreadable", path, f"cannot read as a .npy array ({_short(error)})")
            return None
        if array.ndim != 4 or array.shape[1] != channels:
            self.error(
                "bad-shape",
                path,
                f"shape {array.shape}, expected (T, {channels}, H, W)",
            )
            return None
        if array.dtype != np.dtype(dtype):
            self.error("bad-dtype", path, f"dtype {array.dtype}, expected {dtype}")
        return tuple(int(n) for n in array.shape)

    def _load_products(self, path: Path | None) -> int | None:
        """The number of product names when the file is readable."""
        if path is None:
            return None
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as error:
            self.error("unreadable", path, f"cannot read as text ({_short(error)})")
            return None
        names = [(n, line.strip()) for n, line in enumerate(lines, 1) if line.strip()]
        if not names:
            self.error("bad-products", path, "no product names")
            return 0
        bad = []
        for number, name in names:
            try:
                product_date(name)
            except ValueError:
                bad.append(f"line {number} {name[:40]!r}")
        if bad:
            shown = "; ".join(bad[:5]) + ("; ..." if len(bad) > 5 else "")
            self.error(
                "bad-products",
                path,
                f"{len(bad)} product names without a YYYYMMDD date at offsets 11-18: {shown}",
            )
        return len(names)

    def _check_centroid(
        self, image: Path, centroids: dict[str, Any], shape: tuple[int, int] | None
    ) -> None:
        if image.name not in centroids:
            self.error("missing-centroid", image, f"no {image.name} entry in the centroids JSON")
            return
        try:
            row, col = (int(v) for v in centroids[image.name])
        except (TypeError, ValueError):
            self.error(
                "bad-centroid",
                image,
                f"centroid {centroids[image.name]!r} is not a [row, col] pair of integers",
            )
            return
        if shape is None:
            return
        size = self.report.sat_patch_size
        top, left = row - size // 2, col - size // 2
        where = (
            f"{size}x{size} window centred on ({row}, {col}) in a {shape[0]}x{shape[1]} super-area"
        )
        if top >= shape[0] or left >= shape[1] or top + size <= 0 or left + size <= 0:
            self.error("centroid-window-outside", image, f"{where} lies entirely outside it")
        elif window_outside(shape, row, col, size):
            self.warn("centroid-window-outside", image, f"{where} leaves it partly (edge-padded)")


def _leaf_dirs(tree: Path) -> Iterable[tuple[Path, list[str]]]:
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        if os.path.basename(dirpath) in ("img", "msk", "sen"):
            yield Path(dirpath), filenames


def _bad_label_values(values: np.ndarray) -> list[int]:
    if values.dtype == np.uint8:
        present = np.flatnonzero(np.bincount(values.ravel(), minlength=256))
    else:
        present = np.unique(values)
    return [int(v) for v in present if not 1 <= v <= NUM_RAW_CLASSES]


def _crs_name(crs: Any) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


def _counts_lines(counts: dict[str, dict[str, int]]) -> list[str]:
    rows = [("split", "domain", "patches")]
    for split, domains in counts.items():
        rows += [(split, domain, str(count)) for domain, count in sorted(domains.items())]
        rows.append((split, "total", str(sum(domains.values()))))
    if len(rows) == 1:
        return ["  (no patches found)"]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows]


def _group_by_kind(issues: list[Issue]) -> dict[str, list[Issue]]:
    groups: dict[str, list[Issue]] = defaultdict(list)
    for issue in issues:
        groups[issue.kind].append(issue)
    return dict(groups)
