"""Loading trained checkpoints safely (``weights_only=True``: no code runs from the file)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from flairlc.training.task import SegmentationTask


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a flairlc checkpoint."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint dictionary with ``torch.load(weights_only=True)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is the same user error
        raise CheckpointError(f"{path}: cannot read as a safe (weights-only) checkpoint: {error}") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise CheckpointError(f"{path}: not a flairlc training checkpoint (no state_dict/hyper_parameters)")
    return checkpoint


def load_task(path: str | Path, map_location: str | torch.device = "cpu") -> SegmentationTask:
    """A trained :class:`SegmentationTask` from a checkpoint, in eval mode.

    The file is read with ``weights_only=True``; the model is rebuilt from the hyper-parameters
    stored in it and its weights loaded strictly.

    Raises:
        CheckpointError: missing, unsafe or mismatching checkpoint, with the reason.
    """
    checkpoint = read_checkpoint(path)
    # LightningCLI stores bookkeeping entries (``_instantiator``, ``_class_path``) beside the
    # constructor arguments: keep only the latter.
    accepted = inspect.signature(SegmentationTask.__init__).parameters
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in accepted}
    try:
        task = SegmentationTask(**hparams)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its hyper-parameters do not build a model: {error}") from None
    try:
        task.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the model they describe: {error}") from None
    return task.to(map_location).eval()


def datamodule_hparams(path: str | Path) -> dict[str, Any]:
    """The data module settings saved in a checkpoint (root, modalities, validation domains, …)."""
    return dict(read_checkpoint(path).get("datamodule_hyper_parameters") or {})
