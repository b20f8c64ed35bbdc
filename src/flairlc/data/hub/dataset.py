"""`FlairHubDataset`: FLAIR-HUB patches as dictionaries of tensors, for any choice of modalities.

FLAIR-HUB (Garioud et al., "FLAIR-HUB: Large-scale Multimodal Dataset for Land Cover and Crop
Mapping", 2025, arXiv:2506.07080) extends FLAIR to many domain-years and sensors, with one
patch-aligned GeoTIFF per modality (layout: :mod:`flairlc.data.hub.layout`; modalities:
:data:`~flairlc.data.hub.modalities.HUB_MODALITIES`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from flairlc.data.bands import elevation_digital_numbers
from flairlc.data.collate import collate_flair, pad_series
from flairlc.data.errors import FlairDataError
from flairlc.data.hub.layout import (
    HUB_REFERENCE_DAY,
    HubPatch,
    days_to_reference,
    discover_hub,
    patches_from_csv,
    read_dates_gpkg,
    read_split_gpkg,
    select_split,
    split_gpkg_path,
)
from flairlc.data.hub.modalities import GLOBAL_MTD_DIR, HUB_MODALITIES, HubModality, hub_modality
from flairlc.data.hub.readers import label_indices, read_hub_raster
from flairlc.data.sentinel import SeriesPreprocessing


class HubRecord(NamedTuple):
    """The fields of FLAIR #2's :class:`~flairlc.data.layout.PatchRecord` that training reads
    (per-domain scores, predictions written on the patch's grid)."""

    id: str
    domain: str  #: the domain-year, e.g. ``D006-2020``
    aerial_path: Path  #: the ``AERIAL_RGBI`` file (any file of the patch without one)


#: Dates of each time-series modality: dates file name → patch id → dates.
DatesTable = Mapping[str, Mapping[str, Sequence[dt.date]]]


class FlairHubDataset(Dataset):
    """FLAIR-HUB patches as dictionaries of tensors.

    Each sample holds ``id`` (str, ``D006-2020_FF-S1-14_5-5``), ``domain`` (str, the domain-year
    ``D006-2020``), ``index`` (int) and, for each requested modality (by key or folder suffix):

    - ``aerial`` (``AERIAL_RGBI``): uint8 ``(4, H, W)``, R, G, B, NIR digital numbers (512 px at
      0.2 m in FLAIR-HUB). FLAIR #2's ``aerial`` has a fifth band, elevation: a model reading
      bands R, G, B, NIR (:mod:`flairlc.data.bands`) reads both.
    - ``dem`` (``DEM_ELEV``): float32 ``(2, H, W)``, DSM and DTM as stored (metres in the
      synthetic data; IGN feeds DSM − DTM to its models).
    - ``sentinel`` (``SENTINEL2_TS``): float32 ``(T, 10, S, S)``, bands B02, B03, B04, B05, B06,
      B07, B08, B8A, B11, B12 as stored (reflectance × 10 000), S = 10 px over the footprint;
      ``dates_days``: int64 ``(T,)`` days from the reference day (15 May by default) of each
      acquisition's own year, ``date − reference``, from ``GLOBAL_SENTINEL2_MTD_DATES.gpkg``.
      With ``series_preprocessing``, the series the model reads: the dates covered by snow or
      cloud dropped and/or the monthly means (dated on the 15th), with the ``dates_days`` of
      those dates, counted as above.
    - ``sentinel_masks`` (``SENTINEL2_MSK-SC``): uint8 ``(T, 2, S, S)``, snow (channel 0) and cloud
      (channel 1) probabilities 0..100, the dates of ``sentinel``.
    - ``sentinel1_asc``, ``sentinel1_desc`` (``SENTINEL1-*_TS``): float32 ``(T, 2, S, S)``, VV and
      VH; ``sentinel1_asc_dates_days``, ``sentinel1_desc_dates_days``: int64 ``(T,)`` as above.
    - ``spot`` (``SPOT_RGBI``), ``aerial_rlt`` (``AERIAL-RLT_PAN``): ``(C, H', W')``, uint8 kept as
      uint8, any other dtype as float32, values as stored.
    - ``mask`` (``AERIAL_LABEL-COSIA``): int64 ``(H, W)``, CoSIA class indices 0..18
      (:func:`flairlc.nomenclature.get` ``"cosia"``; 18 is 'undefined').
    - ``lpis`` (``ALL_LABEL-LPIS``): int64 ``(H, W)``, band 1 of the file: IGN's 23 crop classes
      0..22 (:func:`flairlc.nomenclature.get` ``"lpis"``; 22 is 'background').

    Batch samples with :func:`collate_hub`: series are padded in time with a padding mask, as
    FLAIR #2's ``sentinel`` (``sentinel_pad_mask``).

    Args:
        patches: the patches (see :func:`flairlc.data.hub.discover_hub`).
        modalities: keys or folder suffixes of the modalities to load.
        dates: acquisition dates of the time series, by dates file name (e.g.
            ``"GLOBAL_SENTINEL2_MTD_DATES.gpkg"``) then patch id; needed for every requested time
            series (:meth:`from_root` reads them).
        reference_day: ``(month, day)`` of the reference of ``dates_days`` (IGN's default 15 May).
        aerial_elevation: deliver ``aerial`` as FLAIR #2's 5 bands, R, G, B, NIR and elevation,
            the elevation being ``DSM − DTM`` of ``DEM_ELEV`` in digital numbers (uint8,
            :func:`flairlc.data.bands.elevation_digital_numbers`); needs ``aerial`` and ``dem``
            among the modalities, and ``dem`` is then left out of the sample.
        series_preprocessing: FLAIR #2's Sentinel-2 preprocessing
            (:meth:`flairlc.data.sentinel.SeriesPreprocessing.select`), applied to ``sentinel``
            when it filters clouds or averages months; the filter reads ``SENTINEL2_MSK-SC``
            itself (not listed, not in the sample). See :func:`check_series_preprocessing`.

    Raises:
        ValueError: an unknown modality, or a series preprocessing FLAIR-HUB cannot serve.
        FlairDataError: a requested modality missing for a patch, or dates missing for a series
            (the message names the first patch and the file). Reading a sample raises it too,
            naming the file: unreadable file, wrong dtype or band count, a series whose number
            of dates differs from its dates file or its snow/cloud masks, label values outside
            the nomenclature.
    """

    def __init__(
        self,
        patches: Sequence[HubPatch],
        modalities: Sequence[str] = ("aerial", "mask"),
        dates: DatesTable | None = None,
        reference_day: tuple[int, int] = HUB_REFERENCE_DAY,
        aerial_elevation: bool = False,
        series_preprocessing: SeriesPreprocessing | None = None,
    ) -> None:
        self.patches = list(patches)
        self.modalities: tuple[HubModality, ...] = tuple(hub_modality(m) for m in modalities)
        keys = {m.key for m in self.modalities}
        if series_preprocessing is not None:
            check_series_preprocessing(keys, series_preprocessing)
            if not (series_preprocessing.filter_clouds or series_preprocessing.average_monthly):
                series_preprocessing = None
        #: The Sentinel-2 preprocessing applied to ``sentinel`` (None: the series as stored).
        self.series_preprocessing = series_preprocessing if "sentinel" in keys else None
        if self.series_preprocessing is not None and self.series_preprocessing.filter_clouds:
            self.modalities += (HUB_MODALITIES["SENTINEL2_MSK-SC"],)
        if aerial_elevation and not {"aerial", "dem"} <= {m.key for m in self.modalities}:
            raise ValueError("aerial_elevation derives the elevation band from DEM_ELEV: load both 'aerial' and 'dem'")
        self.aerial_elevation = bool(aerial_elevation)
        #: What the training stage reads of each patch (id, domain-year, the file giving its grid).
        self.records = [
            HubRecord(p.id, p.domain_year, p.files.get("AERIAL_RGBI") or next(iter(p.files.values()), Path()))
            for p in self.patches
        ]
        dt.date(2021, *reference_day)  # raises ValueError on a day that does not exist
        self.reference_day = tuple(reference_day)
        self.dates = {name: dict(table) for name, table in (dates or {}).items()}
        self._check_patches()

    @classmethod
    def from_root(
        cls,
        root: str | Path,
        split: str = "train",
        split_column: str = "split_1",
        split_csv: str | Path | None = None,
        **kwargs: Any,
    ) -> FlairHubDataset:
        """One split of a FLAIR-HUB root, with the dates of the requested time series.

        Args:
            root: the dataset root.
            split: ``train``, ``valid`` (or ``val``), ``test``: the patches of that split in
                ``GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg``'s ``split_column``; ignored with
                ``split_csv``.
            split_column: ``split_1`` … ``split_5``, ``split_flairchallenge``.
            split_csv: one of IGN's split CSVs instead: its patches, with the files it names.
            **kwargs: as for the constructor (``modalities``, ``reference_day``).
        """
        if split_csv is not None:
            patches = patches_from_csv(split_csv)
        else:
            patches = select_split(discover_hub(root), read_split_gpkg(split_gpkg_path(root), split_column), split)
        names = {hub_modality(m).dates_file for m in kwargs.get("modalities", ("aerial", "mask"))}
        dates = {
            name: read_dates_gpkg(Path(root) / GLOBAL_MTD_DIR / name) for name in sorted(n for n in names if n)
        }
        return cls(patches, dates=dates, **kwargs)

    def __len__(self) -> int:
        return len(self.patches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        patch = self.patches[index]
        sample: dict[str, Any] = {"id": patch.id, "domain": patch.domain_year, "index": index}
        for modality in self.modalities:
            path = patch.files[modality.name]
            array = read_hub_raster(path, modality)
            if modality.label:
                sample[modality.key] = torch.from_numpy(self._label(path, modality, array[0]))
            elif modality.time_series:
                sample.update(self._series(patch, modality, path, array))
            else:
                sample[modality.key] = torch.from_numpy(_as_model_dtype(array))
        if self.aerial_elevation:
            dem = sample.pop("dem").numpy()
            elevation = torch.from_numpy(elevation_digital_numbers(dem[0], dem[1]))
            sample["aerial"] = torch.cat([sample["aerial"], elevation[None]])
        if self.series_preprocessing is not None:
            self._preprocess_sentinel(patch, sample)
        return sample

    def series_dates(self, patch: HubPatch, modality: HubModality) -> list[dt.date]:
        """The acquisition dates of a patch's series, in band order."""
        assert modality.dates_file is not None
        return list(self.dates[modality.dates_file][patch.id])

    def _series(self, patch: HubPatch, modality: HubModality, path: Path, array: np.ndarray) -> dict[str, torch.Tensor]:
        dates = self.series_dates(patch, modality)
        if array.shape[0] != len(dates):
            raise FlairDataError(
                path, f"{modality.name} has {array.shape[0]} dates ({array.shape[0] * len(modality.bands)} bands) "
                f"but {modality.dates_file} lists {len(dates)} for patch {patch.id}",
            )
        if modality.name == "SENTINEL2_MSK-SC":
            return {modality.key: torch.from_numpy(np.ascontiguousarray(array))}
        days = np.asarray(days_to_reference(dates, self.reference_day), dtype=np.int64)
        dates_key = "dates_days" if modality.key == "sentinel" else f"{modality.key}_dates_days"
        return {modality.key: torch.from_numpy(array.astype(np.float32)), dates_key: torch.from_numpy(days)}

    def _preprocess_sentinel(self, patch: HubPatch, sample: dict[str, Any]) -> None:
        """Replace ``sentinel``/``dates_days`` by the series the model reads (FLAIR #2's functions),
        its days counted in FLAIR-HUB's way; the snow/cloud masks served the filter only."""
        assert self.series_preprocessing is not None
        masks = sample.pop("sentinel_masks", None)
        dates = self.series_dates(patch, HUB_MODALITIES["SENTINEL2_TS"])
        series, dates = self.series_preprocessing.select(
            sample["sentinel"].numpy(), None if masks is None else masks.numpy(), dates
        )
        days = np.asarray(days_to_reference(dates, self.reference_day), dtype=np.int64)
        sample["sentinel"], sample["dates_days"] = torch.from_numpy(series), torch.from_numpy(days)

    def _label(self, path: Path, modality: HubModality, values: np.ndarray) -> np.ndarray:
        if modality.nomenclature is None:
            return values.astype(np.int64)
        return label_indices(path, values, modality.nomenclature).astype(np.int64)

    def _check_patches(self) -> None:
        for modality in self.modalities:
            missing = [p for p in self.patches if modality.name not in p.files]
            if missing:
                first = missing[0]
                raise FlairDataError(
                    first.file_of(modality.name), f"not found: {len(missing)} patch(es) lack a {modality.name} file, needed for the "
                    f"'{modality.key}' modality (first: {first.id}); run `flairlc check` on the root",
                )
            if modality.dates_file is None:
                continue
            table = self.dates.get(modality.dates_file)
            if table is None:
                raise FlairDataError(
                    f"{GLOBAL_MTD_DIR}/{modality.dates_file}", f"not read, needed for the dates of '{modality.key}'"
                )
            undated = [p for p in self.patches if p.id not in table]
            if undated:
                raise FlairDataError(
                    f"{GLOBAL_MTD_DIR}/{modality.dates_file}",
                    f"no dates for {len(undated)} patch(es) of '{modality.key}' (first: {undated[0].id})",
                )


def check_series_preprocessing(keys: Collection[str], preprocessing: SeriesPreprocessing) -> None:
    """Refuse, in one line, a Sentinel-2 preprocessing that FLAIR-HUB's samples cannot serve.

    Args:
        keys: the sample keys of the loaded modalities (``sentinel``, ``sentinel_masks``…).
        preprocessing: the model's (or data module's) preprocessing.

    Raises:
        ValueError: with ``sentinel`` loaded, a profile whose day offsets are ``reference − date``
            (``"paper"``: FLAIR-HUB's ``dates_days`` are ``date − reference``), or
            ``sentinel_masks`` listed while the series is filtered or averaged (the masks would
            no longer be those of the series' dates).
    """
    if "sentinel" not in keys:
        return
    if preprocessing.rules.date_sign != 1:
        raise ValueError(f"profile {preprocessing.profile!r} counts Sentinel-2 days as reference - date (the official "
                         "FLAIR-2 code) but FLAIR-HUB's dates_days are date - reference: use profile 'flairlc'")
    if (preprocessing.filter_clouds or preprocessing.average_monthly) and "sentinel_masks" in keys:
        raise ValueError("with filter_clouds or average_monthly, the snow/cloud masks are read for the filter and the "
                         "series' dates change: drop 'sentinel_masks' from the modalities")


#: Time-series keys that :func:`collate_hub` pads beyond FLAIR #2's ``sentinel``/``dates_days``.
_EXTRA_SERIES_KEYS = tuple(
    k
    for m in HUB_MODALITIES.values()
    if m.time_series and m.key != "sentinel"
    for k in (m.key, f"{m.key}_dates_days")
)


def collate_hub(samples: Sequence[dict[str, Any]], pad_value: float = 0.0) -> dict[str, Any]:
    """Stack :class:`FlairHubDataset` samples into a batch, as :func:`~flairlc.data.collate_flair`.

    ``sentinel``/``dates_days`` are padded in time and ``sentinel_pad_mask`` added exactly as for
    FLAIR #2; ``sentinel_masks`` is padded with 0 on the same steps; each Sentinel-1 series and its
    dates are padded likewise and get their own ``{key}_pad_mask`` bool ``(B, T)``.
    """
    extra = [k for k in samples[0] if k in _EXTRA_SERIES_KEYS]
    batch = collate_flair([{k: v for k, v in s.items() if k not in extra} for s in samples], pad_value)
    for key in extra:
        is_dates = key.endswith("_dates_days")
        batch[key], pad_mask = pad_series([s[key] for s in samples], 0 if is_dates else pad_value)
        if not is_dates and key != "sentinel_masks":
            batch[f"{key}_pad_mask"] = pad_mask
    return batch


def _as_model_dtype(array: np.ndarray) -> np.ndarray:
    """uint8 stays uint8 (as FLAIR #2's aerial); other dtypes become float32."""
    return array if array.dtype == np.uint8 else array.astype(np.float32)
