"""IGN's published FLAIR models as flairlc checkpoints: ``flairlc import-weights``.

Two families of published files are read (the key layouts below were established from IGN's
public code, FLAIR-1 and FLAIR-HUB, and checked against segmentation-models-pytorch 0.4.0, the
version FLAIR-HUB pins):

- ``flair-inc``: FLAIR-1 / FLAIR-INC aerial U-Nets (``FLAIR-INC_{rgb,rgbi,rgbie}_15cl_resnet34-unet``,
  ``…_12cl_…``): ``smp.Unet`` (ResNet34) on 3, 4 or 5 uint8 bands R, G, B (+ NIR) (+ elevation),
  standardized with IGN's FLAIR statistics, 19 outputs in FLAIR's raw order (output ``i`` is mask
  value ``i + 1``: the ``raw`` nomenclature). A ``.pth`` state dict or a Lightning ``.ckpt`` whose
  ``state_dict`` holds the same keys, ``model.seg_model.<smp keys>``; ``criterion.*`` entries are
  dropped. The number of bands is read from the first convolution.
- ``flair-hub-aerial``: FLAIR-HUB's aerial land-cover models (``FLAIR-HUB_LC-A_{IR,RGB}_…``),
  ``.safetensors`` with ``model.encoders.AERIAL_RGBI.seg_model.<encoder keys>`` and
  ``model.main_decoders.AERIAL_LABEL-COSIA.seg_model.{decoder,segmentation_head}.<keys>``; the
  other entries (``model.fusion_handler.*``, which leaves a single modality's features unchanged,
  ``model.aux_decoders.*``, ``criterion.*``) are not used by an aerial-only prediction and are
  dropped (the import says how many). A multimodal file (an encoder of another modality, e.g.
  Sentinel-2, whose features the fusion mixes with the aerial ones) is refused: its aerial branch
  alone is not the published model. IR variants read NIR, R, G; RGB variants
  R, G, B (FLAIR-HUB's configuration history; ``--bands`` overrides); both with FLAIR-HUB's own
  statistics. Outputs are the 19 CoSIA classes, 0-based. The encoder (timm, e.g.
  ``convnextv2_base``) and decoder (``unet`` or ``upernet``) come from the file name or
  ``--encoder``/``--arch``. FLAIR-HUB's UPerNets were trained with the UPerNet of
  segmentation-models-pytorch 0.4.0, which smp 0.5 rewrote: they load into flairlc's rebuild of
  it (:mod:`flairlc.models.upernet_v040`), its widths read from the weights.

The checkpoint written holds the weights under flairlc's keys and everything needed to use them:
architecture, bands, scaling, nomenclature and active classes (the hyper-parameters of
:class:`~flairlc.training.task.SegmentationTask`), and where they came from (family, file name,
SHA-256).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from flairlc import __version__
from flairlc import nomenclature as nomenclature_module
from flairlc.data.bands import band_statistics, normalize_bands
from flairlc.hashing import file_sha256
from flairlc.models.unet import UPERNET_V040
from flairlc.outputs import check_writable
from flairlc.training.checkpoint import save_task

#: Families :func:`import_published_model` reads.
FAMILIES = ("flair-inc", "flair-hub-aerial")
#: FLAIR-HUB's per-band statistics of aerial images (digital numbers), from its modality config.
HUB_BAND_MEAN = {"R": 105.66, "G": 111.35, "B": 102.18, "NIR": 106.59}
HUB_BAND_STD = {"R": 52.23, "G": 45.62, "B": 44.30, "NIR": 39.78}
#: FLAIR-HUB's encoders by the short name of its file names.
HUB_ENCODERS = {
    "swintiny": "swin_tiny_patch4_window7_224",
    "swinsmall": "swin_small_patch4_window7_224",
    "swinbase": "swin_base_patch4_window12_384",
    "swinlarge": "swin_large_patch4_window12_384",
    "convnextv2tiny": "convnextv2_tiny",
    "convnextv2base": "convnextv2_base",
}
#: Raw FLAIR values trained by FLAIR-1's 15-class models (15, 16, 17 and 19 carry weight 0).
FLAIR_INC_15_VALUES = (*range(1, 15), 18)
#: The 15 CoSIA classes FLAIR-HUB trains (clear cut, ligneous, mixed, undefined carry weight 0).
HUB_15_INDICES = tuple(range(15))
_INC_PREFIX = "model.seg_model."
_HUB_TASK = "AERIAL_LABEL-COSIA"
_HUB_ENCODER = re.compile(r"^model\.encoders\.(?P<modality>[^.]+)\.seg_model\.(?P<key>.+)$")
_HUB_DECODER = re.compile(r"^model\.main_decoders\.(?P<task>[^.]+)\.seg_model\.(?P<key>(decoder|segmentation_head)\..+)$")


class PublishedModelError(ValueError):
    """A published file that cannot be imported (wrong family, unreadable, keys that do not fit)."""


@dataclass(frozen=True)
class ImportedModel:
    """What :func:`import_published_model` wrote.

    Attributes:
        checkpoint_path: the flairlc checkpoint.
        family: the published family.
        hyper_parameters: the task's arguments (architecture, bands, scaling, classes).
        dropped: entries of the file not used, by prefix, with their counts.
        sha256: SHA-256 of the published file.
    """

    checkpoint_path: Path
    family: str
    hyper_parameters: dict[str, Any]
    dropped: dict[str, int]
    sha256: str


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a published file: ``.safetensors``, or a ``.pth``/``.ckpt`` (safe load).

    Raises:
        PublishedModelError: a missing, truncated or unsafe file, or one without tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise PublishedModelError(f"{path}: file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise PublishedModelError(f"{path}: not a readable safetensors file (truncated?): {error}") from None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is the same user error
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(error)) or re.search(r"global[: ]+([\w.]+)", str(error))
        if unsafe:
            raise PublishedModelError(
                f"{path}: holds a Python object ({unsafe.group(1)}) that a safe load refuses; "
                "if you trust the file, save its state_dict alone (torch.save(torch.load(FILE, weights_only=False)"
                "['state_dict'], 'weights.pth')) and import that"
            ) from None
        first = str(error).strip().split(". ")[0] if str(error).strip() else type(error).__name__
        raise PublishedModelError(f"{path}: not a PyTorch weights file that loads safely (truncated, or another kind of file?): {first}") from None
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = content["state_dict"]
    if not isinstance(content, dict) or not content or not all(isinstance(v, torch.Tensor) for v in content.values()):
        raise PublishedModelError(f"{path}: holds a {type(content).__name__}, not a dict of weight tensors")
    return content


def import_published_model(
    path: str | Path,
    family: str,
    out: str | Path,
    bands: Sequence[str] | str | None = None,
    classes: str | Sequence[str] | None = None,
    encoder: str | None = None,
    arch: str | None = None,
) -> ImportedModel:
    """Convert a published IGN model file into a flairlc checkpoint.

    Args:
        path: the published file (``.pth``, ``.ckpt`` or ``.safetensors``).
        family: ``"flair-inc"`` or ``"flair-hub-aerial"`` (see the module docstring).
        out: the flairlc checkpoint to write (atomically).
        bands: the model's input bands in order; default: ``flair-inc`` R, G, B, NIR, elevation
            (the first N, N read from the weights), ``flair-hub-aerial`` NIR, R, G for ``_IR_``
            files and R, G, B otherwise.
        classes: which outputs the model predicts: ``"15"`` (default: the published models' 15
            trained classes), ``"12"`` (FLAIR-INC 12-class models: raw values 1..12), ``"all"``,
            or a list of class names.
        encoder: FLAIR-HUB timm encoder (e.g. ``convnextv2_base``); default from the file name.
        arch: FLAIR-HUB decoder (``unet``); default from the file name.

    Raises:
        PublishedModelError: one line naming what does not match (family, keys, shapes).
    """
    from flairlc.training.task import SegmentationTask

    path, out = Path(path), Path(out)
    if family not in FAMILIES:
        raise PublishedModelError(f"unknown family {family!r}: expected one of {', '.join(FAMILIES)}")
    check_writable(out, "checkpoint")
    weights = read_weights(path)
    if family == "flair-inc":
        state, dropped, settings = _flair_inc(path, weights, bands)
    else:
        state, dropped, settings = _flair_hub(path, weights, bands, encoder, arch)
    nomen = nomenclature_module.get(settings["nomenclature"])
    settings["active_classes"] = _active(classes, nomen, family)
    try:
        task = SegmentationTask(**settings)
    except (ValueError, RuntimeError, KeyError) as error:
        raise PublishedModelError(f"{path}: cannot build the network it describes: {error}") from None
    _load(path, task.net.net, state)
    sha256 = file_sha256(path)
    task.provenance = {"family": family, "file": path.name, "sha256": sha256, "dropped": dropped}
    # A Lightning checkpoint (weights and hyper-parameters, no training state), so that
    # ``flairlc predict/test --ckpt_path`` read it too.
    save_task(task, out, extra={"flairlc_import": {"version": __version__}})
    return ImportedModel(out, family, dict(task.hparams), dropped, sha256)


def _flair_inc(path: Path, weights: dict[str, torch.Tensor], bands) -> tuple[dict, dict, dict]:
    state, dropped, other = {}, {}, []
    for key, value in weights.items():
        if key.startswith(_INC_PREFIX):
            state[key[len(_INC_PREFIX):]] = value
        elif key.startswith("criterion."):
            dropped["criterion"] = dropped.get("criterion", 0) + 1
        else:
            other.append(key)
    if not state:
        hub = any(_HUB_ENCODER.match(k) for k in weights)
        hint = " (it looks like a FLAIR-HUB file: --family flair-hub-aerial)" if hub else ""
        raise PublishedModelError(f"{path}: no '{_INC_PREFIX}*' entry, so not a FLAIR-INC model{hint}; first keys: {list(weights)[:3]}")
    if other:
        raise PublishedModelError(f"{path}: entries outside '{_INC_PREFIX}*' and 'criterion.*': {other[:5]}")
    first = state.get("encoder.conv1.weight")
    if first is None or first.ndim != 4:
        raise PublishedModelError(f"{path}: no ResNet first convolution (encoder.conv1.weight): not a ResNet34 U-Net")
    in_channels = int(first.shape[1])
    bands = normalize_bands(bands) if bands is not None else ("R", "G", "B", "NIR", "elevation")[:in_channels]
    mean, std = band_statistics(bands)
    return state, dropped, {
        "model": "unet", "model_kwargs": {"arch": "unet", "encoder_name": "resnet34"},
        "nomenclature": "raw", "bands": list(bands), "aerial_scaling": "standardize",
        "aerial_mean": mean, "aerial_std": std,
    }


def _flair_hub(path: Path, weights: dict[str, torch.Tensor], bands, encoder: str | None, arch: str | None) -> tuple[dict, dict, dict]:
    state, dropped = {}, {}
    modalities = {m.group("modality") for m in map(_HUB_ENCODER.match, weights) if m}
    if not modalities:
        inc = any(k.startswith(_INC_PREFIX) for k in weights)
        hint = " (it looks like a FLAIR-INC file: --family flair-inc)" if inc else ""
        raise PublishedModelError(f"{path}: no 'model.encoders.<MODALITY>.seg_model.*' entry, so not a FLAIR-HUB model{hint}; first keys: {list(weights)[:3]}")
    aerial = [m for m in modalities if m.startswith("AERIAL")]
    if len(aerial) != 1:
        raise PublishedModelError(f"{path}: expected one aerial encoder, found modalities {sorted(modalities)}")
    if len(modalities) > 1:
        # Its fusion mixes the modalities' features: the aerial encoder and decoder alone predict
        # something else than IGN's model.
        raise PublishedModelError(
            f"{path}: a multimodal FLAIR-HUB model (modalities {', '.join(sorted(modalities))}); "
            "--family flair-hub-aerial imports aerial-only models (one AERIAL_* encoder)"
        )
    for key, value in weights.items():
        enc, dec = _HUB_ENCODER.match(key), _HUB_DECODER.match(key)
        if enc and enc.group("modality") == aerial[0]:
            state["encoder." + enc.group("key")] = value
        elif dec and dec.group("task") == _HUB_TASK:
            state[dec.group("key")] = value
        else:
            prefix = ".".join(key.split(".")[:2]) if key.startswith("model.") else key.split(".")[0]
            dropped[prefix] = dropped.get(prefix, 0) + 1
    if not any(k.startswith("segmentation_head.") for k in state):
        tasks = sorted({m.group("task") for m in map(_HUB_DECODER.match, weights) if m})
        raise PublishedModelError(f"{path}: no land-cover decoder 'model.main_decoders.{_HUB_TASK}' (decoders: {tasks})")
    name = path.name.lower()
    if encoder is None:
        found = [HUB_ENCODERS[k] for k in sorted(HUB_ENCODERS, key=len, reverse=True) if k in name.replace("-", "").replace("_", "")]
        if not found:
            raise PublishedModelError(f"{path}: the encoder cannot be told from the file name: pass --encoder (e.g. convnextv2_base)")
        encoder = found[0]
    if arch is None:
        arch = "upernet" if "upernet" in name else "unet" if "unet" in name else None
        if arch is None:
            raise PublishedModelError(f"{path}: the decoder cannot be told from the file name: pass --arch unet")
    model_kwargs: dict[str, Any] = {"arch": arch, "encoder_name": "tu-" + encoder.removeprefix("tu-")}
    if arch == "upernet":
        # smp 0.4.0's UPerNet (models.upernet_v040); its widths are read from the weights.
        model_kwargs["arch"] = UPERNET_V040
        for key, width in (("decoder.psp.out_conv.0.weight", "pyramid_channels"), ("decoder.fpn_bottleneck.0.weight", "segmentation_channels")):
            if key not in state:
                raise PublishedModelError(f"{path}: no {key}: not the UPerNet of FLAIR-HUB (smp 0.4.0)")
            model_kwargs[width] = int(state[key].shape[0])
    if bands is None:
        bands = ("NIR", "R", "G") if "_ir_" in name or name.startswith("ir_") else ("R", "G", "B")
    bands = normalize_bands(bands)
    unknown = [b for b in bands if b not in HUB_BAND_MEAN]
    if unknown:
        raise PublishedModelError(f"FLAIR-HUB aerial models read R, G, B, NIR: not {unknown}")
    return state, dropped, {
        "model": "unet",
        "model_kwargs": model_kwargs,
        "nomenclature": "cosia", "bands": list(bands), "aerial_scaling": "standardize",
        "aerial_mean": [HUB_BAND_MEAN[b] for b in bands], "aerial_std": [HUB_BAND_STD[b] for b in bands],
    }


def _active(classes: str | Sequence[str] | None, nomen: nomenclature_module.Nomenclature, family: str) -> list[int]:
    """Active class indices of an imported model (see :func:`import_published_model`)."""
    if classes is None or classes == "15":
        if family == "flair-inc":
            return [v - 1 for v in FLAIR_INC_15_VALUES]
        return list(HUB_15_INDICES)
    if classes == "12":
        if family != "flair-inc":
            raise PublishedModelError("--classes 12 is a FLAIR-INC setting (raw values 1..12)")
        return list(range(12))
    if classes == "all":
        return list(range(nomen.num_classes))
    names = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
    try:
        return sorted(nomen.index_of(n) for n in names)
    except ValueError as error:
        raise PublishedModelError(str(error)) from None


def _load(path: Path, network: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` strictly, or raise naming the first missing/unexpected/mismatching keys."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} missing (first: {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected (first: {unexpected[:3]})" if unexpected else "",
                 f"{len(shapes)} of another shape (first: {shapes[:2]})" if shapes else ""]
        raise PublishedModelError(f"{path}: its weights do not fit the network: " + "; ".join(p for p in parts if p))
    network.load_state_dict(state, strict=True)
