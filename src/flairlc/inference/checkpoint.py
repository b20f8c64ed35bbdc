"""Reading flairlc checkpoints safely (``weights_only=True``: no code runs from the file).

A checkpoint is the dictionary ``flairlc fit`` (Lightning) writes: ``state_dict`` (the network's
weights, ``net.*``), ``hyper_parameters`` (the task's constructor arguments) and a ``flairlc``
summary. This module reads it with ``torch.load`` alone, and is the one place that turns its
hyper-parameters into constructor arguments, for :class:`~flairlc.inference.TrainedModel` and
:class:`~flairlc.training.SegmentationTask` alike.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not a flairlc checkpoint."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint dictionary with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: one line saying what the file is not (a flairlc/Lightning checkpoint, a
            state dict) or which Python object a safe load refused.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is the same user error
        raise CheckpointError(f"{path}: {_unreadable(error)}") from None
    problem = _not_a_training_checkpoint(checkpoint)
    if problem:
        raise CheckpointError(f"{path}: {problem}")
    return checkpoint


#: What ``flairlc`` reads: a checkpoint written by ``flairlc fit`` (Lightning, with hyper-parameters).
_EXPECTED = "a flairlc/Lightning checkpoint (a .ckpt written by flairlc fit)"


def _unreadable(error: Exception) -> str:
    """What to say of a file ``torch.load(weights_only=True)`` failed on, in one line."""
    unsafe = re.search(r"GLOBAL ([\w.]+)|global[: ]+([\w.]+)", str(error))
    if unsafe:
        name = unsafe.group(1) or unsafe.group(2)
        return (
            f"refused: it holds a Python object ({name}) that a safe (weights-only) load does not "
            f"create; it is not {_EXPECTED}"
        )
    return f"not {_EXPECTED}, nor a PyTorch state dict: torch.load cannot read it (truncated, or another kind of file?)"


def _not_a_training_checkpoint(checkpoint: Any) -> str | None:
    """Why a loaded object is not a flairlc training checkpoint, or None when it is one."""
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint and "hyper_parameters" in checkpoint:
        return None
    if isinstance(checkpoint, dict) and checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return f"a bare state dict ({len(checkpoint)} tensors, no hyper-parameters to rebuild the model), not {_EXPECTED}"
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        return f"a checkpoint without hyper_parameters, not {_EXPECTED}"
    return f"a PyTorch file holding a {type(checkpoint).__name__}, not {_EXPECTED}"


def constructor_arguments(checkpoint: dict[str, Any], cls: type, path: str | Path) -> dict[str, Any]:
    """The arguments of ``cls`` (a model class) stored in a checkpoint's hyper-parameters.

    LightningCLI stores bookkeeping entries (``_instantiator``, ``_class_path``) beside the
    constructor arguments, and a model class may take fewer arguments than the task that saved
    it: only those ``cls.__init__`` accepts are kept. A fine-tuning's starting checkpoint
    (``init_checkpoint``, ``head_init``) is never read again: the weights are in this file.

    Raises:
        CheckpointError: a metadata model saved before preprocessing profiles existed.
    """
    accepted = inspect.signature(cls.__init__).parameters
    arguments = {k: v for k, v in checkpoint["hyper_parameters"].items() if k in accepted}
    arguments.pop("init_checkpoint", None), arguments.pop("head_init", None)
    if "profile" not in arguments and arguments.get("use_metadata"):
        # Before preprocessing profiles, the centroid was encoded with wavelengths of 6.3 m to
        # 19.9 km, an encoding no profile offers: reading it with another would feed the model
        # silently different inputs (docs/fidelity.md).
        raise CheckpointError(
            f"{path}: a metadata model saved before preprocessing profiles existed; its centroid "
            "encoding is no longer available: retrain it (see docs/fidelity.md)"
        )
    return arguments


def build_model(cls: type, arguments: dict[str, Any], path: str | Path) -> Any:
    """``cls(**arguments)``, or a :class:`CheckpointError` saying the arguments build no model."""
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its hyper-parameters do not build a model: {error}") from None


def load_weights(model: nn.Module, checkpoint: dict[str, Any], path: str | Path) -> None:
    """Load a checkpoint's weights into ``model`` strictly, and its provenance.

    Raises:
        CheckpointError: the weights do not fit the model the hyper-parameters describe.
    """
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the model they describe: {error}") from None
    model.provenance = dict((checkpoint.get("flairlc") or {}).get("provenance") or {})


def load_model(cls: type, path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``cls`` rebuilt from a checkpoint's hyper-parameters, its weights loaded strictly, in eval
    mode on ``map_location``: the one loader of :class:`~flairlc.inference.TrainedModel` and of
    training's ``SegmentationTask``.

    Raises:
        CheckpointError: missing, unsafe or mismatching checkpoint, with the reason.
    """
    checkpoint = read_checkpoint(path)
    model = build_model(cls, constructor_arguments(checkpoint, cls, path), path)
    load_weights(model, checkpoint, path)
    return model.to(map_location).eval()
