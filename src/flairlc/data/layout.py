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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flairlc.data.errors import FlairDataError
from flairlc.data.sentinel import SuperAreaPaths

#: Accepted names of the root JSON files, in order of preference.
CENTROIDS_JSON_NAMES = ("flair-2_centroids_sp_to_patch.json", "flair_2_centroids_sp_to_patch.json")
METADATA_JSON_NAMES = ("flair-2_aerial_metadata.json", "flair_aerial_metadata.json")

_TREE = re.compile(r"^flair(?:_\d)?(?P<toy>_toy)?_(?P<modality>aerial|labels|sen)_(?P<split>train|test)$")
_IMG = re.compile(r"^IMG_(\d+)\.tiff?$")
_MSK = re.compile(r"^MSK_(\d+)\.tiff?$")
SPLITS = ("train", "test")


@dataclass
class PatchRecord:
    """Everything known about one FLAIR patch before reading it.

    Attributes:
        id: patch id, the digits of ``IMG_{id}.tif`` (e.g. ``"077413"``).
        domain: domain folder name, e.g. ``"D004_2021"`` (département and survey year).
        area: area folder name inside the domain, e.g. ``"Z1_NN"``.
        split: ``"train"`` or ``"test"``: the tree the patch comes from.
        aerial_path: the 5-band aerial image.
        mask_path: the label mask, or None when the labels tree is absent.
        sentinel: the area's Sentinel-2 super-area files, or None.
        centroid: ``(row, col)`` of the patch centre in the super-area, or None.
        metadata: the patch's aerial metadata (all fields kept), or None.
        centroids_json: the root's centroids JSON file (for messages), or None when absent.
        metadata_json: the root's aerial metadata JSON file (for messages), or None when absent.
    """

    id: str
    domain: str
    area: str
    split: str
    aerial_path: Path
    mask_path: Path | None = None
    sentinel: SuperAreaPaths | None = None
    centroid: tuple[int, int] | None = None
    metadata: dict[str, Any] | None = field(default=None, repr=False)
    centroids_json: Path | None = field(default=None, repr=False)
    metadata_json: Path | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The image file name, ``IMG_{id}.tif``: the key of the centroids JSON."""
        return self.aerial_path.name


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
    for split in splits:
        masks = _index_files(trees.get(("labels", split), []), _MSK, "msk")
        images = _index_files(trees.get(("aerial", split), []), _IMG, "img")
        # FLAIR #1-style roots may keep masks beside the images in the aerial tree.
        masks = {**_index_files(trees.get(("aerial", split), []), _MSK, "msk"), **masks}
        sentinel = _index_super_areas(trees.get(("sen", split), []))
        for patch_id, image in sorted(images.items()):
            domain, area = image.parts[-4], image.parts[-3]
            centroid = _centroid(centroids.get(image.name), image.name, centroids_path)
            records.append(
                PatchRecord(
                    id=patch_id,
                    domain=domain,
                    area=area,
                    split=split,
                    aerial_path=image,
                    mask_path=masks.get(patch_id),
                    sentinel=sentinel.get((domain, area)),
                    centroid=centroid,
                    metadata=metadata.get(f"IMG_{patch_id}"),
                    centroids_json=centroids_path,
                    metadata_json=metadata_path,
                )
            )
    return records


def _centroid(value: Any, name: str, path: Path | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        row, col = value
        return int(row), int(col)
    except (TypeError, ValueError):
        raise FlairDataError(
            path or "centroids JSON", f"entry {name!r} is {value!r}, expected [row, col] integers"
        ) from None


def _index_files(trees: list[Path], pattern: re.Pattern[str], leaf: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for tree in trees:
        for dirpath, _dirnames, filenames in os.walk(tree):
            if os.path.basename(dirpath) != leaf:
                continue
            for filename in filenames:
                match = pattern.match(filename)
                if match:
                    found[match[1]] = Path(dirpath) / filename
    return found


def _index_super_areas(trees: list[Path]) -> dict[tuple[str, str], SuperAreaPaths]:
    found: dict[tuple[str, str], SuperAreaPaths] = {}
    for tree in trees:
        for dirpath, _dirnames, filenames in os.walk(tree):
            if os.path.basename(dirpath) != "sen":
                continue
            by_suffix = {}
            for suffix in ("_data.npy", "_masks.npy", "_products.txt"):
                matches = [f for f in filenames if f.endswith(suffix)]
                if len(matches) == 1:
                    by_suffix[suffix] = Path(dirpath) / matches[0]
            if len(by_suffix) == 3:
                parts = Path(dirpath).parts
                found[(parts[-3], parts[-2])] = SuperAreaPaths(
                    by_suffix["_data.npy"], by_suffix["_masks.npy"], by_suffix["_products.txt"]
                )
    return found
