"""`FlairHubDataModule`: a FLAIR-HUB root's official splits as Lightning data loaders."""

from __future__ import annotations

import copy
import functools
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning

from flairlc import nomenclature as nomenclature_module
from flairlc.data.bands import AERIAL_BANDS
from flairlc.data.errors import FlairDataError
from flairlc.data.hub import FlairHubDataset, collate_hub, hub_modality
from flairlc.data.hub.dataset import check_series_preprocessing
from flairlc.data.hub.modalities import HUB_MODALITIES, SPLIT_COLUMNS, SPLIT_GPKG
from flairlc.data.sentinel import DEFAULT_PROFILE, SeriesPreprocessing
from flairlc.training.datamodule import FlairDataModule

#: The nomenclature of FLAIR-HUB's land-cover labels (``AERIAL_LABEL-COSIA``).
HUB_NOMENCLATURE = "cosia"
#: The nomenclature of each label a batch's ``mask`` may hold, by sample key: land cover
#: (``AERIAL_LABEL-COSIA``) or crop types (band 1 of ``ALL_LABEL-LPIS``).
LABEL_NOMENCLATURES = {m.key: m.nomenclature for m in HUB_MODALITIES.values() if m.label}
#: Side of FLAIR-HUB's Sentinel-2 patches, pixels (10.24 m over the 102.4 m footprint).
HUB_SAT_PATCH_SIZE = 10


class FlairHubDataModule(FlairDataModule):
    """Train, validation, test and prediction loaders over a FLAIR-HUB root.

    The patches of each split are those that ``split_column`` of
    ``GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg`` puts in ``train``, ``valid`` and ``test`` (IGN's
    ``split_1`` … ``split_5``, ``split_flairchallenge``); samples come from
    :class:`~flairlc.data.hub.FlairHubDataset` and are batched by
    :func:`~flairlc.data.hub.collate_hub`, with FLAIR #2's keys: ``aerial`` holds R, G, B, NIR
    (uint8), and elevation as a fifth band when ``dem`` is loaded (``DSM − DTM``,
    :func:`flairlc.data.bands.elevation_digital_numbers`), so that one model reads either dataset
    (:mod:`flairlc.data.bands`); ``sentinel``/``dates_days``/``sentinel_pad_mask`` the
    Sentinel-2 series, preprocessed as FLAIR #2's when the model asks for it (``filter_clouds``,
    ``average_monthly``: the same functions, :class:`~flairlc.data.sentinel.SeriesPreprocessing`,
    with ``dates_days`` the days of the kept or averaged dates, counted from 15 May of each date's
    own year as FLAIR-HUB counts them); ``spot`` float32 ``(B, 4, H', W')`` SPOT's R, G, B, NIR
    digital numbers; ``sentinel1_asc``/``sentinel1_desc`` float32 ``(B, T', 2, S, S)``
    Sentinel-1's VV, VH in dB, each with ``{key}_dates_days`` int64 ``(B, T')`` and
    ``{key}_pad_mask`` bool ``(B, T')``; ``mask`` the label the task learns (``label``): CoSIA's 19 land-cover
    classes (IGN trains 15: give the model ``active_classes: [0, …, 14]``), or the 23 crop types
    of ``ALL_LABEL-LPIS`` (IGN trains all 23).

    A subclass of :class:`FlairDataModule` so that the command line's ``data`` takes either
    (``class_path: flairlc.training.FlairHubDataModule``); it shares its loaders: the training
    shuffle is a function of the global seed and the epoch only, worker seeds come from a private
    generator, and a resumed run sees the batches of an uninterrupted one. FLAIR #2's own methods
    (``dataset_kwargs``, ``validate_files``) do not apply: the datasets are built by :meth:`setup`.

    Args:
        root: FLAIR-HUB dataset root.
        modalities: keys of the loaded modalities: ``aerial``, ``dem``, ``sentinel``, ``spot``,
            ``sentinel1_asc``, ``sentinel1_desc``, the label
            (and any other of :data:`~flairlc.data.hub.HUB_MODALITIES`); default ``[aerial, label]``.
            The label is added when missing; the other label may not be listed.
        split_column: the split scheme, one of ``split_1`` … ``split_5``, ``split_flairchallenge``.
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        nomenclature: the classes of the label (linked by the CLI to the model's): ``"cosia"``
            for ``mask``, ``"lpis"`` for ``lpis``.
        sat_patch_size: Sentinel-2 patch side, pixels (10 in FLAIR-HUB; checked against the files
            at setup; linked by the CLI to the model's).
        predict_split: split used by ``predict_dataloader``.
        pin_memory: pin batches in page-locked memory (None: when the Trainer runs on a CUDA GPU).
        label: the label the batches' ``mask`` holds: ``"mask"`` (``AERIAL_LABEL-COSIA``, land
            cover) or ``"lpis"`` (band 1 of ``ALL_LABEL-LPIS``, crop types).
        filter_clouds: drop the dates of ``sentinel`` whose patch is covered by snow or cloud
            (:func:`flairlc.data.sentinel.filter_cloudy_dates`); ``SENTINEL2_MSK-SC`` is then read
            without being listed in ``modalities`` (and may not be listed).
        cloud_max_cover: share of covered pixels above which a date is dropped.
        cloud_prob_threshold: probability (0–100) from which a pixel counts as covered.
        average_monthly: average the (kept) dates of ``sentinel`` per calendar month, each month
            dated on its 15th.
        profile: preprocessing profile; ``"flairlc"`` with ``sentinel`` (``"paper"`` counts days
            as reference − date, FLAIR-HUB as date − reference). These five settings are FLAIR #2's
            (:class:`FlairDataModule`), linked by the CLI to the model's and stored with it.
    """

    collate = staticmethod(collate_hub)

    def __init__(
        self,
        root: str,
        modalities: list[str] | None = None,
        split_column: str = "split_1",
        batch_size: int = 10,
        num_workers: int = 0,
        nomenclature: str = HUB_NOMENCLATURE,
        sat_patch_size: int = HUB_SAT_PATCH_SIZE,
        predict_split: str = "test",
        pin_memory: bool | None = None,
        label: str = "mask",
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        profile: str = DEFAULT_PROFILE,
    ) -> None:
        # LightningDataModule's set-up, not FlairDataModule's (FLAIR #2's trees and validation domains).
        super(FlairDataModule, self).__init__()
        modalities = _with_label(list(modalities or ["aerial"]), label)
        if split_column not in SPLIT_COLUMNS:
            raise ValueError(f"unknown split column {split_column!r}: expected one of {', '.join(SPLIT_COLUMNS)}")
        expected = LABEL_NOMENCLATURES[label]
        if not nomenclature_module.same(nomenclature, expected):
            what = "land-cover labels are CoSIA's" if label == "mask" else "crop-type labels (ALL_LABEL-LPIS) are LPIS's"
            raise ValueError(f"FLAIR-HUB's {what}: with label {label!r}, nomenclature must be {expected!r}, got {nomenclature!r}")
        if predict_split not in ("train", "valid", "val", "test"):
            raise ValueError(f"unknown predict_split {predict_split!r}: expected train, valid or test")
        series = SeriesPreprocessing(filter_clouds, cloud_max_cover, cloud_prob_threshold, average_monthly, profile=profile)
        check_series_preprocessing({hub_modality(m).key for m in modalities}, series)
        self.save_hyperparameters()
        self.hparams["modalities"] = modalities
        self.hparams["nomenclature"] = nomenclature_module.portable(nomenclature)
        #: The bands of the ``aerial`` batches (the task checks that it finds its own there).
        self.hparams["aerial_bands"] = list(self.aerial_bands)
        self._hparams_initial = copy.deepcopy(self._hparams)
        self.shuffle_seed = torch.initial_seed()
        self.collate = functools.partial(collate_label, label=label)
        self.datasets: dict[str, FlairHubDataset] = {}

    @property
    def aerial_bands(self) -> tuple[str, ...]:
        """Bands of the ``aerial`` batches: R, G, B, NIR, and elevation when ``dem`` is loaded."""
        modalities = self.hparams["modalities"]
        if "aerial" not in modalities:
            return ()
        return AERIAL_BANDS if "dem" in modalities else AERIAL_BANDS[:4]

    @property
    def series_preprocessing(self) -> SeriesPreprocessing:
        """The Sentinel-2 preprocessing of the batches (FLAIR-HUB counts the days itself)."""
        h = self.hparams
        return SeriesPreprocessing(h["filter_clouds"], h["cloud_max_cover"], h["cloud_prob_threshold"],
                                   h["average_monthly"], profile=h["profile"])

    @property
    def val_domains(self) -> list[str]:
        """Empty: FLAIR-HUB's validation patches are the split file's ``valid`` ones, not drawn domains."""
        return []

    def setup(self, stage: str | None = None) -> None:
        """Read the split file and build the datasets the stage needs."""
        wanted = {"fit": ("train", "valid"), "validate": ("valid",), "test": ("test",), "predict": ("predict",)}
        for name in wanted.get(stage or "", ("train", "valid", "test")):
            if name not in self.datasets:
                self.datasets[name] = self._dataset(name)
        if "valid" in self.datasets:
            self.datasets["val"] = self.datasets["valid"]

    def _dataset(self, name: str) -> FlairHubDataset:
        h = self.hparams
        split = h["predict_split"] if name == "predict" else name
        modalities = [m for m in h["modalities"] if name != "predict" or not hub_modality(m).label]
        elevation = "aerial" in modalities and "dem" in modalities
        dataset = FlairHubDataset.from_root(
            h["root"], split=split, split_column=h["split_column"], modalities=modalities, aerial_elevation=elevation,
            series_preprocessing=self.series_preprocessing,
        )
        if not len(dataset):
            raise FlairDataError(
                Path(h["root"]) / "GLOBAL_ALL_MTD" / SPLIT_GPKG,
                f"no {split} patch in {h['split_column']} among the patches of the root",
            )
        self._check_sizes(dataset)
        return dataset

    def _check_sizes(self, dataset: FlairHubDataset) -> None:
        """Read every file's header: one size per modality, Sentinel-2 patches of ``sat_patch_size``.

        Raises:
            FlairDataError: naming the first file of another size, before any step.
        """
        sizes: dict[str, tuple[tuple[int, int], Path]] = {}
        for patch in dataset.patches:
            for modality in dataset.modalities:
                path = patch.files[modality.name]
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", NotGeoreferencedWarning)
                        with rasterio.open(path) as src:
                            size = (src.height, src.width)
                except (rasterio.errors.RasterioError, OSError) as error:
                    raise FlairDataError(path, f"cannot read as a GeoTIFF ({error}); run `flairlc check` on the root") from None
                if modality.time_series and size != (self.hparams["sat_patch_size"],) * 2:
                    raise FlairDataError(path, f"{modality.name} is {size[0]} x {size[1]} px, the data module's sat_patch_size "
                                         f"is {self.hparams['sat_patch_size']}")
                first = sizes.setdefault(modality.name, (size, path))
                if size != first[0]:
                    raise FlairDataError(path, f"{modality.name} is {size[0]} x {size[1]} px but {first[1].name} is "
                                         f"{first[0][0]} x {first[0][1]}: run `flairlc check` on the root")


def _with_label(modalities: list[str], label: str) -> list[str]:
    """The modality keys to load: ``modalities`` with the label (added last when missing).

    Raises:
        ValueError: an unknown modality or label, or the other label listed, in one line.
    """
    if label not in LABEL_NOMENCLATURES:
        raise ValueError(f"unknown label {label!r}: expected one of {', '.join(LABEL_NOMENCLATURES)}")
    keys = [hub_modality(name).key for name in modalities]  # an unknown name fails here, naming the known ones
    others = [k for k in keys if k in LABEL_NOMENCLATURES and k != label]
    if others:
        raise ValueError(f"modalities {modalities} list the {others[0]!r} label but the batches' mask holds the "
                         f"{label!r} label: drop {others[0]!r}")
    return [*modalities, label] if label not in keys else modalities


def collate_label(samples: Sequence[dict[str, Any]], label: str = "mask") -> dict[str, Any]:
    """:func:`~flairlc.data.hub.collate_hub`, with the ``label`` sample key under ``mask`` (what the
    task learns and scores)."""
    batch = collate_hub(samples)
    if label != "mask" and label in batch:
        batch["mask"] = batch.pop(label)
    return batch
