"""`SegmentationTask`: the LightningModule that trains, validates, tests and predicts every model.

One task serves the paper's three networks: U-Net on aerial patches, U-TAE on the Sentinel-2
series, and the U-T&T fusion (two losses: fused U-Net logits and the auxiliary U-TAE head, with
per-class weights per branch). The Trainer owns the loop, devices, precision, DDP, checkpoints and
logs; this module only says what one step does.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from flairlc import __version__
from flairlc import nomenclature as nomenclature_module
from flairlc.data.sentinel import DEFAULT_PROFILE
from flairlc.evaluation import (
    ConfusionAccumulator,
    EvaluationResult,
    Scores,
    confusion_matrix_torch,
)
from flairlc.inference.model import MODEL_INPUTS, TrainedModel
from flairlc.training.augment import augment_batch

__all__ = ["MODEL_INPUTS", "PLOWED_INDEX", "SegmentationTask", "check_data_fits", "weighted_cross_entropy"]

#: Baseline index of 'plowed land', weighted 0 in the satellite branch by default.
PLOWED_INDEX = 11


class SegmentationTask(TrainedModel, L.LightningModule):
    """Training and inference of a FLAIR model.

    A :class:`~flairlc.inference.TrainedModel` (network, input scaling, bands, classes, series
    preprocessing, ``predict_proba``) that also trains: the inference is the trained model's own,
    so a checkpoint maps and scores the same through either.

    Args:
        model: ``"unet"``, ``"utae"``, ``"utt"`` or ``"multimodal"`` (FLAIR-HUB's one encoder per
            modality: :class:`~flairlc.models.MultimodalNet`, modalities in ``model_kwargs``).
        model_kwargs: extra arguments of :func:`flairlc.models.create_model` (encoder, widths, …).
        nomenclature: ``"baseline"`` (13 classes), ``"raw"`` (19), ``"cosia"`` (FLAIR-HUB's 19),
            or a JSON file / dict of the user's classes (:func:`flairlc.nomenclature.get`); stored
            in full in checkpoints, so a checkpoint never depends on the file.
        bands: the aerial bands the model reads, in its input order, any of ``R``, ``G``, ``B``,
            ``NIR``, ``elevation`` (default all 5, FLAIR's order). Batches hold the first bands of
            FLAIR's order (FLAIR #2: all 5; FLAIR-HUB: R, G, B, NIR, and elevation from its DEM);
            the model picks its own (:mod:`flairlc.data.bands`).
        active_classes: indices of the classes the model predicts (default: all). The others are
            weighted 0 in the loss and never win the argmax in ``test``, ``predict`` and ``map``
            (their probability is 0): e.g. the 4 untrained outputs of a 15-class FLAIR-INC model.
        use_metadata: feed the encoded aerial metadata to the U-Net encoder.
        geo_enc_size: size of the centroid encoding in the metadata vector.
        aerial_scaling: ``"unit"`` (uint8 / 255, the paper) or ``"standardize"``.
        aerial_mean, aerial_std: per-band statistics for ``"standardize"`` (digital numbers), in
            the order of ``bands``; default IGN's FLAIR statistics of those bands.
        sentinel_scaling: ``"unit"`` (uint16 / 65 535), ``"reflectance"`` (/ 10 000) or ``"raw"``
            (no division); None (default): the profile's, ``"unit"`` for ``"flairlc"``; for
            ``"paper"``, ``"raw"`` with the monthly average and ``"unit"`` without, which is what
            the official code fed U-TAE (``docs/fidelity.md``).
        class_weights: per-class loss weights of the aerial (U-Net) output; default 1, 'other' 0.
        aux_class_weights: per-class weights of the satellite (U-TAE) output; default 1, 'other'
            and 'plowed land' 0.
        loss_weights: ``[w_utae, w_unet]`` of the U-T&T loss.
        optimizer: ``"sgd"`` (the paper) or ``"adamw"``.
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay.
        scheduler: None, ``"cosine"`` (over ``trainer.max_epochs``) or ``"plateau"`` (on val loss).
        augment: random horizontal/vertical flips and rot90 (p = 0.5 each) on training batches.
        sat_patch_size: Sentinel-2 window side (10 m pixels) the model expects.
        reference_date: origin of the date offsets, ``YYYY-MM-DD``.
        filter_clouds, cloud_max_cover, cloud_prob_threshold, average_monthly: the Sentinel-2
            preprocessing the model is trained with (the data module's settings, linked by the
            CLI); mapping applies the same to its series.
        aerial_resolution_m: aerial pixel size (metres).
        sentinel_resolution_m: Sentinel-2 pixel size (metres).
        profile: preprocessing profile, ``"flairlc"`` or ``"paper"`` (the data module's, linked by
            the CLI; see :class:`~flairlc.data.sentinel.SeriesPreprocessing` and
            ``docs/fidelity.md``); checkpoints saved before it existed load as ``"flairlc"``.
        init_checkpoint: a flairlc checkpoint (e.g. an imported IGN model) whose weights start
            the training (fine-tuning). Its architecture, bands and input scaling must be this
            task's (the error says which arguments to set); with another nomenclature its
            class-specific layers (the heads) start afresh, except rows given by ``head_init``.
        head_init: for fine-tuning to other classes: new class name → name (or list of names,
            averaged) of the checkpoint's classes whose head weights it starts from.
        channels_last: run the network in channels-last memory format (faster convolutions on
            GPUs, with ``bf16-mixed`` above all, and on CPUs; the same function up to float
            rounding).
        compile_network: compile the network with ``torch.compile`` when a Trainer starts
            (``configure_model``); the weights and checkpoints are unchanged. Compiling takes tens
            of seconds to minutes before the first step.
    """

    def __init__(
        self,
        model: str = "unet",
        model_kwargs: dict[str, Any] | None = None,
        nomenclature: str | dict[str, Any] = "baseline",
        bands: Sequence[str] | None = None,
        active_classes: Sequence[int] | None = None,
        use_metadata: bool = False,
        geo_enc_size: int = 32,
        aerial_scaling: str = "unit",
        aerial_mean: Sequence[float] | None = None,
        aerial_std: Sequence[float] | None = None,
        sentinel_scaling: str | None = None,
        class_weights: Sequence[float] | None = None,
        aux_class_weights: Sequence[float] | None = None,
        loss_weights: Sequence[float] = (1.0, 1.0),
        optimizer: str = "sgd",
        lr: float = 0.001,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        scheduler: str | None = None,
        augment: bool = False,
        sat_patch_size: int = 40,
        reference_date: str = "2021-05-15",
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        aerial_resolution_m: float = 0.2,
        sentinel_resolution_m: float = 10.0,
        profile: str = DEFAULT_PROFILE,
        init_checkpoint: str | None = None,
        head_init: dict[str, str | list[str]] | None = None,
        channels_last: bool = False,
        compile_network: bool = False,
    ) -> None:
        super().__init__(
            model=model, model_kwargs=model_kwargs, nomenclature=nomenclature, bands=bands,
            active_classes=active_classes, use_metadata=use_metadata, geo_enc_size=geo_enc_size,
            aerial_scaling=aerial_scaling, aerial_mean=aerial_mean, aerial_std=aerial_std,
            sentinel_scaling=sentinel_scaling, sat_patch_size=sat_patch_size, reference_date=reference_date,
            filter_clouds=filter_clouds, cloud_max_cover=cloud_max_cover, cloud_prob_threshold=cloud_prob_threshold,
            average_monthly=average_monthly, aerial_resolution_m=aerial_resolution_m,
            sentinel_resolution_m=sentinel_resolution_m, profile=profile,
        )
        self.save_hyperparameters()
        self.hparams["nomenclature"] = nomenclature_module.portable(nomenclature)
        self.hparams["bands"] = list(self.bands)
        self.hparams["aerial_mean"], self.hparams["aerial_std"] = list(self.aerial_mean), list(self.aerial_std)
        self.hparams["loss_weights"] = list(loss_weights)
        if active_classes is not None:
            self.hparams["active_classes"] = list(self.active_classes)
        # Loggers and the data-module merge read the initial hyper-parameters: make them the
        # values in use (a nomenclature file's content, resolved statistics), like the data module.
        self._hparams_initial = copy.deepcopy(self._hparams)
        self.register_buffer("class_weights", self._weights(class_weights, zero=self.ignored_classes), persistent=False)
        baseline = nomenclature_module.same(self.nomenclature, "baseline")
        self.register_buffer(
            "aux_class_weights",
            self._weights(aux_class_weights, zero=self.ignored_classes + ((PLOWED_INDEX,) if baseline else ())),
            persistent=False,
        )
        if init_checkpoint is not None:
            from flairlc.training.finetune import initialize_from_checkpoint

            self.provenance = initialize_from_checkpoint(self, init_checkpoint, head_init)
        if channels_last:
            self.use_channels_last()
        self._val_confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)
        self._test_rows: list[tuple[torch.Tensor, torch.Tensor]] = []
        #: Where ``test`` writes its evaluation (JSON, CSV, PNG) from rank 0; None: not written.
        self.evaluation_dir: str | None = None
        #: The evaluation of the last ``test`` run (every patch counted once, DDP included).
        self.test_result: EvaluationResult | None = None

    # ------------------------------------------------------------------------------ steps
    def _weights(self, weights: Sequence[float] | None, zero: tuple[int, ...]) -> torch.Tensor:
        if weights is not None:
            if len(weights) != self.num_classes:
                raise ValueError(f"{len(weights)} class weights given for {self.num_classes} classes")
            return torch.tensor(list(weights), dtype=torch.float32)
        default = torch.ones(self.num_classes)
        default[list(zero)] = 0.0
        return default

    def loss(self, logits: torch.Tensor, aux_logits: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        """Weighted cross-entropy of the main output, plus the auxiliary head's for U-T&T."""
        if self.hparams["model"] == "utae":
            return weighted_cross_entropy(logits, mask, self.aux_class_weights)
        loss = weighted_cross_entropy(logits, mask, self.class_weights)
        if aux_logits is not None:
            w_utae, w_unet = self.hparams["loss_weights"]
            loss = w_unet * loss + w_utae * weighted_cross_entropy(aux_logits, mask, self.aux_class_weights)
        return loss

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if self.hparams["augment"]:
            batch = augment_batch(batch)
        logits, aux_logits = self.forward_batch(batch)
        loss = self.loss(logits, aux_logits, batch["mask"])
        # The step's loss goes to the loggers (every log_every_n_steps) and its epoch mean to the
        # progress bar: a per-step value in the bar would be read back at every step, and that
        # host synchronisation would keep the device from running ahead of the host.
        batch_size = len(batch["mask"])
        self.log("train_loss", loss, batch_size=batch_size)
        self.log("train_loss_mean", loss, on_step=False, on_epoch=True, prog_bar=True, logger=False,
                 sync_dist=True, batch_size=batch_size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits, aux_logits = self.forward_batch(batch)
        loss = self.loss(logits, aux_logits, batch["mask"])
        self.log("val_loss", loss, prog_bar=True, sync_dist=True, batch_size=len(batch["mask"]))
        self._val_confusion += confusion_matrix_torch(batch["mask"], self.predictable(logits).argmax(dim=1), self.num_classes)

    def on_validation_epoch_start(self) -> None:
        self._val_confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64, device=self.device)

    def on_validation_epoch_end(self) -> None:
        confusion = self.trainer.strategy.reduce(self._val_confusion, reduce_op="sum")
        scores = Scores.from_confusion(confusion.cpu().numpy(), self.class_names, exclude=self.ignored_classes)
        miou = float(scores.miou) if scores.miou == scores.miou else 0.0
        self.log("val_miou", miou, prog_bar=True)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        prediction = self.predict_classes(batch)
        k = self.num_classes
        # One confusion matrix per sample, kept with the sample's index so that duplicates
        # added by the distributed sampler can be dropped before summing.
        truth = batch["mask"].reshape(len(prediction), -1)
        codes = truth * k + prediction.reshape(len(prediction), -1)
        offsets = torch.arange(len(prediction), device=codes.device)[:, None] * k * k
        counts = torch.bincount((codes + offsets).reshape(-1), minlength=len(prediction) * k * k)
        self._test_rows.append((batch["index"], counts.reshape(-1, k, k)))

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def on_test_epoch_end(self) -> None:
        indices = torch.cat([i for i, _ in self._test_rows]) if self._test_rows else torch.zeros(0, dtype=torch.int64)
        matrices = torch.cat([m for _, m in self._test_rows]) if self._test_rows else torch.zeros(0, self.num_classes, self.num_classes)
        self._test_rows = []
        indices, matrices = indices.to(self.device), matrices.to(self.device)
        if self.trainer.world_size > 1:
            indices = self.all_gather(indices).reshape(-1)
            matrices = self.all_gather(matrices).reshape(-1, self.num_classes, self.num_classes)
        self.test_result = self._result(indices.cpu(), matrices.cpu())
        if self.evaluation_dir and self.trainer.is_global_zero:
            self.test_result.write(self.evaluation_dir)
        scores = self.test_result.overall()
        self.log("test_miou", float(scores.miou), sync_dist=False, rank_zero_only=True)
        self.log("test_oa", float(scores.overall_accuracy), sync_dist=False, rank_zero_only=True)

    def _result(self, indices: torch.Tensor, matrices: torch.Tensor) -> EvaluationResult:
        dataset = self.trainer.test_dataloaders.dataset
        accumulator = ConfusionAccumulator(self.num_classes, class_names=self.class_names, exclude=self.ignored_classes)
        seen: set[int] = set()
        for index, matrix in zip(indices.tolist(), matrices):
            if index in seen:
                continue
            seen.add(index)
            accumulator.add(matrix.numpy(), domain=dataset.records[index].domain)
        return accumulator.result(metadata={"model": self.hparams["model"], "num_patches": len(seen)})

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        probabilities = self.predict_proba(batch)
        return {"id": batch["id"], "index": batch["index"], "probabilities": probabilities}

    # ----------------------------------------------------------------------- optimization
    def configure_optimizers(self) -> Any:
        h = self.hparams
        if h["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(self.parameters(), lr=h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"])
        elif h["optimizer"] == "adamw":
            optimizer = torch.optim.AdamW(self.parameters(), lr=h["lr"], weight_decay=h["weight_decay"])
        else:
            raise ValueError(f"unknown optimizer {h['optimizer']!r}: expected 'sgd' or 'adamw'")
        if h["scheduler"] is None:
            return optimizer
        if h["scheduler"] == "cosine":
            epochs = max(1, int(self.trainer.max_epochs or 1))
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)}
        if h["scheduler"] == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=3)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss"}}
        raise ValueError(f"unknown scheduler {h['scheduler']!r}: expected None, 'cosine' or 'plateau'")

    def configure_model(self) -> None:
        """Compile the network (``compile_network``) once, when a Trainer starts."""
        if self.hparams.get("compile_network", False) and getattr(self.net, "_compiled_call_impl", None) is None:
            self.net.compile()

    # ------------------------------------------------------------------ checks and checkpoints
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "hparams"):
            check_data_fits(self, dict(datamodule.hparams))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["flairlc"] = {
            "version": __version__,
            "model": self.hparams["model"],
            "inputs": list(self.required_modalities),
            "aerial_channels": self.aerial_channels,
            "bands": list(self.bands) if self.uses_aerial else [],
            "aerial_scaling": {"mode": self.aerial_scaler.mode, "mean": self.hparams["aerial_mean"], "std": self.hparams["aerial_std"]},
            "sat_patch_size": self.sat_patch_size,
            "nomenclature": self.nomenclature.name,
            "nomenclature_definition": self.nomenclature.to_dict(),
            "class_names": self.class_names,
            "class_colors": self.nomenclature.colors,
            "active_classes": list(self.active_classes),
            "profile": self.series_preprocessing.profile,
            "sentinel_scaling": self.sentinel_scaler.mode,
            "provenance": self.provenance,
        }


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Class-weighted cross-entropy, averaged over the pixels' weights.

    Equal to ``F.cross_entropy(logits, target, weight=weight)``, except that a batch whose pixels
    all have weight 0 (e.g. only 'other') gives 0 instead of NaN.
    """
    losses = F.cross_entropy(logits, target, reduction="none")
    pixel_weights = weight[target]
    return (losses * pixel_weights).sum() / pixel_weights.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def check_data_fits(task: SegmentationTask, data_hparams: dict[str, Any]) -> None:
    """Raise a clear error when a data module's settings do not fit a task.

    Checks the nomenclature (number of classes), the modalities and aerial bands the model reads,
    the Sentinel-2 window size and preprocessing, and the preprocessing profile (when the model reads the series
    or the metadata, which the profile changes).
    """
    problems = []
    data_nomenclature = data_hparams.get("nomenclature", task.hparams["nomenclature"])
    if not nomenclature_module.same(data_nomenclature, task.nomenclature):
        data_nomen = nomenclature_module.get(data_nomenclature)
        problems.append(
            f"the model predicts the {task.nomenclature.name!r} nomenclature "
            f"({task.num_classes} classes) but the data uses {data_nomen.name!r} ({data_nomen.num_classes})"
        )
    modalities = set(data_hparams.get("modalities") or ())
    missing = [m for m in task.required_modalities if m not in modalities]
    if modalities and missing:
        problems.append(f"the model reads {missing} but the data module loads only {sorted(modalities)}")
    if "sentinel" in task.required_modalities:
        for key in ("sat_patch_size", "filter_clouds", "cloud_max_cover", "cloud_prob_threshold", "average_monthly", "reference_date"):
            if key in data_hparams and data_hparams[key] != task.hparams[key]:
                problems.append(f"the model was set up with {key}={task.hparams[key]!r}, the data uses {data_hparams[key]!r}")
    delivered = data_hparams.get("aerial_bands")  # FLAIR-HUB's data module says; FLAIR #2's are all 5
    lacking = [b for b in task.bands if b not in delivered] if delivered is not None and task.uses_aerial else []
    if lacking:
        problems.append(
            f"the model reads aerial bands {list(task.bands)} but the data delivers {list(delivered)} "
            f"({', '.join(lacking)} missing; FLAIR-HUB: load 'dem' for elevation, or set the model's bands)"
        )
    profile = task.series_preprocessing.profile
    if {"sentinel", "metadata"} & set(task.required_modalities) and data_hparams.get("profile", profile) != profile:
        problems.append(f"the model was set up with profile={profile!r}, the data uses {data_hparams['profile']!r}")
    if problems:
        raise ValueError("model and data do not fit: " + "; ".join(problems))
