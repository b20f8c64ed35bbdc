"""FLAIR-HUB's multimodal network: one encoder per modality, the modalities fused at every stage.

After IGN's FLAIR-HUB model (Garioud et al., FLAIR-HUB, 2025):

- *image modalities* are band groups of one aerial tensor ``(B, C, H, W)``: ``"aerial"`` (the
  optical bands R, G, B, NIR the model reads) and ``"dem"`` (elevation, DSM − DTM); each has its
  own smp encoder (same ``encoder_name`` and ``encoder_depth`` for all), giving ``depth + 1``
  stages, the input itself then strides 2, 4, …, ``2 ** depth``;
- ``"spot"`` is an image of its own, SPOT-6/7's R, G, B, NIR ``(B, 4, H', W')`` over the patch's
  footprint on its own grid (64 px of 1.6 m in FLAIR-HUB), with its own smp encoder (same
  ``encoder_name`` and depth): its stages are resized to the first image modality's in the fusion;
- the ``"sentinel"`` modality is a Sentinel-2 series embedded by U-TAE's encoder
  (:class:`~flairlc.models.utae.UTAEEncoder`) into ``(B, F, S, S)``, centre-cropped to the patch's
  footprint (:func:`~flairlc.models.fusion.sentinel_footprint_px`) as U-T&T does;
  ``"sentinel1_asc"`` and ``"sentinel1_desc"`` (Sentinel-1 VV, VH of each orbit, on the
  Sentinel-2 grid) each have a U-TAE encoder of their own, with the same settings;
- *fusion*, at each stage ``l >= 1``: the features of every modality are resized (bilinear) to the
  size of the first image modality's stage (bilinear for SPOT's stages as for the series, as
  IGN's FLAIR-HUB does), concatenated along channels, and a 1×1 convolution
  maps them back to that encoder's ``C_l`` channels. Stage 0 (the input, which smp's U-Net decoder
  does not read) is the first image modality's. With one modality there is no fusion: the network
  is an smp U-Net (same modules, same function);
- one smp U-Net decoder and segmentation head on the fused stages give the logits; a 1×1 head on
  the cropped Sentinel-2 embedding gives auxiliary logits for their own loss term
  (:class:`~flairlc.models.utt.FusionOutput`, as U-T&T);
- *modality dropout* (training only): each modality of each sample is dropped with probability
  ``modality_dropout``, and when every modality of a sample is drawn, one of them (uniformly) is
  kept. Dropping zeroes that modality's features at every stage before the fusion (its encoder
  still runs, so every parameter takes part in every step, as DDP requires); the auxiliary head
  still sees the embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.base import SegmentationHead
from segmentation_models_pytorch.base.initialization import initialize_decoder, initialize_head
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

from flairlc.models.fusion import (
    AERIAL_RESOLUTION_M,
    SENTINEL_RESOLUTION_M,
    center_crop,
    sentinel_footprint_px,
)
from flairlc.models.utae import SENTINEL_CHANNELS, UTAEEncoder
from flairlc.models.utt import FusionOutput
from flairlc.nomenclature import NUM_BASELINE_CLASSES

#: Modalities read from band groups of the aerial tensor, with their default channel counts.
IMAGE_MODALITIES: dict[str, int] = {"aerial": 4, "dem": 1}
#: SPOT's bands (R, G, B, NIR): an image on its own grid, its own input tensor.
SPOT_CHANNELS = 4
#: Sentinel-1's bands (VV, VH).
SENTINEL1_CHANNELS = 2
#: Time-series modalities: Sentinel-2, then Sentinel-1's two orbits.
SERIES_MODALITIES: tuple[str, ...] = ("sentinel", "sentinel1_asc", "sentinel1_desc")
#: Every modality, in the network's order (the first image modality sets the stages' sizes).
MODALITIES: tuple[str, ...] = (*IMAGE_MODALITIES, "spot", *SERIES_MODALITIES)
#: smp U-Net's decoder widths, deepest first; the first ``encoder_depth`` are used by default.
DEFAULT_DECODER_CHANNELS = (256, 128, 64, 32, 16)


def normalize_modalities(modalities: Sequence[str] | str) -> tuple[str, ...]:
    """The selected modalities in the network's order (``aerial``, ``dem``, ``spot``,
    ``sentinel``, ``sentinel1_asc``, ``sentinel1_desc``).

    Raises:
        ValueError: an unknown or repeated modality, none, or no image modality.
    """
    names = [modalities] if isinstance(modalities, str) else [str(m) for m in modalities]
    for name in names:
        if name not in MODALITIES:
            raise ValueError(f"unknown modality {name!r}: expected some of {list(MODALITIES)}")
        if names.count(name) > 1:
            raise ValueError(f"modality {name!r} is given twice in {names}")
    if not any(name in IMAGE_MODALITIES for name in names):
        raise ValueError(
            f"modalities {names} hold no image modality: the multimodal network needs "
            f"'aerial' or 'dem', whose grid sets the output's (for Sentinel-2 alone use the 'utae' model)"
        )
    return tuple(m for m in MODALITIES if m in names)


class MultimodalNet(nn.Module):
    """FLAIR-HUB multimodal segmentation: one encoder per modality, stage-wise 1×1-conv fusion.

    Args:
        num_classes: output classes ``K``.
        modalities: the modalities read, some of :data:`MODALITIES` (``"aerial"``, ``"dem"``,
            ``"spot"``, ``"sentinel"``, ``"sentinel1_asc"``, ``"sentinel1_desc"``) with ``"aerial"`` or
            ``"dem"``; taken in that order whatever the order given.
        image_channels: for each selected image modality, the indices of its channels in the
            aerial tensor; default: consecutive, ``aerial`` 4 channels then ``dem`` 1 (FLAIR's
            R, G, B, NIR, elevation order restricted to the selected modalities).
        sentinel_channels: Sentinel-2 bands.
        spot_channels: SPOT bands.
        sentinel1_channels: Sentinel-1 bands (of each orbit).
        encoder_name: smp encoder of every image modality, e.g. ``"resnet34"``.
        encoder_depth: stages of those encoders (3 to 5); ``H, W`` must be multiples of
            ``2 ** encoder_depth``.
        encoder_weights: smp encoder weights, ``None`` (random init) or e.g. ``"imagenet"``
            (downloaded by smp on first use; adapted by smp to each modality's channel count).
        decoder_channels: widths of the U-Net decoder blocks, one per stage; default smp's
            ``(256, 128, 64, 32, 16)`` cut to ``encoder_depth``.
        encoder_widths, decoder_widths, str_conv_k, str_conv_s, str_conv_p, agg_mode,
            encoder_norm, n_head, d_model, d_k, padding_mode: the U-TAE encoders (see
            :class:`flairlc.models.utae.UTAE`) of every series; unused without one.
        aerial_resolution_m: aerial pixel size, metres.
        sentinel_resolution_m: Sentinel-2 (and Sentinel-1) pixel size, metres; with the above it
            fixes the footprint crop (:func:`sentinel_footprint_px`).
        modality_dropout: probability of dropping a modality of a sample in training (see the
            module docstring); 0 disables it.

    Raises:
        ValueError: bad modalities, channel indices, depth or dropout probability.
    """

    def __init__(
        self,
        num_classes: int = NUM_BASELINE_CLASSES,
        modalities: Sequence[str] = MODALITIES,
        image_channels: Mapping[str, Sequence[int]] | None = None,
        sentinel_channels: int = SENTINEL_CHANNELS,
        spot_channels: int = SPOT_CHANNELS,
        sentinel1_channels: int = SENTINEL1_CHANNELS,
        encoder_name: str = "resnet34",
        encoder_depth: int = 5,
        encoder_weights: str | None = None,
        decoder_channels: Sequence[int] | None = None,
        encoder_widths: Sequence[int] = (64, 64, 128, 128),
        decoder_widths: Sequence[int] = (64, 64, 128, 128),
        str_conv_k: int = 4,
        str_conv_s: int = 2,
        str_conv_p: int = 1,
        agg_mode: str = "att_group",
        encoder_norm: str = "group",
        n_head: int = 16,
        d_model: int = 256,
        d_k: int = 4,
        padding_mode: str = "reflect",
        aerial_resolution_m: float = AERIAL_RESOLUTION_M,
        sentinel_resolution_m: float = SENTINEL_RESOLUTION_M,
        modality_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= modality_dropout <= 1.0:
            raise ValueError(f"modality_dropout={modality_dropout} is not a probability")
        if not 3 <= encoder_depth <= 5:
            raise ValueError(f"encoder_depth={encoder_depth}: expected 3 to 5")
        decoder_channels = tuple(decoder_channels or DEFAULT_DECODER_CHANNELS[:encoder_depth])
        if len(decoder_channels) != encoder_depth:
            raise ValueError(f"decoder_channels {list(decoder_channels)} needs {encoder_depth} widths (encoder_depth)")
        #: The modalities read, in the network's order.
        self.modalities = normalize_modalities(modalities)
        self.image_modalities = tuple(m for m in self.modalities if m in IMAGE_MODALITIES)
        #: Channel indices of each image modality in the aerial tensor.
        self.image_channels = _image_channels(self.image_modalities, image_channels)
        self.aerial_resolution_m = aerial_resolution_m
        self.sentinel_resolution_m = sentinel_resolution_m
        self.modality_dropout = modality_dropout
        in_channels = {m: len(c) for m, c in self.image_channels.items()} | {"spot": spot_channels}
        #: One smp encoder per image modality (``aerial``, ``dem``, ``spot``).
        self.encoders = nn.ModuleDict(
            (m, get_encoder(encoder_name, in_channels=in_channels[m], depth=encoder_depth, weights=encoder_weights))
            for m in self.modalities if m not in SERIES_MODALITIES
        )  # fmt: skip
        stage_channels = list(self.encoders[self.image_modalities[0]].out_channels)

        def series_encoder(channels: int) -> UTAEEncoder:
            return UTAEEncoder(
                channels, encoder_widths, decoder_widths, str_conv_k, str_conv_s,
                str_conv_p, agg_mode, encoder_norm, n_head, d_model, d_k, padding_mode,
            )  # fmt: skip

        self.utae = series_encoder(sentinel_channels) if "sentinel" in self.modalities else None
        #: One U-TAE encoder per Sentinel-1 orbit selected (``sentinel1_asc``, ``sentinel1_desc``).
        self.sentinel1_encoders = nn.ModuleDict(
            (m, series_encoder(sentinel1_channels)) for m in self.modalities if m.startswith("sentinel1_")
        )
        if len(self.modalities) > 1:
            # one 1x1 conv per stage the decoder reads: all modalities' channels -> the first's
            incoming = [
                sum(encoder.out_channels[level] for encoder in self.encoders.values())
                + (self.utae.out_channels if self.utae is not None else 0)
                + sum(encoder.out_channels for encoder in self.sentinel1_encoders.values())
                for level in range(len(stage_channels))
            ]
            self.fusion: nn.ModuleList | None = nn.ModuleList(
                nn.Conv2d(incoming[level], stage_channels[level], kernel_size=1)
                for level in range(1, len(stage_channels))
            )
        else:
            self.fusion = None
        self.decoder = UnetDecoder(
            encoder_channels=stage_channels,
            decoder_channels=decoder_channels,
            n_blocks=encoder_depth,
            use_norm="batchnorm",
            add_center_block=encoder_name.startswith("vgg"),
        )
        self.segmentation_head = SegmentationHead(decoder_channels[-1], num_classes, kernel_size=3)
        initialize_decoder(self.decoder)
        initialize_head(self.segmentation_head)
        self.aux_head = (
            nn.Conv2d(self.utae.out_channels, num_classes, kernel_size=1) if self.utae is not None else None
        )

    def footprint_px(self, aerial_hw: tuple[int, int]) -> tuple[int, int]:
        """Sentinel-2 pixels ``(rows, cols)`` covered by an aerial patch of ``aerial_hw`` pixels."""
        return (
            sentinel_footprint_px(aerial_hw[0], self.aerial_resolution_m, self.sentinel_resolution_m),
            sentinel_footprint_px(aerial_hw[1], self.aerial_resolution_m, self.sentinel_resolution_m),
        )

    def kept_modalities(self, batch_size: int) -> torch.Tensor | None:
        """Which modalities each sample keeps this step: bool ``(B, M)`` over :attr:`modalities`,
        at least one ``True`` per row; ``None`` (all kept) in eval mode, without dropout, or with
        a single modality.

        Drawn from PyTorch's global generator on the CPU, so a seed fixes it on any device.
        """
        m = len(self.modalities)
        if not self.training or self.modality_dropout == 0.0 or m == 1:
            return None
        kept = torch.rand(batch_size, m) >= self.modality_dropout
        none_kept = ~kept.any(dim=1)
        rescued = torch.randint(m, (batch_size,))
        kept[none_kept, rescued[none_kept]] = True
        return kept

    def forward(
        self,
        aerial: torch.Tensor,
        sentinel: torch.Tensor | None = None,
        dates_days: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        spot: torch.Tensor | None = None,
        sentinel1_asc: torch.Tensor | None = None,
        sentinel1_asc_dates_days: torch.Tensor | None = None,
        sentinel1_asc_pad_mask: torch.Tensor | None = None,
        sentinel1_desc: torch.Tensor | None = None,
        sentinel1_desc_dates_days: torch.Tensor | None = None,
        sentinel1_desc_pad_mask: torch.Tensor | None = None,
    ) -> FusionOutput:
        """Segment patches from the selected modalities (the inputs of the others are ignored).

        Args:
            aerial: float ``(B, C, H, W)``, already scaled, holding every image modality's
                channels (:attr:`image_channels`); ``H, W`` multiples of ``2 ** encoder_depth``.
            sentinel: float ``(B, T, C_s, S, S)`` centred on the patches; required with
                ``"sentinel"``.
            dates_days: ``(B, T)`` date offsets in days; required with ``sentinel``.
            pad_mask: bool ``(B, T)``, ``True`` for padded dates, or ``None``.
            spot: float ``(B, C_spot, H', W')``, already scaled, over the patches' footprint;
                ``H', W'`` multiples of ``2 ** encoder_depth``; required with ``"spot"``.
            sentinel1_asc, sentinel1_desc: float ``(B, T', C_s1, S, S)`` on the Sentinel-2 grid,
                already scaled; required with ``"sentinel1_asc"`` / ``"sentinel1_desc"``.
            sentinel1_asc_dates_days, sentinel1_desc_dates_days: ``(B, T')`` their date offsets.
            sentinel1_asc_pad_mask, sentinel1_desc_pad_mask: bool ``(B, T')`` or ``None``.

        Returns:
            :class:`FusionOutput` ``(logits (B, K, H, W), aux_logits (B, K, H, W) | None)``;
            ``aux_logits`` from the Sentinel-2 embedding alone, ``None`` without ``"sentinel"``.

        Raises:
            ValueError: a selected modality's input missing, or too few aerial channels.
        """
        needed = max(max(c) for c in self.image_channels.values()) + 1
        if aerial.shape[-3] < needed:
            raise ValueError(
                f"the aerial input has {aerial.shape[-3]} channels but the model reads channels "
                f"{dict(self.image_channels)}"
            )
        series = {
            "sentinel": (sentinel, dates_days, pad_mask),
            "sentinel1_asc": (sentinel1_asc, sentinel1_asc_dates_days, sentinel1_asc_pad_mask),
            "sentinel1_desc": (sentinel1_desc, sentinel1_desc_dates_days, sentinel1_desc_pad_mask),
        }
        footprint = self.footprint_px((aerial.shape[-2], aerial.shape[-1]))
        per_modality: list[list[torch.Tensor] | torch.Tensor] = []
        embedding = None
        for m in self.modalities:
            if m in self.image_channels:
                per_modality.append(list(self.encoders[m](_take_channels(aerial, self.image_channels[m]))))
            elif m == "spot":
                if spot is None:
                    raise ValueError("this model reads SPOT: pass `spot` (B, C, H', W')")
                per_modality.append(list(self.encoders[m](spot)))
            else:
                values, days, mask = series[m]
                if values is None or days is None:
                    dates_name = "dates_days" if m == "sentinel" else f"{m}_dates_days"
                    raise ValueError(f"this model reads the {m!r} series: pass `{m}` (B, T, C, S, S) and `{dates_name}` (B, T)")
                encoder = self.utae if m == "sentinel" else self.sentinel1_encoders[m]
                series_embedding = encoder(values, days, mask)
                if m == "sentinel":
                    embedding = series_embedding
                per_modality.append(center_crop(series_embedding, footprint))
        features = per_modality[0] if self.fusion is None else self._fuse(per_modality)
        logits = self.segmentation_head(self.decoder(features))
        if self.aux_head is None:
            return FusionOutput(logits, None)
        # 1x1 conv then nearest upsampling: equal to upsampling first, at a fraction of the cost
        aux = self.aux_head(center_crop(embedding, footprint))
        return FusionOutput(logits, F.interpolate(aux, size=tuple(aerial.shape[-2:]), mode="nearest"))

    def _fuse(self, per_modality: list[list[torch.Tensor] | torch.Tensor]) -> list[torch.Tensor]:
        """Fused stages from each modality's features, in :attr:`modalities` order: an image
        modality's stages ``[(B, C_l, h_l, w_l)]``, a series' cropped embedding ``(B, F, s, s)``;
        stage 0 the first modality's, then one 1×1-conv fusion per stage."""
        reference = per_modality[0]
        kept = self.kept_modalities(reference[0].shape[0])
        fused = [reference[0]]
        for level, conv in enumerate(self.fusion, start=1):
            size = tuple(reference[level].shape[-2:])
            parts = []
            for index, maps in enumerate(per_modality):
                x = maps[level] if isinstance(maps, list) else maps
                if tuple(x.shape[-2:]) != size:
                    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
                if kept is not None:
                    x = x * kept[:, index].to(x.device, x.dtype)[:, None, None, None]
                parts.append(x)
            fused.append(conv(torch.cat(parts, dim=1)))
        return fused


def _take_channels(x: torch.Tensor, channels: tuple[int, ...]) -> torch.Tensor:
    """Channels ``channels`` of ``(B, C, H, W)``: a view (memory format kept) when consecutive."""
    if channels == tuple(range(channels[0], channels[-1] + 1)):
        return x[:, channels[0] : channels[-1] + 1]
    return x.index_select(1, torch.tensor(channels, device=x.device))


def _image_channels(
    image_modalities: tuple[str, ...], given: Mapping[str, Sequence[int]] | None
) -> dict[str, tuple[int, ...]]:
    """Channel indices of each image modality: ``given`` (checked) or consecutive defaults."""
    if given is None:
        channels, start = {}, 0
        for m in image_modalities:
            channels[m] = tuple(range(start, start + IMAGE_MODALITIES[m]))
            start += IMAGE_MODALITIES[m]
        return channels
    if set(given) != set(image_modalities):
        raise ValueError(f"image_channels names {sorted(given)} but the image modalities are {list(image_modalities)}")
    channels = {m: tuple(int(i) for i in given[m]) for m in image_modalities}
    flat = [i for c in channels.values() for i in c]
    if not all(channels.values()) or min(flat) < 0 or len(set(flat)) != len(flat):
        raise ValueError(f"image_channels {given}: each modality needs its own non-negative channel indices")
    return channels
