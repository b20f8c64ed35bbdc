"""Starting a training from a checkpoint's weights (fine-tuning), to the same or other classes.

The checkpoint (any flairlc checkpoint, e.g. one made by ``flairlc import-weights`` from an IGN
model) must describe the same network and inputs as the new task: model, ``model_kwargs``, bands,
input scaling and metadata. Everything that does not depend on the classes is copied. The
class-specific tensors, those whose first dimension is the number of classes (the segmentation
heads: weights ``(K, C, k, k)`` and biases ``(K,)``), are copied whole when the nomenclature is
the same; for other classes, each new class starts from the rows of the old classes ``head_init``
names (averaged when it names several) or from a fresh initialization.

Why explicit: mask values are read through the new nomenclature (value → index), never used as
indices themselves, so a user's classes 1..3 are indices 0..2 and all three are learnt (the
FLAIR-1 fine-tuning trap where labels started at 1 and only 2 of 3 classes were ever predicted).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from flairlc import nomenclature as nomenclature_module
from flairlc.data.bands import AERIAL_BANDS, band_statistics, normalize_bands
from flairlc.hashing import file_sha256
from flairlc.inference.checkpoint import read_checkpoint

if TYPE_CHECKING:
    from flairlc.training.task import SegmentationTask


def checkpoint_inputs(hparams: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint's network is and reads: the arguments a fine-tuning task must share.

    Old checkpoints without ``bands`` or statistics resolve to the defaults they were trained with.
    """
    model = hparams.get("model", "unet")
    bands = normalize_bands(hparams.get("bands") or AERIAL_BANDS) if model != "utae" else AERIAL_BANDS
    mean, std = band_statistics(bands)
    inputs = {
        "model": model,
        "model_kwargs": dict(hparams.get("model_kwargs") or {}),
        "bands": list(bands),
        "aerial_scaling": hparams.get("aerial_scaling", "unit"),
        "aerial_mean": [float(v) for v in hparams.get("aerial_mean") or mean],
        "aerial_std": [float(v) for v in hparams.get("aerial_std") or std],
        "use_metadata": bool(hparams.get("use_metadata", False)),
    }
    if inputs["aerial_scaling"] != "standardize":
        # Statistics only matter to standardization; other scalings ignore them.
        inputs.pop("aerial_mean"), inputs.pop("aerial_std")
    return inputs


def initialize_from_checkpoint(task: SegmentationTask, path: str | Path, head_init: dict[str, Any] | None) -> dict[str, Any]:
    """Load a checkpoint's weights into ``task`` (see the module docstring); its provenance.

    Raises:
        ValueError: the checkpoint describes another network or other inputs (naming the
            arguments to set), its weights do not fit, or ``head_init`` names unknown classes.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    hparams = checkpoint["hyper_parameters"]
    theirs, ours = checkpoint_inputs(hparams), checkpoint_inputs(dict(task.hparams))
    different = {k: v for k, v in theirs.items() if ours.get(k) != v}
    if different:
        settings = "; ".join(f"--model.{k} {_cli_value(v)}" for k, v in different.items())
        raise ValueError(
            f"init_checkpoint {path} holds another network or other inputs than this task: set {settings} "
            f"(`flairlc models --info {path}` prints its settings)"
        )
    old = nomenclature_module.get(hparams.get("nomenclature", "baseline"))
    rows = _head_rows(old, task.nomenclature, head_init)
    source, target = checkpoint["state_dict"], task.state_dict()
    missing = [k for k in target if k not in source]
    unexpected = [k for k in source if k not in target]
    if missing or unexpected:
        raise ValueError(f"init_checkpoint {path}: its weights do not fit the network: missing {missing[:5]}, unexpected {unexpected[:5]}")
    loaded = {}
    for key, value in target.items():
        weights = source[key]
        class_specific = weights.ndim >= 1 and weights.shape[0] == old.num_classes and value.shape[0] == task.num_classes
        if class_specific and rows is not None:
            loaded[key] = _mapped_rows(weights, value, rows)
        elif weights.shape == value.shape:
            loaded[key] = weights
        else:
            raise ValueError(f"init_checkpoint {path}: {key} has shape {tuple(weights.shape)}, the network {tuple(value.shape)}")
    task.load_state_dict(loaded, strict=True)
    previous = checkpoint.get("flairlc", {}).get("provenance") or {}
    return {
        "init_checkpoint": path.name,
        "init_checkpoint_sha256": file_sha256(path),
        "init_nomenclature": old.name,
        **({"source": previous} if previous else {}),
    }


def _cli_value(value: Any) -> str:
    """A value as it is written on the command line (``[R, G, B]``, ``standardize``)."""
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v}" for k, v in value.items()) + "}"
    return str(value)


def _head_rows(old: nomenclature_module.Nomenclature, new: nomenclature_module.Nomenclature,
               head_init: dict[str, Any] | None) -> list[list[int]] | None:
    """Old class rows each new class starts from (``[]``: fresh), or None for the same classes."""
    if head_init is None and nomenclature_module.same(old, new):
        return None
    head_init = dict(head_init or {})
    rows = []
    for c in new.classes:
        sources = head_init.pop(c.name, [])
        sources = [sources] if isinstance(sources, str) else list(sources)
        rows.append([old.index_of(name) for name in sources])
    if head_init:
        raise ValueError(f"head_init names classes {sorted(head_init)} that are not in the new nomenclature {new.names}")
    return rows


def _mapped_rows(weights: torch.Tensor, fresh: torch.Tensor, rows: list[list[int]]) -> torch.Tensor:
    """``fresh`` with row ``j`` replaced by the mean of ``weights[rows[j]]`` where given."""
    out = fresh.clone()
    for j, sources in enumerate(rows):
        if sources:
            out[j] = weights[sources].mean(dim=0)
    return out
