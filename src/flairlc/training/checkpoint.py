"""Checkpoints as training sees them: the LightningModule of a checkpoint, and writing one.

Reading is :mod:`flairlc.inference.checkpoint`'s (no Lightning), re-exported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flairlc.inference.checkpoint import CheckpointError, load_model, read_checkpoint
from flairlc.training.task import SegmentationTask

__all__ = ["CheckpointError", "datamodule_hparams", "load_task", "read_checkpoint", "save_task"]


def load_task(path: str | Path, map_location: str | torch.device = "cpu") -> SegmentationTask:
    """A trained :class:`SegmentationTask` from a checkpoint, in eval mode.

    The file is read with ``weights_only=True``; the model is rebuilt from the hyper-parameters
    stored in it and its weights loaded strictly.

    Raises:
        CheckpointError: missing, unsafe or mismatching checkpoint, with the reason.
    """
    return load_model(SegmentationTask, path, map_location)


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
