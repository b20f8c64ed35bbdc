"""`FlairDataset`: FLAIR #2 patches as dictionaries of tensors, for any choice of modalities.

FLAIR #2 (Garioud et al., "FLAIR: a Country-Scale Land Cover Semantic Segmentation Dataset From
Multi-Source Optical Imagery", NeurIPS 2023 Datasets and Benchmarks) pairs 512×512 aerial patches
at 0.2 m (R, G, B, NIR, elevation) and their 19-class masks with a yearly Sentinel-2 time series
(10 bands, 10 m) around each patch and the aerial acquisition metadata. The layout on disk is
described in :mod:`flairlc.data.layout`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from flairlc import nomenclature as nomenclature_module
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import AREA_MODALITIES, CENTROIDS_JSON_NAMES, PatchRecord, discover_patches
from flairlc.data.metadata import encode_metadata
from flairlc.data.readers import read_aerial, read_mask
from flairlc.data.sentinel import REFERENCE_DATE, SeriesPreprocessing, SuperArea

#: Modalities a dataset can load.
MODALITIES = ("aerial", "mask", "sentinel", "metadata")
#: The files of a patch's Sentinel-2 super-area (the ``sentinel`` modality reads all three).
AREA_KEYS = tuple(m.key for m in AREA_MODALITIES)


class FlairDataset(Dataset):
    """FLAIR patches as dictionaries of tensors.

    Each sample holds the keys of the requested modalities, plus ``id`` (str), ``domain`` (str)
    and ``index`` (int, the sample's position in the dataset):

    - ``aerial``: uint8 ``(5, H, W)``, R, G, B, NIR, elevation (raw digital numbers);
    - ``mask``: int64 ``(H, W)``, zero-based class indices (13 baseline or 19 raw classes);
    - ``sentinel``: float32 ``(T, 10, S, S)`` reflectance ×10 000 around the patch centre, after
      the optional cloud filter and monthly average; ``dates_days``: int64 ``(T,)`` day offsets
      to ``reference_date`` (date − reference; reference − date with the ``"paper"`` profile);
    - ``metadata``: float32 ``(geo_enc_size + 13,)`` encoded aerial metadata.

    Args:
        records: the patches (see :func:`flairlc.data.discover_patches`).
        modalities: any of ``"aerial"``, ``"mask"``, ``"sentinel"``, ``"metadata"``.
        nomenclature: ``"baseline"`` (13 classes), ``"raw"`` (19), or a JSON file (or dict) of
            classes made of raw mask values (:func:`flairlc.nomenclature.get`).
        sat_patch_size: side S of the Sentinel-2 window in 10 m pixels (multiple of 8, 8..112).
        filter_clouds: drop dates whose window is covered by cloud or snow.
        cloud_max_cover: share of covered pixels above which a date is dropped.
        cloud_prob_threshold: probability (0–100) at or above which a pixel is covered.
        average_monthly: average the kept dates per calendar month (dated on the 15th).
        reference_date: origin of ``dates_days``.
        geo_enc_size: size of the sinusoidal encoding of the patch centroid.
        profile: preprocessing profile, ``"flairlc"`` or ``"paper"`` (see
            :class:`~flairlc.data.sentinel.SeriesPreprocessing`): the cloud filter's rule, the
            sign of ``dates_days`` and the centroid encoding of ``metadata``.
        patch_size: expected aerial (and mask) size ``(H, W)`` in pixels, or None (then an image
            and its mask must only agree); :class:`~flairlc.training.FlairDataModule` sets it from
            the headers it validates.

    Raises:
        FlairDataError: when a requested modality is missing for a patch (the message names it).
            Reading a sample raises it too, naming the file and the problem: unreadable or
            truncated file, wrong dtype, band count or size, label values outside 1..19,
            metadata entry that cannot be encoded, centroid window outside the super-area.
    """

    def __init__(
        self,
        records: Sequence[PatchRecord],
        modalities: Sequence[str] = ("aerial", "mask"),
        nomenclature: str | dict[str, Any] = "baseline",
        sat_patch_size: int = 40,
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        reference_date: dt.date = REFERENCE_DATE,
        geo_enc_size: int = 32,
        patch_size: tuple[int, int] | None = None,
        profile: str = "flairlc",
    ) -> None:
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {MODALITIES}")
        if sat_patch_size % 8 or not 8 <= sat_patch_size <= 112:
            raise ValueError(f"sat_patch_size must be a multiple of 8 in 8..112, got {sat_patch_size}")
        self.records = list(records)
        self.modalities = tuple(modalities)
        # Resolved once (a JSON file read, a dict parsed), not at every mask read.
        self.nomenclature = nomenclature_module.get(nomenclature)
        self.sat_patch_size = sat_patch_size
        self.preprocessing = SeriesPreprocessing(
            filter_clouds, cloud_max_cover, cloud_prob_threshold, average_monthly, reference_date, profile
        )
        self.geo_enc_size = geo_enc_size
        self.patch_size = tuple(patch_size) if patch_size is not None else None
        self._super_areas: dict[Path, SuperArea] = {}
        self._check_records()

    @classmethod
    def from_root(
        cls,
        root: str | Path,
        split: str = "train",
        domains: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> FlairDataset:
        """A dataset of one split of a FLAIR root, optionally restricted to some domains."""
        records = discover_patches(root, splits=(split,))
        if domains is not None:
            wanted = set(domains)
            records = [r for r in records if r.domain in wanted]
        return cls(records, **kwargs)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        sample: dict[str, Any] = {"id": record.id, "domain": record.domain, "index": index}
        size = self.patch_size
        if "aerial" in self.modalities:
            aerial = read_aerial(record.files["aerial"], size=size)
            sample["aerial"] = torch.from_numpy(aerial)
            size = aerial.shape[1:]
        if "mask" in self.modalities:
            mask = read_mask(record.files["mask"], self.nomenclature)
            _check_mask_size(record, mask.shape, size, from_image="aerial" in self.modalities)
            sample["mask"] = torch.from_numpy(mask.astype(np.int64))
        if "sentinel" in self.modalities:
            series, days = self.sentinel_window(record)
            sample["sentinel"] = torch.from_numpy(series)
            sample["dates_days"] = torch.from_numpy(days)
        if "metadata" in self.modalities:
            sample["metadata"] = torch.from_numpy(self.encoded_metadata(record))
        return sample

    def encoded_metadata(self, record: PatchRecord) -> np.ndarray:
        """The encoded aerial metadata of a patch, float32 ``(geo_enc_size + 13,)``.

        Raises:
            FlairDataError: naming the patch and the JSON file when its entry cannot be encoded.
        """
        assert record.metadata is not None
        try:
            return encode_metadata(record.metadata, self.geo_enc_size, self.preprocessing.geo_encoding)
        except (KeyError, TypeError, ValueError):
            problem = metadata_problem(record.metadata, self.geo_enc_size) or "cannot be encoded"
            json_name = record.metadata_json.name if record.metadata_json else "the aerial metadata JSON"
            raise FlairDataError(
                record.files["aerial"], f"its entry IMG_{record.id} in {json_name} {problem}"
            ) from None

    def sentinel_window(self, record: PatchRecord) -> tuple[np.ndarray, np.ndarray]:
        """The preprocessed Sentinel-2 series of a patch.

        Returns:
            float32 ``(T, 10, S, S)`` reflectance ×10 000 and int64 ``(T,)`` day offsets.
        """
        assert record.centroid is not None
        super_area = self._super_area(record)
        row, col = record.centroid
        size = self.sat_patch_size
        if window_outside_entirely(super_area.shape, row, col, size):
            height, width = super_area.shape
            json_name = record.centroids_json.name if record.centroids_json else "the centroids JSON"
            raise FlairDataError(
                record.files["aerial"],
                f"its centroid ({row}, {col}) in {json_name} puts the {size}x{size} Sentinel-2 "
                f"window entirely outside the {height}x{width} super-area {record.files['sentinel'].name}",
            )
        data, masks = super_area.window(row, col, size)
        return self.preprocessing.apply(data, masks, super_area.dates)

    def _super_area(self, record: PatchRecord) -> SuperArea:
        key = record.files["sentinel"]
        if key not in self._super_areas:
            paths = record.sentinel
            assert paths is not None
            self._super_areas[key] = SuperArea(paths)
        return self._super_areas[key]

    def _check_records(self) -> None:
        needs = {
            "mask": (("mask",), "its label mask MSK_{id}.tif"),
            "sentinel": (AREA_KEYS, "its area's Sentinel-2 files (sen/…_data.npy, _masks.npy, _products.txt)"),
            "metadata": (("metadata",), "its entry in the aerial metadata JSON"),
        }
        for modality, (keys, what) in needs.items():
            if modality not in self.modalities:
                continue
            missing = [r for r in self.records if _lacks(r, keys)]
            if modality == "sentinel" and not missing:
                self._check_centroids()
            if missing:
                first = missing[0]
                raise FlairDataError(
                    first.files["aerial"],
                    f"{len(missing)} patch(es) lack {what.format(id=first.id)} needed for the "
                    f"'{modality}' modality (first: {first.id}); run `flairlc check` on the root",
                )

    def _check_centroids(self) -> None:
        missing = [r for r in self.records if not _lacks(r, AREA_KEYS) and r.centroid is None]
        if missing:
            first = missing[0]
            json_name = first.centroids_json.name if first.centroids_json else None
            where = (
                f"no {first.name} entry in {json_name}"
                if json_name
                else f"no centroids JSON at the root ({CENTROIDS_JSON_NAMES[0]}) for {first.name}"
            )
            raise FlairDataError(
                first.files["aerial"],
                f"{where}: its Sentinel-2 window is unknown, needed for the 'sentinel' modality "
                f"({len(missing)} patch(es) lack a centroid); run `flairlc check` on the root",
            )

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are reopened in each DataLoader worker rather than pickled.
        state = self.__dict__.copy()
        state["_super_areas"] = {}
        return state


def metadata_problem(entry: Any, geo_enc_size: int = 32) -> str | None:
    """Why a patch's aerial metadata entry cannot be encoded, or None when it can.

    Args:
        entry: the patch's value in the aerial metadata JSON.
        geo_enc_size: as in :func:`flairlc.data.encode_metadata`.

    Returns:
        The problem in words completing "entry IMG_… in FILE …", e.g. ``"lacks the field 'date'"``.
    """
    if not isinstance(entry, dict):
        return f"is not a JSON object ({type(entry).__name__})"
    try:
        encode_metadata(entry, geo_enc_size)
    except KeyError as error:
        return f"lacks the field {error.args[0]!r}"
    except (TypeError, ValueError) as error:
        return f"has a bad value ({error})"
    return None


def _check_mask_size(
    record: PatchRecord, shape: tuple[int, ...], size: tuple[int, ...] | None, from_image: bool
) -> None:
    """A mask must have its image's size (or the dataset's, when no image is read)."""
    if size is None or tuple(shape) == tuple(size):
        return
    mask = record.files["mask"]
    found, expected = f"{shape[0]}x{shape[1]}", f"{size[0]}x{size[1]}"
    if from_image:
        # Which of the two is wrong is unknown here: name both.
        raise FlairDataError(
            record.files["aerial"], f"aerial image is {expected} px but its mask {mask.name} is {found} px"
        )
    raise FlairDataError(mask, f"label mask is {found} px, expected {expected}")


def _lacks(record: PatchRecord, keys: tuple[str, ...]) -> bool:
    """Whether a patch lacks one of the files of ``keys`` (``"metadata"``: its metadata entry)."""
    return any(record.metadata is None if key == "metadata" else key not in record.files for key in keys)


def window_outside_entirely(shape: tuple[int, int], row: int, col: int, size: int) -> bool:
    """Whether a ``size × size`` window centred on ``(row, col)`` misses an ``(H, W)`` array.

    Such a window cannot be edge-padded (see :func:`flairlc.data.sentinel.window_slice`).
    """
    top, left = row - size // 2, col - size // 2
    return top >= shape[0] or left >= shape[1] or top + size <= 0 or left + size <= 0
