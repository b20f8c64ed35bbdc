"""Writing predictions as ``PRED_{id}.tif`` on the grid of ``IMG_{id}.tif``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import rasterio
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from flairlc import nomenclature
from flairlc.evaluation.predictions import EXCLUDED_TAG
from flairlc.outputs import atomic_path, check_writable_dir, ensure_dir


class PredictionWriter(BasePredictionWriter):
    """Write each predicted patch as ``PRED_{id}.tif`` (uint8 class indices).

    The output copies the profile (CRS, transform, size) of the patch's aerial image and carries
    the model's nomenclature (tags and colour table, as maps do) and the classes its mean scores
    leave out, so that ``flairlc evaluate --predictions`` scores it as ``--checkpoint`` would.
    With ``probabilities``, a ``PROBA_{id}.tif`` with one uint8 band per class (probability × 255)
    is written too. Files are written under a temporary name,
    then renamed. The folder is checked (created, writable) before the first batch is predicted,
    and the end of the run prints where the files went and how many.

    Args:
        output_dir: folder of the predictions.
        probabilities: also write class probabilities.
    """

    def __init__(self, output_dir: str = "predictions", probabilities: bool = False) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.probabilities = probabilities
        self.written = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "predict":
            check_writable_dir(self.output_dir, "prediction folder")
            self.written = 0

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        total = int(trainer.strategy.reduce(torch.tensor(self.written), reduce_op="sum"))
        if trainer.is_global_zero:
            split = (getattr(trainer.datamodule, "hparams", None) or {}).get("predict_split")
            kinds = "PRED_{id}.tif" + (" and PROBA_{id}.tif" if self.probabilities else "")
            of_split = f" of the {split} split" if split else ""
            print(f"predictions: {total} patches{of_split} written to {self.output_dir} ({kinds})")

    def write_on_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: dict[str, Any],
        batch_indices: Sequence[int] | None, batch: dict[str, Any], batch_idx: int, dataloader_idx: int,
    ) -> None:
        dataset = trainer.predict_dataloaders.dataset if not isinstance(trainer.predict_dataloaders, list) else trainer.predict_dataloaders[dataloader_idx].dataset
        nomen = getattr(pl_module, "nomenclature", None) or nomenclature.get(getattr(pl_module.hparams, "nomenclature", "baseline"))
        excluded = getattr(pl_module, "ignored_classes", nomen.unlabeled)
        probabilities = prediction["probabilities"].float().cpu().numpy()
        for index, proba in zip(prediction["index"].tolist(), probabilities):
            record = dataset.records[index]
            write_prediction(self.output_dir, record.id, record.aerial_path, proba, nomen, self.probabilities, excluded)
            self.written += 1


def write_prediction(
    output_dir: Path, patch_id: str, image_path: Path, probabilities: np.ndarray,
    nomen: nomenclature.Nomenclature, write_probabilities: bool = False, excluded: Sequence[int] | None = None,
) -> Path:
    """Write ``PRED_{id}.tif`` (and optionally ``PROBA_{id}.tif``) on the image's grid.

    ``PRED_{id}.tif`` carries what ``flairlc evaluate --predictions`` scores it with: the
    nomenclature's tags and colour table (:func:`flairlc.nomenclature.to_tags`, as maps do) and the
    names of the classes the model's mIoU leaves out (:data:`~flairlc.evaluation.predictions.EXCLUDED_TAG`).

    Args:
        probabilities: float ``(K, H, W)`` class probabilities, ``K`` the nomenclature's classes.
        nomen: the model's nomenclature.
        write_probabilities: also write ``PROBA_{id}.tif``, one uint8 band per class (× 255).
        excluded: indices of the classes left out of the model's mean scores (its unlabeled and
            never-predicted classes); default: the nomenclature's unlabeled classes.

    Returns:
        The path of ``PRED_{id}.tif``.
    """
    if len(probabilities) != nomen.num_classes:
        raise ValueError(f"{len(probabilities)} class probabilities for the {nomen.num_classes} classes of {nomen.name!r}")
    ensure_dir(output_dir, "prediction folder")
    with rasterio.open(image_path) as image:
        profile = image.profile
    profile.update(count=1, dtype="uint8", nodata=None, compress="deflate", tiled=False)
    profile.pop("blockxsize", None)
    profile.pop("blockysize", None)
    labels = probabilities.argmax(axis=0).astype(np.uint8)
    path = output_dir / f"PRED_{patch_id}.tif"
    excluded = nomen.unlabeled if excluded is None else excluded
    tags = {**nomenclature.to_tags(nomen), EXCLUDED_TAG: json.dumps([nomen.names[k] for k in sorted(excluded)])}
    _write(path, labels[None], profile, colormap=nomen.colormap(), tags=tags)
    if write_probabilities:
        scaled = np.clip(np.rint(probabilities * 255), 0, 255).astype(np.uint8)
        profile.update(count=len(scaled))
        _write(output_dir / f"PROBA_{patch_id}.tif", scaled, profile, descriptions=nomen.names)
    return path


def _write(path: Path, array: np.ndarray, profile: dict, colormap: dict | None = None,
           descriptions: Sequence[str] | None = None, tags: dict[str, str] | None = None) -> None:
    with atomic_path(path) as temporary, rasterio.open(temporary, "w", **{**profile, "driver": "GTiff"}) as dst:
        dst.write(array)
        if colormap:
            dst.write_colormap(1, colormap)
        if tags:
            dst.update_tags(**tags)
        if descriptions:
            for band, name in enumerate(descriptions, start=1):
                dst.set_band_description(band, name)
