"""`FlairDataModule`: the official FLAIR splits as Lightning data loaders."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import lightning as L
from torch.utils.data import DataLoader

from flairlc.data.collate import collate_flair
from flairlc.data.dataset import FlairDataset
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import discover_patches, find_trees


class FlairDataModule(L.LightningDataModule):
    """Train, validation, test and prediction loaders over a FLAIR root.

    The test set is the test trees. The validation domains are taken from the train trees: the
    explicit list ``val_domains``, or a draw of ``val_fraction`` of the train domains seeded by
    ``split_seed``. The domains used are stored in the hyper-parameters (and so in every
    checkpoint and log) so that a run can be reproduced.

    Args:
        root: FLAIR dataset root.
        modalities: loaded modalities (see :class:`FlairDataset`).
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.
        val_domains: explicit validation domains (e.g. ``["D004_2021", "D014_2020"]``).
        val_fraction: share of the train domains drawn for validation when ``val_domains`` is None
            (the paper: 8 of 40).
        split_seed: seed of that draw.
        nomenclature: ``"baseline"`` (13 classes) or ``"raw"`` (19).
        sat_patch_size: Sentinel-2 window side (10 m pixels).
        filter_clouds: drop cloudy/snowy dates (see :func:`flairlc.data.sentinel.filter_cloudy_dates`).
        cloud_max_cover: share of covered pixels above which a date is dropped.
        cloud_prob_threshold: probability (0–100) from which a pixel counts as covered.
        average_monthly: average kept dates per month.
        reference_date: origin of date offsets, ``YYYY-MM-DD``.
        geo_enc_size: size of the centroid encoding in the metadata vector.
        toy: use the toy trees (None: the full trees when present).
        predict_split: split used by ``predict_dataloader``.
        pin_memory: pin batches in page-locked memory (for GPUs).
    """

    def __init__(
        self,
        root: str,
        modalities: list[str] | None = None,
        batch_size: int = 10,
        num_workers: int = 0,
        val_domains: list[str] | None = None,
        val_fraction: float = 0.2,
        split_seed: int = 2022,
        nomenclature: str = "baseline",
        sat_patch_size: int = 40,
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        reference_date: str = "2021-05-15",
        geo_enc_size: int = 32,
        toy: bool | None = None,
        predict_split: str = "test",
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        modalities = list(modalities or ["aerial", "mask"])
        if val_domains is None:
            val_domains = draw_val_domains(root, val_fraction, split_seed, toy)
        self.save_hyperparameters()
        self.hparams["modalities"] = modalities
        self.hparams["val_domains"] = list(val_domains)
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
        if stage in (None, "test") and "test" not in self.datasets:
            records = discover_patches(root, splits=("test",), toy=toy)
            if not records:
                raise FlairDataError(root, "no test patches (expected a flair_2_aerial_test/ tree)")
            self.datasets["test"] = FlairDataset(records, **self.dataset_kwargs())
        if stage == "predict" and "predict" not in self.datasets:
            records = discover_patches(root, splits=(self.hparams["predict_split"],), toy=toy)
            self.datasets["predict"] = FlairDataset(records, **self.dataset_kwargs(with_labels=False))

    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        workers = self.hparams["num_workers"]
        return DataLoader(
            self.datasets[name],
            batch_size=self.hparams["batch_size"],
            shuffle=shuffle,
            num_workers=workers,
            collate_fn=collate_flair,
            pin_memory=self.hparams["pin_memory"],
            persistent_workers=workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")


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
