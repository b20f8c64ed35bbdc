"""Scoring a trained checkpoint on a split, or a folder of predictions, against FLAIR masks.

A root in FLAIR-HUB's layout (:func:`flairlc.data.hub.check.is_hub_root`) is scored against one of
its labels, ``mask`` (``AERIAL_LABEL-COSIA``, land cover) or ``lpis`` (band 1 of
``ALL_LABEL-LPIS``, crop types): the one given, else the one whose nomenclature the model (or the
predictions' tags) has, else ``mask``; the split is that of a column of its split file
(``split_1`` by default) and the per-domain scores are per domain-year (``D006-2020``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from flairlc import nomenclature as nomenclature_module
from flairlc.data.collate import collate_flair
from flairlc.data.dataset import FlairDataset
from flairlc.data.errors import FlairDataError
from flairlc.data.hub import FlairHubDataset, collate_hub, discover_hub, hub_modality
from flairlc.data.hub.check import is_hub_root
from flairlc.data.hub.dataset import check_series_preprocessing
from flairlc.data.hub.layout import read_split_gpkg, select_split, split_gpkg_path
from flairlc.data.hub.modalities import HUB_MODALITIES
from flairlc.data.layout import discover_patches
from flairlc.evaluation.confusion import ConfusionAccumulator, confusion_matrix_torch
from flairlc.evaluation.predictions import (
    evaluate_prediction_folder,
    find_predictions,
    tagged_nomenclature,
)
from flairlc.evaluation.report import EvaluationResult
from flairlc.nomenclature import Nomenclature, NomenclatureSpec

if TYPE_CHECKING:
    from flairlc.inference import TrainedModel

#: The split column of a FLAIR-HUB root used when none is given.
HUB_DEFAULT_SPLIT_COLUMN = "split_1"
#: FLAIR-HUB's labels by sample key (``mask``, ``lpis``) → their built-in nomenclature.
HUB_LABELS = {m.key: m.nomenclature for m in HUB_MODALITIES.values() if m.label and m.nomenclature}


def evaluate_predictions(
    pred_dir: str | Path, root: str | Path, split: str = "test", nomenclature: NomenclatureSpec | None = None,
    label: str | None = None, split_column: str | None = None,
) -> EvaluationResult:
    """Score ``PRED_{id}.tif`` files against the masks of a split, matching patches by id, with
    the nomenclature the files carry (or ``nomenclature`` for files without it: see
    :func:`~flairlc.evaluation.predictions.evaluate_prediction_folder`).

    On a FLAIR-HUB root, against the ``label`` files (``mask`` or ``lpis``; default: ``lpis`` for
    predictions tagged with its classes, else ``mask``) of ``split`` in ``split_column``; the
    predictions must be of the label's nomenclature.

    Raises:
        ValueError: ``label``/``split_column`` on a FLAIR #2 root, or a ``nomenclature`` other
            than the label's on a FLAIR-HUB root, in one line.
    """
    if is_hub_root(root):
        label = label or _label_of(tagged_nomenclature(find_predictions(pred_dir)))
        expected = _hub_label_nomenclature(label)
        if nomenclature is not None and not nomenclature_module.same(nomenclature, expected):
            raise ValueError(f"--nomenclature {nomenclature}: FLAIR-HUB's {label!r} labels are {expected!r}'s "
                             f"(give --label for the other label)")
        masks, domains = hub_label_files(root, split, split_column or HUB_DEFAULT_SPLIT_COLUMN, label)
        return evaluate_prediction_folder(pred_dir, masks, domains, nomenclature=expected, progress=True, mask_band=1)
    _refuse_hub_options(root, label, split_column)
    records = [r for r in discover_patches(root, splits=(split,)) if r.mask_path is not None]
    if not records:
        raise FlairDataError(root, f"no labelled patches in the {split} split")
    masks = {r.id: r.mask_path for r in records}
    domains = {r.id: r.domain for r in records}
    return evaluate_prediction_folder(pred_dir, masks, domains, nomenclature=nomenclature, progress=True)


def evaluate_checkpoint(
    checkpoint: str | Path, root: str | Path, split: str = "test", batch_size: int = 4,
    num_workers: int = 0, accelerator: str = "auto", devices: str | int = "auto",
    label: str | None = None, split_column: str | None = None,
) -> EvaluationResult:
    """Run a trained model over a split and score it with the paper's metric.

    The input settings (modalities, Sentinel-2 window, cloud filter, monthly average, preprocessing
    profile…) are those the model was trained with, stored in the checkpoint; only the root and
    split come from the arguments. The model (:class:`~flairlc.inference.TrainedModel`, no
    Lightning) runs on one device (:func:`evaluation_device`); every patch is scored once.

    On a FLAIR-HUB root the model reads the modalities it was trained on (R, G, B, NIR from
    ``AERIAL_RGBI``, elevation from ``DEM_ELEV``, the Sentinel-2 series with the cloud filter and
    monthly means it was trained with, as ``FlairHubDataModule`` gives them) and is scored against
    the label of its classes (``label``: ``mask`` or ``lpis``, which must then be its own) in
    ``split`` of ``split_column``.

    Raises:
        ValueError: ``label``/``split_column`` on a FLAIR #2 root; on a FLAIR-HUB root, a model of
            other classes than the label's, one that reads inputs the root lacks, or one whose
            series preprocessing FLAIR-HUB cannot serve (profile ``"paper"``); in one line.
    """
    from flairlc.inference import load_trained_model

    device = evaluation_device(accelerator, devices)
    hub = is_hub_root(root)
    if not hub:
        _refuse_hub_options(root, label, split_column)
    model = load_trained_model(checkpoint, map_location=device)
    if hub:
        hub_data = _hub_dataset(model, checkpoint, root, split, split_column, label)
        label_key = next(m.key for m in hub_data.modalities if m.label)
        return _score(model, hub_data, label_key, collate_hub, batch_size, num_workers, device,
                      {"checkpoint": str(checkpoint), "root": str(root), "split": split,
                       "split_column": split_column or HUB_DEFAULT_SPLIT_COLUMN, "label": label_key})
    series = model.series_preprocessing
    dataset = FlairDataset(
        discover_patches(root, splits=(split,)),
        modalities=[*model.required_modalities, "mask"],
        nomenclature=model.nomenclature,
        sat_patch_size=model.sat_patch_size,
        filter_clouds=series.filter_clouds,
        cloud_max_cover=series.cloud_max_cover,
        cloud_prob_threshold=series.cloud_prob_threshold,
        average_monthly=series.average_monthly,
        reference_date=series.reference_date,
        geo_enc_size=model.geo_enc_size,
        profile=series.profile,
    )
    return _score(model, dataset, "mask", collate_flair, batch_size, num_workers, device,
                  {"checkpoint": str(checkpoint), "root": str(root), "split": split})


def _score(model: TrainedModel, dataset: FlairDataset | FlairHubDataset, label_key: str,
           collate: Callable[[list[dict[str, Any]]], dict[str, Any]], batch_size: int, num_workers: int,
           device: torch.device, metadata: dict[str, str]) -> EvaluationResult:
    """Run ``model`` over ``dataset`` and add up its confusion matrices against ``label_key``."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate,
                        pin_memory=device.type == "cuda")
    accumulator = ConfusionAccumulator(model.num_classes, class_names=model.class_names, exclude=model.ignored_classes)
    with torch.inference_mode():
        for batch in loader:
            inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            inputs["mask"] = inputs.pop(label_key)  # the model's output size follows the mask's
            prediction = model.predict_classes(inputs)
            for index, truth, predicted in zip(batch["index"].tolist(), inputs["mask"], prediction):
                matrix = confusion_matrix_torch(truth, predicted, model.num_classes, ignore_index=None)
                accumulator.add(matrix.cpu().numpy(), domain=dataset.records[index].domain)
    result = accumulator.result(metadata={"model": model.architecture, "num_patches": len(dataset)})
    result.metadata.update(metadata)
    return result


def hub_label_files(
    root: str | Path, split: str, split_column: str = HUB_DEFAULT_SPLIT_COLUMN, label: str = "mask",
) -> tuple[dict[str, Path], dict[str, str]]:
    """The label files of a FLAIR-HUB split: patch id → file of ``label`` (``mask``, ``lpis``),
    and patch id → domain-year; patches without one are left out.

    Raises:
        FlairDataError: no patch of the split has the label, naming the root.
    """
    modality = hub_modality(label)
    patches = select_split(discover_hub(root), read_split_gpkg(split_gpkg_path(root), split_column), split)
    labelled = [p for p in patches if modality.name in p.files]
    if not labelled:
        raise FlairDataError(root, f"no {split} patch of {split_column} has a {modality.name} file")
    return {p.id: p.files[modality.name] for p in labelled}, {p.id: p.domain_year for p in labelled}


def _hub_dataset(model: TrainedModel, checkpoint: str | Path, root: str | Path, split: str, split_column: str | None,
                 label: str | None) -> FlairHubDataset:
    """The FLAIR-HUB split a model is scored on: its inputs and the label of its classes."""
    label = label or _label_of(model.nomenclature)
    expected = _hub_label_nomenclature(label)
    if not nomenclature_module.same(model.nomenclature, expected):
        raise ValueError(f"{checkpoint} predicts the {model.nomenclature.name!r} classes, but FLAIR-HUB's {label!r} "
                         f"labels are {expected!r}'s: score it against the label of its classes (--label)")
    if model.use_metadata:
        raise ValueError(f"{checkpoint} reads FLAIR #2's aerial metadata, which a FLAIR-HUB root does not hold")
    sentinel_px = HUB_MODALITIES["SENTINEL2_TS"].patch_px
    if model.uses_sentinel and model.sat_patch_size != sentinel_px:
        raise ValueError(f"{checkpoint} reads {model.sat_patch_size} px Sentinel-2 windows; FLAIR-HUB's are {sentinel_px} px")
    inputs = list(model.required_modalities)
    series = model.series_preprocessing
    try:
        check_series_preprocessing(inputs, series)
    except ValueError as error:
        raise ValueError(f"{checkpoint}: {error}") from None
    if "aerial" in inputs and "elevation" in model.bands:
        inputs.append("dem")
    column = split_column or HUB_DEFAULT_SPLIT_COLUMN
    reference = model.reference_date  # its month and day: FLAIR-HUB counts from that day of each date's year
    dataset = FlairHubDataset.from_root(root, split=split, split_column=column, modalities=[*inputs, label],
                                        aerial_elevation="dem" in inputs, series_preprocessing=series,
                                        reference_day=(reference.month, reference.day))
    if not len(dataset):
        raise FlairDataError(root, f"no {split} patch in {column} of its split file")
    return dataset


def _label_of(nomen: Nomenclature | None) -> str:
    """The FLAIR-HUB label whose nomenclature is ``nomen`` (``mask`` when none is)."""
    return next((key for key, name in HUB_LABELS.items() if nomen is not None and nomenclature_module.same(nomen, name)),
                "mask")


def _hub_label_nomenclature(label: str) -> str:
    if label not in HUB_LABELS:
        raise ValueError(f"--label {label}: expected one of {', '.join(HUB_LABELS)}")
    return HUB_LABELS[label]


def _refuse_hub_options(root: str | Path, label: str | None, split_column: str | None) -> None:
    """FLAIR #2 roots have one label and fixed splits: refuse FLAIR-HUB's options in one line."""
    for option, value in (("--label", label), ("--split-column", split_column)):
        if value is not None:
            raise ValueError(f"{option} {value}: {root} is a FLAIR #2 root (one mask, fixed splits); {option} "
                             "goes with a FLAIR-HUB root")


def evaluation_device(accelerator: str = "auto", devices: str | int = "auto") -> torch.device:
    """The one device ``evaluate --checkpoint`` runs on, from Lightning-style options.

    Args:
        accelerator: ``"auto"`` (a CUDA GPU when there is one, else Apple's MPS, else the CPU),
            ``"cpu"``, ``"gpu"`` / ``"cuda"`` or ``"mps"``.
        devices: ``"auto"`` or 1 (the first device), or one GPU index as ``"N,"`` or ``[N]``.

    Raises:
        ValueError: an unknown accelerator, more than one device, or a device this machine lacks.
    """
    kinds = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda", "mps": "mps"}
    if accelerator == "auto":
        kind = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    elif accelerator in kinds:
        kind = kinds[accelerator]
    else:
        raise ValueError(f"--accelerator {accelerator}: expected auto, cpu, gpu, cuda or mps")
    index = _device_index(devices)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--accelerator {accelerator}: PyTorch sees no CUDA GPU on this machine (use --accelerator cpu)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--accelerator {accelerator}: Apple's MPS is not available on this machine (use --accelerator cpu)")
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"--devices {devices}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(kind, index) if kind == "cuda" and index is not None else torch.device(kind)


def _device_index(devices: str | int | list[int]) -> int | None:
    """The GPU index ``devices`` names (``"N,"``, ``[N]``), None for the default, or a ValueError."""
    if isinstance(devices, (list, tuple)):
        if len(devices) == 1:
            return int(devices[0])
    else:
        text = str(devices).strip()
        if text in ("auto", "1"):
            return None
        if text.endswith(",") and text[:-1].isdigit():
            return int(text[:-1])
    raise ValueError(f"--devices {devices}: evaluate runs on one device: give 1, or a GPU index as 'N,'")
