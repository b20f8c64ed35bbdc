"""`FlairDataModule`: the official FLAIR splits as Lightning data loaders."""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
from collections.abc import Sized
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, RandomSampler

from flairlc import nomenclature as nomenclature_module
from flairlc.data.check import validate_records
from flairlc.data.collate import collate_flair
from flairlc.data.dataset import FlairDataset
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import discover_patches, find_trees
from flairlc.data.memory import loading_worker_init
from flairlc.data.sentinel import get_profile

#: From this many patches, the file validation at setup shows a progress bar (about 1 ms a file).
VALIDATION_PROGRESS_MIN_PATCHES = 5000


class FlairDataModule(L.LightningDataModule):
    """Train, validation, test and prediction loaders over a FLAIR root.

    The test set is the test trees. The validation domains are taken from the train trees: the
    explicit list ``val_domains``, or a draw of ``val_fraction`` of the train domains seeded by
    ``split_seed``. The domains used are stored in the hyper-parameters (and so in every
    checkpoint and log) so that a run can be reproduced.

    The loaders draw nothing from the global random generators: the training shuffle of each epoch
    depends only on the global seed (``torch.initial_seed()`` when the module is built, i.e. the
    ``seed_everything`` seed) and the epoch, and worker seeds come from a private generator. A run
    resumed from a checkpoint then sees the same batches, and draws the same augmentations, as an
    uninterrupted run.

    Args:
        root: FLAIR dataset root.
        modalities: loaded modalities (see :class:`FlairDataset`).
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        val_domains: explicit validation domains (e.g. ``["D004_2021", "D014_2020"]``).
        val_fraction: share of the train domains drawn for validation when ``val_domains`` is None
            (the paper: 8 of 40).
        split_seed: seed of that draw.
        nomenclature: ``"baseline"`` (13 classes), ``"raw"`` (19), or a JSON file (or dict) of
            classes made of raw mask values (:func:`flairlc.nomenclature.get`).
        sat_patch_size: Sentinel-2 window side (10 m pixels).
        filter_clouds: drop cloudy/snowy dates (see :func:`flairlc.data.sentinel.filter_cloudy_dates`).
        cloud_max_cover: share of covered pixels above which a date is dropped.
        cloud_prob_threshold: probability (0–100) from which a pixel counts as covered.
        average_monthly: average kept dates per month.
        reference_date: origin of date offsets, ``YYYY-MM-DD``.
        geo_enc_size: size of the centroid encoding in the metadata vector.
        toy: use the toy trees (None: the full trees when present).
        predict_split: split used by ``predict_dataloader``.
        pin_memory: pin batches in page-locked memory, so that their copy to a GPU runs
            asynchronously; None (default): when the Trainer's device is a CUDA GPU.
        profile: preprocessing profile, ``"flairlc"`` (this project's fixes) or ``"paper"`` (the
            official code's cloud filter rule, date sign and centroid encoding; see
            ``docs/fidelity.md``). Linked by the CLI to the model's, and stored with it.
    """

    #: Batches samples of the datasets (FLAIR-HUB's data module has its own).
    collate = staticmethod(collate_flair)

    def __init__(
        self,
        root: str,
        modalities: list[str] | None = None,
        batch_size: int = 10,
        num_workers: int = 0,
        val_domains: list[str] | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 2022,
        nomenclature: str | dict[str, Any] = "baseline",
        sat_patch_size: int = 40,
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        reference_date: str = "2021-05-15",
        geo_enc_size: int = 32,
        toy: bool | None = None,
        predict_split: str = "test",
        pin_memory: bool | None = None,
        profile: str = "flairlc",
    ) -> None:
        super().__init__()
        get_profile(profile)  # an unknown name fails here, before any file is read
        nomenclature = nomenclature_module.portable(nomenclature)  # a file is read once, here
        modalities = list(modalities or ["aerial", "mask"])
        if val_domains is None:
            val_domains = draw_val_domains(root, val_fraction, split_seed, toy)
        self.save_hyperparameters()
        self.hparams["nomenclature"] = nomenclature
        self.hparams["modalities"] = modalities
        self.hparams["val_domains"] = list(val_domains)
        # Loggers write the initial hyper-parameters (hparams.yaml): make them the values in use,
        # with the drawn validation domains, not the arguments as given (val_domains: null).
        self._hparams_initial = copy.deepcopy(self._hparams)
        self.shuffle_seed = torch.initial_seed()
        self.datasets: dict[str, FlairDataset] = {}

    @property
    def val_domains(self) -> list[str]:
        """The validation domains in use."""
        return list(self.hparams["val_domains"])

    def dataset_kwargs(self, with_labels: bool = True) -> dict:
        """Keyword arguments of :class:`FlairDataset` derived from the hyper-parameters."""
        h = self.hparams
        modalities = [m for m in h["modalities"] if with_labels or m != "mask"]
        return dict(
            modalities=modalities,
            nomenclature=h["nomenclature"],
            sat_patch_size=h["sat_patch_size"],
            filter_clouds=h["filter_clouds"],
            cloud_max_cover=h["cloud_max_cover"],
            cloud_prob_threshold=h["cloud_prob_threshold"],
            average_monthly=h["average_monthly"],
            reference_date=dt.date.fromisoformat(h["reference_date"]),
            geo_enc_size=h["geo_enc_size"],
            profile=h["profile"],
        )

    def setup(self, stage: str | None = None) -> None:
        """Discover the patches and build the datasets the stage needs."""
        root, toy = self.hparams["root"], self.hparams["toy"]
        if stage in (None, "fit", "validate") and "train" not in self.datasets:
            records = discover_patches(root, splits=("train",), toy=toy)
            val = set(self.val_domains)
            unknown = val - {r.domain for r in records}
            if unknown:
                raise FlairDataError(root, f"validation domains not in the train trees: {sorted(unknown)}")
            self.datasets["train"] = FlairDataset([r for r in records if r.domain not in val], **self.dataset_kwargs())
            self.datasets["val"] = FlairDataset([r for r in records if r.domain in val], **self.dataset_kwargs())
            self.validate_files(("train", "val"))
        if stage in (None, "test") and "test" not in self.datasets:
            records = discover_patches(root, splits=("test",), toy=toy)
            if not records:
                raise FlairDataError(root, "no test patches (expected a flair_2_aerial_test/ tree)")
            self.datasets["test"] = FlairDataset(records, **self.dataset_kwargs())
            self.validate_files(("test",))
        if stage == "predict" and "predict" not in self.datasets:
            records = discover_patches(root, splits=(self.hparams["predict_split"],), toy=toy)
            self.datasets["predict"] = FlairDataset(records, **self.dataset_kwargs(with_labels=False))
            self.validate_files(("predict",))

    def validate_files(self, names: tuple[str, ...]) -> None:
        """Check cheaply, before any step, the files that the named datasets will read.

        Reads headers only (see :func:`flairlc.data.check.validate_records`): the size, band
        count and dtype of every image and mask, whether each TIFF holds all its pixel blocks,
        the Sentinel-2 ``.npy`` headers and product lists, centroids against the super-areas and
        the metadata entries. Sets the datasets' ``patch_size``, so that a patch of another size
        met later names its file rather than failing in the collate function. Uses up to
        ``num_workers`` processes.

        Raises:
            FlairDataError: naming the first bad file and the problem, with a pointer to
                ``flairlc check``.
        """
        datasets = [self.datasets[name] for name in names]
        records = [record for dataset in datasets for record in dataset.records]
        if not records:
            return
        workers = max(1, min(self.hparams["num_workers"], os.cpu_count() or 1))
        trainer = getattr(self, "trainer", None)
        progress = len(records) >= VALIDATION_PROGRESS_MIN_PATCHES and (
            trainer is None or trainer.is_global_zero
        )
        patch_size = validate_records(
            records, datasets[0].modalities, self.hparams["sat_patch_size"],
            root=self.hparams["root"], workers=workers, progress=progress,
        )
        for dataset in datasets:
            dataset.patch_size = patch_size

    @property
    def pins_memory(self) -> bool:
        """Whether the loaders pin their batches: ``pin_memory``, or when None, whether the
        Trainer's device is a CUDA GPU (a copy from pageable memory blocks the host)."""
        if self.hparams["pin_memory"] is not None:
            return bool(self.hparams["pin_memory"])
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        workers = self.hparams["num_workers"]
        dataset = self.datasets[name]
        return DataLoader(
            dataset,
            batch_size=self.hparams["batch_size"],
            sampler=EpochShuffleSampler(dataset, self.shuffle_seed) if shuffle else None,
            generator=torch.Generator().manual_seed(self.shuffle_seed),
            num_workers=workers,
            collate_fn=self.collate,
            pin_memory=self.pins_memory,
            persistent_workers=workers > 0,
            drop_last=False,
            # Workers keep freed memory: a sample's 15 MiB of fresh pages cost 5-6 ms otherwise.
            worker_init_fn=loading_worker_init if workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        loader = self._loader("train", shuffle=True)
        if self.trainer is not None:
            # Lightning sets the epoch of the sampler at each epoch start, but starts iterating
            # the loader before the first one: a resumed run must shuffle as its epoch, not as 0.
            loader.sampler.set_epoch(self.trainer.fit_loop.epoch_progress.current.processed)
        return loader

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")


class EpochShuffleSampler(RandomSampler):
    """A shuffle that is a function of a seed and the epoch only (Lightning calls ``set_epoch``).

    A ``RandomSampler`` draws each epoch's order from the global generator, so an order depends on
    every draw made before it; this one does not, and a resumed run shuffles as an uninterrupted
    one. Being a ``RandomSampler``, it is replaced by Lightning's ``DistributedSampler`` under DDP.

    Args:
        data_source: the dataset (only its length is used).
        seed: base seed; epoch ``e`` uses ``seed + e``.
    """

    def __init__(self, data_source: Sized, seed: int) -> None:
        super().__init__(data_source)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration draw the order of ``epoch`` (0-based)."""
        self.generator = torch.Generator().manual_seed((self.seed + epoch) % 2**64)


def draw_val_domains(
    root: str | Path, val_fraction: float = 0.2, seed: int = 2022, toy: bool | None = None
) -> list[str]:
    """A seeded draw of validation domains among the train domains of a root.

    Returns:
        ``max(1, round(val_fraction × n))`` sorted domain names (none when there is one domain).
    """
    trees = find_trees(root, toy).get(("aerial", "train"), [])
    domains = sorted({d.name for tree in trees for d in tree.iterdir() if d.is_dir()})
    if len(domains) < 2 or val_fraction <= 0:
        return []
    count = min(len(domains) - 1, max(1, round(val_fraction * len(domains))))
    return sorted(random.Random(seed).sample(domains, count))
