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

from flairlc.data.errors import FlairDataError
from flairlc.data.layout import PatchRecord, discover_patches
from flairlc.data.metadata import encode_metadata
from flairlc.data.readers import read_aerial, read_mask
from flairlc.data.sentinel import REFERENCE_DATE, SeriesPreprocessing, SuperArea

#: Modalities a dataset can load.
MODALITIES = ("aerial", "mask", "sentinel", "metadata")


class FlairDataset(Dataset):
    """FLAIR patches as dictionaries of tensors.

    Each sample holds the keys of the requested modalities, plus ``id`` (str), ``domain`` (str)
    and ``index`` (int, the sample's position in the dataset):

    - ``aerial``: uint8 ``(5, H, W)``, R, G, B, NIR, elevation (raw digital numbers);
    - ``mask``: int64 ``(H, W)``, zero-based class indices (13 baseline or 19 raw classes);
    - ``sentinel``: float32 ``(T, 10, S, S)`` reflectance ×10 000 around the patch centre, after
      the optional cloud filter and monthly average; ``dates_days``: int64 ``(T,)`` day offsets
      to ``reference_date``;
    - ``metadata``: float32 ``(geo_enc_size + 13,)`` encoded aerial metadata.

    Args:
        records: the patches (see :func:`flairlc.data.discover_patches`).
        modalities: any of ``"aerial"``, ``"mask"``, ``"sentinel"``, ``"metadata"``.
        nomenclature: ``"baseline"`` (13 classes) or ``"raw"`` (19).
        sat_patch_size: side S of the Sentinel-2 window in 10 m pixels (multiple of 8, 8..112).
        filter_clouds: drop dates whose window is covered by cloud or snow.
        cloud_max_cover: share of covered pixels above which a date is dropped.
        cloud_prob_threshold: probability (0–100) at or above which a pixel is covered.
        average_monthly: average the kept dates per calendar month (dated on the 15th).
        reference_date: origin of ``dates_days``.
        geo_enc_size: size of the sinusoidal encoding of the patch centroid.

    Raises:
        FlairDataError: when a requested modality is missing for a patch (the message names it).
    """

    def __init__(
        self,
        records: Sequence[PatchRecord],
        modalities: Sequence[str] = ("aerial", "mask"),
        nomenclature: str = "baseline",
        sat_patch_size: int = 40,
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        reference_date: dt.date = REFERENCE_DATE,
        geo_enc_size: int = 32,
    ) -> None:
        unknown = set(modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; choose from {MODALITIES}")
        if sat_patch_size % 8 or not 8 <= sat_patch_size <= 112:
            raise ValueError(f"sat_patch_size must be a multiple of 8 in 8..112, got {sat_patch_size}")
        self.records = list(records)
        self.modalities = tuple(modalities)
        self.nomenclature = nomenclature
        self.sat_patch_size = sat_patch_size
        self.preprocessing = SeriesPreprocessing(
            filter_clouds, cloud_max_cover, cloud_prob_threshold, average_monthly, reference_date
        )
        self.geo_enc_size = geo_enc_size
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
        if "aerial" in self.modalities:
            sample["aerial"] = torch.from_numpy(read_aerial(record.aerial_path))
        if "mask" in self.modalities:
            assert record.mask_path is not None
            sample["mask"] = torch.from_numpy(read_mask(record.mask_path, self.nomenclature).astype(np.int64))
        if "sentinel" in self.modalities:
            series, days = self.sentinel_window(record)
            sample["sentinel"] = torch.from_numpy(series)
            sample["dates_days"] = torch.from_numpy(days)
        if "metadata" in self.modalities:
            assert record.metadata is not None
            sample["metadata"] = torch.from_numpy(encode_metadata(record.metadata, self.geo_enc_size))
        return sample

    def sentinel_window(self, record: PatchRecord) -> tuple[np.ndarray, np.ndarray]:
        """The preprocessed Sentinel-2 series of a patch.

        Returns:
            float32 ``(T, 10, S, S)`` reflectance ×10 000 and int64 ``(T,)`` day offsets.
        """
        assert record.sentinel is not None and record.centroid is not None
        super_area = self._super_area(record)
        row, col = record.centroid
        data, masks = super_area.window(row, col, self.sat_patch_size)
        return self.preprocessing.apply(data, masks, super_area.dates)

    def _super_area(self, record: PatchRecord) -> SuperArea:
        assert record.sentinel is not None
        key = record.sentinel.data
        if key not in self._super_areas:
            self._super_areas[key] = SuperArea(record.sentinel)
        return self._super_areas[key]

    def _check_records(self) -> None:
        needs = {
            "mask": ("mask_path", "its label mask MSK_{id}.tif"),
            "sentinel": ("sentinel", "its area's Sentinel-2 files (sen/…_data.npy, _masks.npy, _products.txt)"),
            "metadata": ("metadata", "its entry in the aerial metadata JSON"),
        }
        for modality, (attribute, what) in needs.items():
            if modality not in self.modalities:
                continue
            missing = [r for r in self.records if getattr(r, attribute) is None]
            if modality == "sentinel":
                missing += [r for r in self.records if r.sentinel and r.centroid is None]
            if missing:
                first = missing[0]
                raise FlairDataError(
                    first.aerial_path,
                    f"{len(missing)} patch(es) lack {what.format(id=first.id)} needed for the "
                    f"'{modality}' modality (first: {first.id}); run `flairlc check` on the root",
                )

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps are reopened in each DataLoader worker rather than pickled.
        state = self.__dict__.copy()
        state["_super_areas"] = {}
        return state
