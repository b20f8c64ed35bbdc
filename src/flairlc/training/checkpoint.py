"""Loading trained checkpoints safely (``weights_only=True``: no code runs from the file)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import torch

from flairlc.training.task import SegmentationTask


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
    # The weights are in this file: a fine-tuning's starting checkpoint is not read again.
    hparams.pop("init_checkpoint", None), hparams.pop("head_init", None)
    if "profile" not in hparams and hparams.get("use_metadata"):
        # Before preprocessing profiles, the centroid was encoded with wavelengths of 6.3 m to
        # 19.9 km, an encoding no profile offers: reading it with another would feed the model
        # silently different inputs (docs/fidelity.md).
        raise CheckpointError(
            f"{path}: a metadata model saved before preprocessing profiles existed; its centroid "
            "encoding is no longer available: retrain it (see docs/fidelity.md)"
        )
    try:
        task = SegmentationTask(**hparams)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its hyper-parameters do not build a model: {error}") from None
    try:
        task.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the model they describe: {error}") from None
    task.provenance = dict((checkpoint.get("flairlc") or {}).get("provenance") or {})
    return task.to(map_location).eval()


def datamodule_hparams(path: str | Path) -> dict[str, Any]:
    """The data module settings saved in a checkpoint (root, modalities, validation domains, …)."""
    return dict(read_checkpoint(path).get("datamodule_hyper_parameters") or {})


def save_task(task: SegmentationTask, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``task`` as a Lightning-style checkpoint (weights and hyper-parameters, no training
    state) that :func:`load_task`, ``flairlc map`` and ``predict/test --ckpt_path`` read.

    Args:
        task: the model.
        path: the file to write (atomically).
        extra: more top-level entries (e.g. provenance of an import).
    """
    import lightning

    from flairlc.outputs import atomic_path

    checkpoint: dict[str, Any] = {"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams),
                                  "pytorch-lightning_version": lightning.__version__, **(extra or {})}
    task.on_save_checkpoint(checkpoint)
    with atomic_path(path) as temporary:
        torch.save(checkpoint, temporary)
    return Path(path)
