"""What a checkpoint is, for people: ``flairlc models --info CKPT``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flairlc.hashing import file_sha256
from flairlc.models.unet import UPERNET_V040
from flairlc.training.finetune import checkpoint_inputs

#: Names of architectures for people, by the task's ``model`` or the smp ``arch`` of its aerial
#: network; an architecture not listed is named by its ``arch``.
ARCHITECTURE_NAMES = {
    "unet": "U-Net", "unetplusplus": "U-Net++", "upernet": "UPerNet", UPERNET_V040: "UPerNet (smp 0.4.0)",
    "fpn": "FPN", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3+", "segformer": "SegFormer",
    "utae": "U-TAE", "utt": "UTT",
}


def architecture_name(model: str, model_kwargs: dict[str, Any]) -> str:
    """The architecture of a task's network for people: its smp ``arch`` for ``model="unet"``
    (e.g. ``"UPerNet (smp 0.4.0)"`` for an imported FLAIR-HUB UPerNet), else the model."""
    arch = str(model_kwargs.get("arch", "unet")) if model == "unet" else model
    return ARCHITECTURE_NAMES.get(arch.lower(), arch)


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """Architecture, inputs, scaling, classes and provenance of a flairlc checkpoint (JSON-able).

    The model is rebuilt (as ``map`` would) to count its parameters, so a checkpoint that does
    not load is reported by the same :class:`~flairlc.training.checkpoint.CheckpointError`.
    """
    from flairlc.training.checkpoint import load_task, read_checkpoint

    path = Path(path)
    task = load_task(path)
    checkpoint = read_checkpoint(path)
    stored = checkpoint.get("flairlc") or {}
    inputs = checkpoint_inputs(dict(task.hparams))
    return {
        "file": str(path),
        "sha256": file_sha256(path),
        "model": task.hparams["model"],
        "architecture": architecture_name(task.hparams["model"], dict(task.hparams.get("model_kwargs") or {})),
        "model_kwargs": dict(task.hparams.get("model_kwargs") or {}),
        "parameters": sum(p.numel() for p in task.parameters()),
        "inputs": list(task.required_modalities),
        "bands": list(task.bands) if task.uses_aerial else [],
        "aerial_scaling": {"mode": task.aerial_scaler.mode, "mean": task.hparams["aerial_mean"], "std": task.hparams["aerial_std"]},
        "nomenclature": task.nomenclature.name,
        "classes": [
            {"index": c.index, "name": c.name, "color": c.color, "mask_values": list(c.mask_values),
             "active": c.index in task.active_classes, "unlabeled": c.index in task.nomenclature.unlabeled}
            for c in task.nomenclature.classes
        ],
        "profile": task.series_preprocessing.profile,
        "provenance": dict(stored.get("provenance") or {}),
        "flairlc_version": stored.get("version"),
        "fine_tune_arguments": {"init_checkpoint": str(path), **inputs},
    }


def format_info(info: dict[str, Any]) -> str:
    """The report of :func:`checkpoint_info` as text."""
    scaling = info["aerial_scaling"]
    lines = [
        f"checkpoint   {info['file']}",
        f"sha256       {info['sha256']}",
        f"model        {info['architecture']} {_kwargs(info['model_kwargs'])}, {info['parameters']:,} parameters",
        f"inputs       {', '.join(info['inputs'])}",
    ]
    if info["bands"]:
        lines.append(f"bands        {', '.join(info['bands'])} (uint8)")
        if scaling["mode"] == "standardize":
            lines.append(f"scaling      (x - mean) / std, mean {scaling['mean']}, std {scaling['std']}")
        else:
            lines.append(f"scaling      {scaling['mode']}")
    active = [c for c in info["classes"] if c["active"]]
    lines.append(f"classes      {info['nomenclature']}: {len(info['classes'])} outputs, {len(active)} predicted")
    for c in info["classes"]:
        flags = ("" if c["active"] else "  (never predicted)") + ("  (unlabeled)" if c["unlabeled"] else "")
        values = ",".join(map(str, c["mask_values"]))
        lines.append(f"  {c['index']:>3}  {c['name']:<24} {c['color']}  mask values {values}{flags}")
    provenance = info["provenance"]
    if provenance:
        lines.append("provenance   " + ", ".join(f"{k}: {v}" for k, v in provenance.items()))
    args = " ".join(f"--model.{k} {_cli(v)}" for k, v in info["fine_tune_arguments"].items())
    lines.append(f"fine-tune    flairlc fit --config CONFIG {args} --data.nomenclature YOUR_CLASSES.json")
    return "\n".join(lines)


def _kwargs(kwargs: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else ""


def _cli(value: Any) -> str:
    """A value as a shell-quoted command-line argument."""
    import json
    import shlex

    return shlex.quote(json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value))
