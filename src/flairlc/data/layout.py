"""Discovery of a FLAIR dataset root: every patch with its id, domain, area, split and files.

A FLAIR #2 root holds one tree per modality and split (``flair_aerial_train/``,
``flair_labels_train/``, ``flair_sen_train/``, ``flair_2_aerial_test/``, …, and the ``toy``
variants), each organised as ``D{ddd}_{yyyy}/Z{n}_{AA}/{img,msk,sen}/``, plus two JSON files at the
root (centroids in the Sentinel-2 super-areas, aerial metadata). A FLAIR #1-style root (aerial and
labels only) works too, as does a root whose test labels are absent (prediction only).
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flairlc.data.bands import AERIAL_BANDS
from flairlc.data.errors import FlairDataError
from flairlc.data.sentinel import SENTINEL_BANDS, SuperAreaPaths

#: Accepted names of the root JSON files, in order of preference.
CENTROIDS_JSON_NAMES = ("flair-2_centroids_sp_to_patch.json", "flair_2_centroids_sp_to_patch.json")
METADATA_JSON_NAMES = ("flair-2_aerial_metadata.json", "flair_aerial_metadata.json")

_TREE = re.compile(r"^flair(?:_\d)?(?P<toy>_toy)?_(?P<modality>aerial|labels|sen)_(?P<split>train|test)$")
SPLITS = ("train", "test")
#: Depth of a leaf folder in its tree: ``D{ddd}_{yyyy}/Z{n}_{AA}/{leaf}``.
LEAF_DEPTH = 3


@dataclass(frozen=True)
class FlairModality:
    """One kind of file of a FLAIR #2 root: where it lies and what it holds.

    The FLAIR #2 counterpart of FLAIR-HUB's :class:`~flairlc.data.hub.modalities.HubModality`:
    discovery and ``flairlc check`` read the file-name grammar from it.

    Attributes:
        key: key of the modality in a :class:`PatchRecord`'s ``files``.
        bands: band names of one image (of one date, for a time series), in file order.
        trees: the modality trees holding it (``flair_{tree}_{split}``), in reading order: a
            file of a later tree replaces one of an earlier tree for the same patch.
        leaf: the leaf folder holding the files, ``D{ddd}_{yyyy}/Z{n}_{AA}/{leaf}/``.
        prefix: a patch file's name before its id, ``IMG_`` in ``IMG_{id}.tif`` (None for a file
            of an area).
        suffix: the end of an area's file name, ``_data.npy`` (None for a patch file).
        pixel_m: pixel size, metres (None: not an image).
        dtype: dtype of the files (None: not an array).
        time_series: True when the file stacks dates, ``(T, C, H, W)``.
        dates_file: key of the modality listing the dates of a time series.
        label: True for a label modality (a mask, not an input).
    """

    key: str
    bands: tuple[str, ...]
    trees: tuple[str, ...]
    leaf: str
    prefix: str | None = None
    suffix: str | None = None
    pixel_m: float | None = None
    dtype: str | None = None
    time_series: bool = False
    dates_file: str | None = None
    label: bool = False

    @property
    def per_area(self) -> bool:
        """True for a file of a Sentinel-2 super-area, shared by the patches of its area."""
        return self.suffix is not None

    def patch_id(self, filename: str) -> str | None:
        """The patch id of a file name of this modality (``IMG_077413.tif``: ``077413``), or None."""
        match = re.match(rf"^{self.prefix}(\d+)\.tiff?$", filename) if self.prefix else None
        return match[1] if match else None


#: The files of a FLAIR #2 root, by key (``metadata``, an entry of a root JSON file, is no file).
FLAIR_MODALITIES: dict[str, FlairModality] = {
    m.key: m
    for m in (
        FlairModality("aerial", AERIAL_BANDS, ("aerial",), "img", prefix="IMG_", pixel_m=0.2, dtype="uint8"),
        # FLAIR #1-style roots keep masks beside the images, in the aerial tree.
        FlairModality(
            "mask", ("class",), ("aerial", "labels"), "msk", prefix="MSK_", pixel_m=0.2, dtype="uint8", label=True
        ),
        FlairModality(
            "sentinel", SENTINEL_BANDS, ("sen",), "sen", suffix="_data.npy", pixel_m=10.0, dtype="uint16",
            time_series=True, dates_file="sentinel_products",
        ),
        # Channel 0 snow, channel 1 cloud, probabilities 0..100, one per date of the series.
        FlairModality(
            "sentinel_masks", ("snow", "cloud"), ("sen",), "sen", suffix="_masks.npy", pixel_m=10.0, dtype="uint8",
            time_series=True, dates_file="sentinel_products",
        ),
        # One Sentinel-2 product name per date of the series, its date at offsets 11-18.
        FlairModality("sentinel_products", ("product",), ("sen",), "sen", suffix="_products.txt"),
    )
}
#: The modalities of a super-area's ``sen/`` folder, in :class:`SuperAreaPaths` order.
AREA_MODALITIES = tuple(m for m in FLAIR_MODALITIES.values() if m.per_area)
#: The leaf folders of a FLAIR tree.
LEAF_FOLDERS = tuple(dict.fromkeys(m.leaf for m in FLAIR_MODALITIES.values()))


@dataclass
class PatchRecord:
    """Everything known about one FLAIR patch before reading it.

    Attributes:
        id: patch id, the digits of ``IMG_{id}.tif`` (e.g. ``"077413"``).
        domain: domain folder name, e.g. ``"D004_2021"`` (département and survey year).
        area: area folder name inside the domain, e.g. ``"Z1_NN"``.
        split: ``"train"`` or ``"test"``: the tree the patch comes from.
        files: the patch's file of each modality present, by :data:`FLAIR_MODALITIES` key:
            ``"aerial"`` (always), ``"mask"``, and its area's Sentinel-2 files ``"sentinel"``,
            ``"sentinel_masks"``, ``"sentinel_products"`` (all three or none).
        centroid: ``(row, col)`` of the patch centre in the super-area, or None.
        metadata: the patch's aerial metadata (all fields kept), or None.
        centroids_json: the root's centroids JSON file (for messages), or None when absent.
        metadata_json: the root's aerial metadata JSON file (for messages), or None when absent.
    """

    id: str
    domain: str
    area: str
    split: str
    files: dict[str, Path]
    centroid: tuple[int, int] | None = None
    metadata: dict[str, Any] | None = field(default=None, repr=False)
    centroids_json: Path | None = field(default=None, repr=False)
    metadata_json: Path | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The image file name, ``IMG_{id}.tif``: the key of the centroids JSON."""
        return self.aerial_path.name

    @property
    def aerial_path(self) -> Path:
        """The 5-band aerial image, ``files["aerial"]``."""
        return self.files["aerial"]

    @property
    def mask_path(self) -> Path | None:
        """The label mask, ``files["mask"]``, or None when the patch has none."""
        return self.files.get("mask")

    @property
    def sentinel(self) -> SuperAreaPaths | None:
        """The area's Sentinel-2 super-area files, or None when the patch has none."""
        if any(m.key not in self.files for m in AREA_MODALITIES):
            return None
        return SuperAreaPaths(*(self.files[m.key] for m in AREA_MODALITIES))


def find_trees(root: str | Path, toy: bool | None = None) -> dict[tuple[str, str], list[Path]]:
    """The modality trees under a FLAIR root, keyed by ``(modality, split)``.

    Args:
        root: dataset root.
        toy: True for the toy trees only, False for the full trees only, None for the full trees
            when there are any, else the toy ones.
    """
    root = Path(root)
    if not root.exists():
        raise FlairDataError(root, "dataset root does not exist")
    if not root.is_dir():
        raise FlairDataError(root, "dataset root is not a folder")
    full: dict[tuple[str, str], list[Path]] = defaultdict(list)
    toys: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for child in sorted(root.iterdir()):
        match = _TREE.match(child.name)
        if match and child.is_dir():
            target = toys if match["toy"] else full
            target[(match["modality"], match["split"])].append(child)
    if toy is True:
        return dict(toys)
    if toy is False or full:
        return dict(full)
    return dict(toys)


def find_json(root: str | Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` that exists in ``root``, or None."""
    for name in names:
        path = Path(root) / name
        if path.is_file():
            return path
    return None


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON object, with a clear error naming the file."""
    try:
        with open(path) as file:
            content = json.load(file)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FlairDataError(path, f"cannot read as JSON ({error})") from None
    if not isinstance(content, dict):
        raise FlairDataError(path, "expected a JSON object at the top level")
    return content


@dataclass
class SplitFiles:
    """The files the trees of one split hold, in reading order (trees, folders, files sorted).

    Attributes:
        patch_files: ``(id, path)`` of every patch file, by modality key (``"aerial"``,
            ``"mask"``); an id may come twice (in two areas, or two trees).
        area_folders: the ``sen/`` folder of each ``(domain, area)``.
        labelled: whether the split has labels: a labels tree, or ``msk/`` folders in its aerial
            tree (FLAIR #1 style).
        sentinel_trees: the split's Sentinel-2 trees.
    """

    patch_files: dict[str, list[tuple[str, Path]]] = field(default_factory=dict)
    area_folders: dict[tuple[str, str], Path] = field(default_factory=dict)
    labelled: bool = False
    sentinel_trees: list[Path] = field(default_factory=list)


@dataclass
class RootFiles:
    """The files of a FLAIR root, as :func:`scan_root` finds them.

    Attributes:
        splits: what each split's trees hold.
        misplaced: leaf folders (``img``, ``msk``, ``sen``) that are not at
            ``D{ddd}_{yyyy}/Z{n}_{AA}/{leaf}`` in their tree: their files are left out.
    """

    splits: dict[str, SplitFiles] = field(default_factory=dict)
    misplaced: list[Path] = field(default_factory=list)


def scan_root(trees: dict[tuple[str, str], list[Path]], splits: tuple[str, ...] = SPLITS) -> RootFiles:
    """Every file of the modality trees of a FLAIR root that the grammar of
    :data:`FLAIR_MODALITIES` names, split by split.

    Args:
        trees: the root's trees (:func:`find_trees`).
        splits: which splits to scan.
    """
    found = RootFiles()
    for split in splits:
        files = found.splits[split] = SplitFiles(
            {m.key: [] for m in FLAIR_MODALITIES.values() if not m.per_area},
            labelled=bool(trees.get(("labels", split))),
            sentinel_trees=list(trees.get(("sen", split), [])),
        )
        for tree_kind in ("aerial", "labels", "sen"):
            for tree in trees.get((tree_kind, split), []):
                for leaf_dir, filenames in _leaf_dirs(tree):
                    if len(leaf_dir.relative_to(tree).parts) != LEAF_DEPTH:
                        found.misplaced.append(leaf_dir)
                        continue
                    _scan_leaf(tree_kind, leaf_dir, filenames, files)
    return found


def _scan_leaf(tree_kind: str, leaf_dir: Path, filenames: list[str], files: SplitFiles) -> None:
    for modality in FLAIR_MODALITIES.values():
        if tree_kind not in modality.trees or leaf_dir.name != modality.leaf:
            continue
        if modality.per_area:
            files.area_folders[(leaf_dir.parts[-3], leaf_dir.parts[-2])] = leaf_dir
            return
        files.labelled |= modality.label
        for filename in sorted(filenames):
            patch_id = modality.patch_id(filename)
            if patch_id is not None:
                files.patch_files[modality.key].append((patch_id, leaf_dir / filename))


def _leaf_dirs(tree: Path) -> Iterable[tuple[Path, list[str]]]:
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        if os.path.basename(dirpath) in LEAF_FOLDERS:
            yield Path(dirpath), filenames


def area_files(folder: Path, filenames: Iterable[str]) -> dict[str, list[Path]]:
    """The files of a super-area folder for each of :data:`AREA_MODALITIES`, by key."""
    names = sorted(filenames)
    return {m.key: [folder / n for n in names if n.endswith(m.suffix or "")] for m in AREA_MODALITIES}


def discover_patches(
    root: str | Path, splits: tuple[str, ...] = SPLITS, toy: bool | None = None
) -> list[PatchRecord]:
    """Every patch of a FLAIR root, sorted by split then id.

    Args:
        root: dataset root (the folder holding the ``flair_*`` trees and the JSON files).
        splits: which splits to include.
        toy: see :func:`find_trees`.

    Returns:
        One record per aerial image. Masks, Sentinel-2 files, centroids and metadata are attached
        when present; their absence is not an error here (``flairlc check`` reports it).

    Raises:
        FlairDataError: when the root holds no aerial tree.
    """
    root = Path(root)
    trees = find_trees(root, toy)
    if not any(modality == "aerial" for modality, _ in trees):
        raise FlairDataError(
            root,
            "no aerial tree found (expected e.g. flair_aerial_train/ or flair_2_aerial_test/); "
            "is this a FLAIR dataset root?",
        )
    centroids_path = find_json(root, CENTROIDS_JSON_NAMES)
    metadata_path = find_json(root, METADATA_JSON_NAMES)
    centroids = load_json(centroids_path) if centroids_path else {}
    metadata = load_json(metadata_path) if metadata_path else {}

    records: list[PatchRecord] = []
    for split, files in scan_root(trees, splits).splits.items():
        # A later file of an id replaces an earlier one: labels-tree masks those beside images.
        patch_files = {key: dict(found) for key, found in files.patch_files.items()}
        area_files_of = {key: _super_area(folder) for key, folder in files.area_folders.items()}
        for patch_id, image in sorted(patch_files["aerial"].items()):
            domain, area = image.parts[-4], image.parts[-3]
            centroid = _centroid(centroids.get(image.name), image.name, centroids_path)
            own = {key: found[patch_id] for key, found in patch_files.items() if patch_id in found}
            records.append(
                PatchRecord(
                    id=patch_id,
                    domain=domain,
                    area=area,
                    split=split,
                    files={**own, **area_files_of.get((domain, area), {})},
                    centroid=centroid,
                    metadata=metadata.get(f"IMG_{patch_id}"),
                    centroids_json=centroids_path,
                    metadata_json=metadata_path,
                )
            )
    return records


def _super_area(folder: Path) -> dict[str, Path]:
    """The files of a super-area folder by key when each is there once, else none."""
    try:
        files = area_files(folder, os.listdir(folder))
    except OSError:
        return {}
    if any(len(paths) != 1 for paths in files.values()):
        return {}
    return {key: paths[0] for key, paths in files.items()}


def parse_centroid(value: Any) -> tuple[int, int]:
    """A centroid entry ``[row, col]`` as integers.

    Raises:
        ValueError: when it is not a pair of integers.
    """
    try:
        row, col = value
        return int(row), int(col)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a [row, col] pair of integers") from None


def _centroid(value: Any, name: str, path: Path | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        return parse_centroid(value)
    except ValueError:
        raise FlairDataError(
            path or "centroids JSON", f"entry {name!r} is {value!r}, expected [row, col] integers"
        ) from None
