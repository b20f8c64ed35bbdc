"""`TrainedModel`: a trained FLAIR model as a value of its own, ready to predict.

The network, the input scaling, the aerial bands it reads, its classes and the Sentinel-2
preprocessing it was trained with, in one :class:`torch.nn.Module` that implements the mapper's
:class:`~flairlc.mapping.predictor.Predictor`. :func:`load_trained_model` rebuilds it from a
checkpoint with ``torch.load`` alone: mapping and evaluation import PyTorch and the network,
never Lightning. :class:`~flairlc.training.SegmentationTask` is a ``TrainedModel`` that also
trains, so the scaling, band picking and softmax have one implementation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from flairlc import nomenclature as nomenclature_module
from flairlc.data.bands import (
    AERIAL_BANDS,
    band_indices,
    band_statistics,
    delivered_bands,
    normalize_bands,
)
from flairlc.data.metadata import metadata_size
from flairlc.data.sentinel import DEFAULT_PROFILE, SeriesPreprocessing
from flairlc.inference.checkpoint import load_model
from flairlc.inference.scaling import (
    SENTINEL1_DB_MEAN,
    SENTINEL1_DB_STD,
    SPOT_MEAN,
    SPOT_STD,
    UINT8_MAX,
    UINT16_MAX,
    InputScaler,
)
from flairlc.models import FusionOutput, create_model
from flairlc.models.fusion import center_crop, sentinel_footprint_px
from flairlc.models.multimodal import (
    IMAGE_MODALITIES,
    MODALITIES,
    SENTINEL1_CHANNELS,
    SPOT_CHANNELS,
    normalize_modalities,
)

#: Inputs each model reads (besides the mask); for ``"multimodal"``, at most these: its
#: ``model_kwargs.modalities`` say which (:attr:`TrainedModel.model_inputs`).
MODEL_INPUTS = {
    "unet": ("aerial",), "utae": ("sentinel",), "utt": ("aerial", "sentinel"),
    "multimodal": ("aerial", "spot", "sentinel", "sentinel1_asc", "sentinel1_desc"),
}
#: Batch keys of the multimodal model's inputs besides ``aerial`` (which holds ``dem``'s band too).
_MULTIMODAL_BATCH_INPUTS = MODEL_INPUTS["multimodal"][1:]


class TrainedModel(nn.Module):
    """A FLAIR model for inference: raw inputs in, class probabilities out.

    Its state dict is the network's (``net.*``), as in a training checkpoint; everything else is
    rebuilt from the arguments, which are the checkpoint's hyper-parameters of the same names.

    Args:
        model: ``"unet"``, ``"utae"``, ``"utt"`` or ``"multimodal"`` (FLAIR-HUB's fusion; its
            ``model_kwargs.modalities`` select ``aerial``, ``dem``, ``spot``, ``sentinel``,
            ``sentinel1_asc``, ``sentinel1_desc``, and ``bands`` must hold exactly the bands of
            the selected image modalities: optical bands for ``aerial``, ``elevation`` for
            ``dem``). SPOT (``spot``, R, G, B, NIR digital numbers) is standardized with IGN's
            FLAIR-HUB statistics (:data:`~flairlc.inference.scaling.SPOT_MEAN`, ``SPOT_STD``),
            Sentinel-1 (VV, VH in dB) by a fixed affine map
            (:data:`~flairlc.inference.scaling.SENTINEL1_DB_MEAN`, ``SENTINEL1_DB_STD``).
        model_kwargs: extra arguments of :func:`flairlc.models.create_model` (encoder, widths, …).
        nomenclature: ``"baseline"`` (13 classes), ``"raw"`` (19), ``"cosia"``, or a JSON file /
            dict of classes (:func:`flairlc.nomenclature.get`).
        bands: the aerial bands the network reads, in its input order (default all 5, FLAIR's
            order). Batches hold the first bands of FLAIR's order (FLAIR #2: all 5; FLAIR-HUB:
            R, G, B, NIR, and elevation from its DEM); the model picks its own.
        active_classes: indices of the classes the model predicts (default: all); the others get
            probability 0 and never win an argmax.
        use_metadata: feed the encoded aerial metadata to the U-Net encoder.
        geo_enc_size: size of the centroid encoding in the metadata vector.
        aerial_scaling: ``"unit"`` (uint8 / 255) or ``"standardize"``.
        aerial_mean, aerial_std: per-band statistics of ``"standardize"`` (digital numbers), in the
            order of ``bands``; default IGN's FLAIR statistics of those bands.
        sentinel_scaling: the Sentinel-2 scaling mode; None: the preprocessing profile's.
        sat_patch_size: Sentinel-2 window side (10 m pixels) the model expects.
        reference_date: origin of the date offsets, ``YYYY-MM-DD``.
        filter_clouds, cloud_max_cover, cloud_prob_threshold, average_monthly, profile: the
            Sentinel-2 preprocessing (:class:`~flairlc.data.sentinel.SeriesPreprocessing`).
        aerial_resolution_m: aerial pixel size (metres).
        sentinel_resolution_m: Sentinel-2 pixel size (metres).

    Raises:
        ValueError: an unknown model, metadata without an aerial branch (or with the multimodal
            model, which reads none), bands or statistics that do not fit (the multimodal model's
            modalities included), or active classes out of range.
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
        sat_patch_size: int = 40,
        reference_date: str = "2021-05-15",
        filter_clouds: bool = False,
        cloud_max_cover: float = 0.5,
        cloud_prob_threshold: int = 60,
        average_monthly: bool = False,
        aerial_resolution_m: float = 0.2,
        sentinel_resolution_m: float = 10.0,
        profile: str = DEFAULT_PROFILE,
    ) -> None:
        super().__init__()
        if model not in MODEL_INPUTS:
            raise ValueError(f"unknown model {model!r}: expected one of {sorted(MODEL_INPUTS)}")
        if model == "utae" and use_metadata:
            raise ValueError("use_metadata needs an aerial branch: use model 'unet' or 'utt'")
        if model == "multimodal" and use_metadata:
            raise ValueError("use_metadata: the 'multimodal' model reads no metadata; use model 'unet' or 'utt' for it")
        #: ``"unet"``, ``"utae"``, ``"utt"`` or ``"multimodal"``.
        self.architecture = model
        self.nomenclature = nomenclature_module.get(nomenclature)
        self.num_classes = self.nomenclature.num_classes
        self.class_names = self.nomenclature.names
        self.bands = normalize_bands(bands if bands is not None else AERIAL_BANDS)
        self.aerial_mean, self.aerial_std = _band_statistics(self.bands, aerial_mean, aerial_std)
        self.active_classes = _active_classes(active_classes, self.num_classes)
        self.use_metadata = bool(use_metadata)
        self.geo_enc_size = int(geo_enc_size)
        #: Sentinel-2 window side, in 10 m pixels.
        self.sat_patch_size = int(sat_patch_size)
        #: Origin of the date offsets.
        self.reference_date = dt.date.fromisoformat(str(reference_date))
        #: The preprocessing the model was trained with (Sentinel-2 series and metadata encoding);
        #: mapping and ``evaluate --checkpoint`` apply it, its profile included, to their inputs.
        self.series_preprocessing = SeriesPreprocessing(
            filter_clouds, cloud_max_cover, cloud_prob_threshold, average_monthly, self.reference_date, profile
        )
        self.aerial_resolution_m = float(aerial_resolution_m)
        self.sentinel_resolution_m = float(sentinel_resolution_m)
        inactive = tuple(k for k in range(self.num_classes) if k not in self.active_classes)
        #: Classes left out of mIoU (and weighted 0 by default in training): unlabeled and inactive.
        self.ignored_classes = tuple(sorted(set(self.nomenclature.unlabeled) | set(inactive)))
        network_arguments = self._network_arguments(model_kwargs)
        #: Inputs the network reads (besides the mask), batch keys: ``"aerial"`` and/or
        #: ``"sentinel"``; for the multimodal model also ``"spot"``, ``"sentinel1_asc"``,
        #: ``"sentinel1_desc"`` when selected.
        self.model_inputs: tuple[str, ...] = MODEL_INPUTS[model]
        if model == "multimodal":
            selected = normalize_modalities(network_arguments.get("modalities", MODALITIES))
            self.model_inputs = ("aerial",) + tuple(m for m in _MULTIMODAL_BATCH_INPUTS if m in selected)
        self.net = create_model(model, **network_arguments)
        self.aerial_channels = len(self.bands) if model != "utae" else len(AERIAL_BANDS)
        self.register_buffer("band_index", torch.tensor(band_indices(self.bands)), persistent=False)
        self.aerial_scaler = InputScaler(aerial_scaling, self.aerial_channels, UINT8_MAX, self.aerial_mean, self.aerial_std)
        self.sentinel_scaler = InputScaler(sentinel_scaling or self.series_preprocessing.sentinel_scaling, 10, UINT16_MAX)
        self.spot_scaler = InputScaler("standardize", SPOT_CHANNELS, mean=SPOT_MEAN, std=SPOT_STD)
        self.sentinel1_scaler = InputScaler("standardize", SENTINEL1_CHANNELS, mean=SENTINEL1_DB_MEAN, std=SENTINEL1_DB_STD)
        # Added to the logits before an argmax or softmax: inactive classes never win.
        logit_offset = torch.zeros(self.num_classes)
        logit_offset[list(inactive)] = float("-inf")
        self.register_buffer("logit_offset", logit_offset.view(1, -1, 1, 1), persistent=False)
        #: Where the weights came from (imported file, fine-tuned checkpoint), as saved with them.
        self.provenance: dict[str, Any] = {}
        self._channels_last = False

    def _network_arguments(self, model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """The arguments of :func:`create_model`: ``model_kwargs`` with the classes, bands and
        metadata size these settings imply."""
        kwargs = dict(model_kwargs or {})
        kwargs["num_classes"] = self.num_classes
        if self.architecture == "multimodal":
            image_channels = _multimodal_image_channels(self.bands, kwargs.get("modalities", MODALITIES))
            given = kwargs.get("image_channels")
            if given is not None and {k: list(v) for k, v in given.items()} != image_channels:
                raise ValueError(f"model_kwargs image_channels={given} but the bands {list(self.bands)} give {image_channels}")
            kwargs["image_channels"] = image_channels
            for key, channels in (("spot_channels", SPOT_CHANNELS), ("sentinel1_channels", SENTINEL1_CHANNELS)):
                if int(kwargs.get(key, channels)) != channels:
                    raise ValueError(f"model_kwargs {key}={kwargs[key]}: FLAIR-HUB's files hold {channels} bands, which the model reads")
            kwargs.setdefault("aerial_resolution_m", self.aerial_resolution_m)
            kwargs.setdefault("sentinel_resolution_m", self.sentinel_resolution_m)
            return kwargs
        if self.architecture != "utae":
            kwargs["use_metadata"] = self.use_metadata
            kwargs["metadata_size"] = metadata_size(self.geo_enc_size)
            channels_key = "in_channels" if self.architecture == "unet" else "aerial_channels"
            if int(kwargs.get(channels_key, len(self.bands))) != len(self.bands):
                raise ValueError(f"model_kwargs {channels_key}={kwargs[channels_key]} but the model reads {len(self.bands)} bands {list(self.bands)}")
            kwargs[channels_key] = len(self.bands)
        if self.architecture == "utt":
            kwargs.setdefault("aerial_resolution_m", self.aerial_resolution_m)
            kwargs.setdefault("sentinel_resolution_m", self.sentinel_resolution_m)
        return kwargs

    @property
    def uses_sentinel(self) -> bool:
        """Whether the model reads a Sentinel-2 series."""
        return "sentinel" in self.model_inputs

    @property
    def uses_aerial(self) -> bool:
        """Whether the model reads the aerial image."""
        return "aerial" in self.model_inputs

    @property
    def required_modalities(self) -> tuple[str, ...]:
        """Modalities a dataset must load for this model (besides the mask)."""
        return self.model_inputs + (("metadata",) if self.use_metadata else ())

    def forward_batch(self, batch: dict[str, Any], size: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits at aerial resolution for a batch of raw inputs.

        Args:
            batch: ``aerial`` uint8 ``(B, 5, H, W)``; ``sentinel`` ``(B, T, 10, S, S)`` reflectance
                ×10 000, ``dates_days`` ``(B, T)``, ``sentinel_pad_mask`` ``(B, T)``; ``metadata``
                ``(B, M)``; for the multimodal model, ``spot`` ``(B, 4, H', W')`` digital numbers,
                ``sentinel1_asc``/``sentinel1_desc`` ``(B, T', 2, S, S)`` dB with their
                ``*_dates_days`` and ``*_pad_mask`` (:func:`flairlc.data.hub.collate_hub`'s keys);
                only those the model reads are needed (U-T&T runs without Sentinel-2; a
                multimodal model ignores the inputs of modalities it does not select).
            size: output ``(H, W)`` for U-TAE alone (default: the mask's or aerial's size).

        Returns:
            logits ``(B, K, H, W)`` and the auxiliary U-TAE logits (U-T&T or the multimodal model
            with Sentinel-2) or None.
        """
        metadata = batch.get("metadata") if self.use_metadata else None
        if self.architecture == "unet":
            return self.net(self._aerial_input(batch["aerial"]), metadata), None
        sentinel = batch.get("sentinel") if self.uses_sentinel else None
        if self.architecture == "multimodal" and self.uses_sentinel and sentinel is None:
            raise ValueError("this multimodal model reads a Sentinel-2 series: 'sentinel' is missing from the batch")
        sentinel_args = {}
        if sentinel is not None:
            sentinel_args = dict(
                sentinel=self.sentinel_scaler(sentinel),
                dates_days=batch["dates_days"],
                pad_mask=batch.get("sentinel_pad_mask"),
            )
        if self.architecture == "utt":
            output: FusionOutput = self.net(self._aerial_input(batch["aerial"]), metadata=metadata, **sentinel_args)
            return output.logits, output.aux_logits
        if self.architecture == "multimodal":
            output = self.net(self._aerial_input(batch["aerial"]), **sentinel_args, **self._spot_sentinel1_inputs(batch))
            return output.logits, output.aux_logits
        if sentinel is None:
            raise ValueError("the U-TAE model needs a Sentinel-2 series ('sentinel' in the batch)")
        logits = self.net(**sentinel_args)
        if size is None:
            reference = batch.get("mask", batch.get("aerial"))
            size = tuple(reference.shape[-2:]) if reference is not None else (512, 512)
        footprint = sentinel_footprint_px(size[0], self.aerial_resolution_m, self.sentinel_resolution_m)
        crop = center_crop(logits, (footprint, footprint))
        return F.interpolate(crop, size=size, mode="nearest"), None

    def _spot_sentinel1_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor | None]:
        """The multimodal network's SPOT and Sentinel-1 arguments, scaled, from a raw batch.

        Raises:
            ValueError: a modality the model reads missing from the batch.
        """
        inputs: dict[str, torch.Tensor | None] = {}
        for key in self.model_inputs:
            if key in ("aerial", "sentinel"):
                continue
            missing = [k for k in (key, f"{key}_dates_days" if key != "spot" else key) if k not in batch]
            if missing:
                raise ValueError(f"this multimodal model reads {key!r}: {missing[0]!r} is missing from the batch "
                                 "(load the modality in the data module)")
            if key == "spot":
                inputs[key] = self.spot_scaler(batch[key])
                continue
            inputs[key] = self.sentinel1_scaler(batch[key])
            inputs[f"{key}_dates_days"] = batch[f"{key}_dates_days"]
            inputs[f"{key}_pad_mask"] = batch.get(f"{key}_pad_mask")
        return inputs

    def use_channels_last(self, enabled: bool = True) -> TrainedModel:
        """Run the aerial network in channels-last memory format (faster convolutions on CPUs
        and GPUs; the same function up to float rounding); returns ``self``."""
        self._channels_last = enabled
        self.net.to(memory_format=torch.channels_last if enabled else torch.contiguous_format)
        return self

    def _aerial_input(self, aerial: torch.Tensor) -> torch.Tensor:
        """Scaled aerial bands of a raw batch, in the network's memory format."""
        x = self.aerial_scaler(self.select_bands(aerial))
        return x.contiguous(memory_format=torch.channels_last) if self._channels_last else x

    def select_bands(self, aerial: torch.Tensor) -> torch.Tensor:
        """The model's bands, in its order, from an aerial batch ``(B, C, H, W)`` holding the first
        ``C`` bands of FLAIR's order (:func:`~flairlc.data.bands.delivered_bands`): FLAIR #2's 5,
        FLAIR-HUB's R, G, B, NIR (and elevation from its DEM)."""
        held = delivered_bands(aerial.shape[-3])
        missing = [b for b in self.bands if b not in held]
        if missing:
            raise ValueError(
                f"the model reads bands {list(self.bands)} but the aerial batch holds {list(held)}: "
                f"{', '.join(missing)} missing (FLAIR-HUB: load the 'dem' modality for elevation)"
            )
        if self.bands == held:
            return aerial
        return aerial.index_select(-3, self.band_index)

    def predictable(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` with inactive classes at -inf (they never win an argmax)."""
        return logits if len(self.active_classes) == self.num_classes else logits.float() + self.logit_offset

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities ``(B, K, H, W)`` (softmax; 0 for inactive classes) of raw inputs."""
        logits, _ = self.forward_batch(batch)
        return self.predictable(logits).float().softmax(dim=1)

    def predict_classes(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class indices int64 ``(B, H, W)``: the argmax of :meth:`predict_proba` (over the active
        classes), as ``predict`` writes and as a map's windows are decided; the argmax of the
        logits themselves could differ where two probabilities round to the same float32."""
        return self.predict_proba(batch).argmax(dim=1)


def load_trained_model(path: str | Path, map_location: str | torch.device = "cpu") -> TrainedModel:
    """The :class:`TrainedModel` of a flairlc checkpoint, in eval mode on ``map_location``.

    The file is read with ``torch.load(weights_only=True)`` (no Lightning); the model is rebuilt
    from the hyper-parameters stored in it and its weights loaded strictly.

    Raises:
        CheckpointError: missing, unsafe or mismatching checkpoint, with the reason.
    """
    return load_model(TrainedModel, path, map_location)


def _band_statistics(bands: tuple[str, ...], mean: Sequence[float] | None, std: Sequence[float] | None) -> tuple[list[float], list[float]]:
    """Means and stds in the order of ``bands``: given ones (one per band), else IGN's."""
    default_mean, default_std = band_statistics(bands)
    mean = list(default_mean if mean is None else mean)
    std = list(default_std if std is None else std)
    if len(mean) != len(bands) or len(std) != len(bands):
        raise ValueError(f"aerial_mean and aerial_std need one value per band {list(bands)}: got {mean} and {std}")
    return [float(m) for m in mean], [float(s) for s in std]


def _active_classes(active: Sequence[int] | None, num_classes: int) -> tuple[int, ...]:
    """Sorted active class indices (all when None), checked against ``num_classes``."""
    if active is None:
        return tuple(range(num_classes))
    indices = sorted({int(k) for k in active})
    if not indices or indices[0] < 0 or indices[-1] >= num_classes:
        raise ValueError(f"active_classes {list(active)} must be indices in 0..{num_classes - 1}")
    return tuple(indices)


def _multimodal_image_channels(bands: tuple[str, ...], modalities: Sequence[str]) -> dict[str, list[int]]:
    """Positions in ``bands`` of each image modality a multimodal network reads: the optical bands
    (R, G, B, NIR) for ``aerial``, ``elevation`` for ``dem``.

    Raises:
        ValueError: a selected modality without its bands, or bands no selected modality reads.
    """
    selected = normalize_modalities(modalities)
    groups = {
        "aerial": [i for i, b in enumerate(bands) if b != "elevation"],
        "dem": [i for i, b in enumerate(bands) if b == "elevation"],
    }
    meaning = {"aerial": "optical bands (R, G, B, NIR)", "dem": "the elevation band"}
    fix = {"aerial": "add some of R, G, B, NIR to bands", "dem": "add elevation to bands"}
    for modality in IMAGE_MODALITIES:
        if modality in selected and not groups[modality]:
            raise ValueError(
                f"multimodal model: modality {modality!r} reads {meaning[modality]} but bands are {list(bands)}: "
                f"{fix[modality]} or drop {modality!r} from model_kwargs.modalities"
            )
        if modality not in selected and groups[modality]:
            raise ValueError(
                f"multimodal model: bands {list(bands)} hold {meaning[modality]} but model_kwargs.modalities "
                f"{list(selected)} have no {modality!r}: add it, or drop those bands"
            )
    return {m: groups[m] for m in selected if m in IMAGE_MODALITIES}
