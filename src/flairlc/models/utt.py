"""U-T&T: joint aerial + Sentinel-2 segmentation (FLAIR #2, Garioud et al., 2023).

The U-Net branch (:class:`flairlc.models.unet.UNet`) encodes the aerial patch; the U-TAE branch
(:class:`flairlc.models.utae.UTAEEncoder`) embeds the Sentinel-2 window centred on it; the fusion
module (:class:`flairlc.models.fusion.FusionModule`) adds the embedding to every U-Net encoder
level, and the U-Net decoder produces the logits. An auxiliary head segments from the embedding
alone (cropped to the patch footprint, upsampled to aerial resolution) for the U-TAE loss term.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from flairlc.models.fusion import (
    AERIAL_RESOLUTION_M,
    SENTINEL_RESOLUTION_M,
    FusionModule,
    center_crop,
    sentinel_footprint_px,
)
from flairlc.models.metadata import DEFAULT_METADATA_SIZE
from flairlc.models.unet import AERIAL_CHANNELS, UNet
from flairlc.models.utae import SENTINEL_CHANNELS, UTAEEncoder
from flairlc.nomenclature import NUM_BASELINE_CLASSES


class FusionOutput(NamedTuple):
    """Outputs of :class:`UTT`.

    Attributes:
        logits: fused logits ``(B, K, H, W)`` at aerial resolution.
        aux_logits: U-TAE-branch logits ``(B, K, H, W)``, or ``None`` without Sentinel-2 input.
    """

    logits: torch.Tensor
    aux_logits: torch.Tensor | None


class UTT(nn.Module):
    """U-T&T fusion of an aerial patch and its Sentinel-2 time series.

    Args:
        num_classes: output classes ``K``.
        aerial_channels: aerial channels (R, G, B, NIR, elevation).
        sentinel_channels: Sentinel-2 bands.
        encoder_name, encoder_weights, arch: the U-Net branch (see :class:`UNet`).
        encoder_widths, decoder_widths, str_conv_k, str_conv_s, str_conv_p, agg_mode,
            encoder_norm, n_head, d_model, d_k, padding_mode: the U-TAE branch (see
            :class:`flairlc.models.utae.UTAE`).
        aerial_resolution_m: aerial pixel size, metres.
        sentinel_resolution_m: Sentinel-2 pixel size, metres; with the above it fixes the
            footprint crop (:func:`sentinel_footprint_px`).
        drop_utae_modality: probability, per training step, of skipping the fusion (the U-Net
            then works alone; the auxiliary head is still computed).
        use_metadata: add encoded aerial metadata to the deepest U-Net encoder level.
        metadata_size: length ``M`` of the metadata vector.
    """

    def __init__(
        self,
        num_classes: int = NUM_BASELINE_CLASSES,
        aerial_channels: int = AERIAL_CHANNELS,
        sentinel_channels: int = SENTINEL_CHANNELS,
        encoder_name: str = "resnet34",
        encoder_weights: str | None = None,
        arch: str = "unet",
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
        drop_utae_modality: float = 0.0,
        fusion_zero_init: bool = False,
        use_metadata: bool = False,
        metadata_size: int = DEFAULT_METADATA_SIZE,
    ) -> None:
        super().__init__()
        if not 0.0 <= drop_utae_modality <= 1.0:
            raise ValueError(f"drop_utae_modality={drop_utae_modality} is not a probability")
        self.aerial_resolution_m = aerial_resolution_m
        self.sentinel_resolution_m = sentinel_resolution_m
        self.drop_utae_modality = drop_utae_modality
        self.unet = UNet(
            num_classes, aerial_channels, encoder_name, encoder_weights, arch, use_metadata,
            metadata_size,
        )  # fmt: skip
        self.utae = UTAEEncoder(
            sentinel_channels, encoder_widths, decoder_widths, str_conv_k, str_conv_s,
            str_conv_p, agg_mode, encoder_norm, n_head, d_model, d_k, padding_mode,
        )  # fmt: skip
        self.fusion = FusionModule(
            self.utae.out_channels, self.unet.encoder_channels, zero_init=fusion_zero_init
        )
        self.aux_head = nn.Conv2d(self.utae.out_channels, num_classes, kernel_size=1)

    def footprint_px(self, aerial_hw: tuple[int, int]) -> tuple[int, int]:
        """Sentinel-2 pixels ``(rows, cols)`` covered by an aerial patch of ``aerial_hw`` pixels."""
        return (
            sentinel_footprint_px(
                aerial_hw[0], self.aerial_resolution_m, self.sentinel_resolution_m
            ),
            sentinel_footprint_px(
                aerial_hw[1], self.aerial_resolution_m, self.sentinel_resolution_m
            ),
        )

    def forward(
        self,
        aerial: torch.Tensor,
        sentinel: torch.Tensor | None = None,
        dates_days: torch.Tensor | None = None,
        pad_mask: torch.Tensor | None = None,
        metadata: torch.Tensor | None = None,
    ) -> FusionOutput:
        """Segment aerial patches with (optionally) their Sentinel-2 series.

        Args:
            aerial: float ``(B, C_a, H, W)``, already scaled; ``H, W`` multiples of 32.
            sentinel: float ``(B, T, C_s, S, S)`` centred on the patches, or ``None`` (U-Net alone).
            dates_days: ``(B, T)`` date offsets in days; required with ``sentinel``.
            pad_mask: bool ``(B, T)``, ``True`` for padded dates, or ``None``.
            metadata: float ``(B, M)`` when built with ``use_metadata``.

        Returns:
            :class:`FusionOutput` ``(logits (B, K, H, W), aux_logits (B, K, H, W) | None)``.
        """
        features = self.unet.encode(aerial, metadata)
        if sentinel is None:
            return FusionOutput(self.unet.decode(features), None)
        if dates_days is None:
            raise ValueError("`dates_days` (B, T) is required with `sentinel`")
        embedding = self.utae(sentinel, dates_days, pad_mask)
        footprint = self.footprint_px(tuple(aerial.shape[-2:]))
        skip_fusion = (
            self.training
            and self.drop_utae_modality > 0
            and (torch.rand(()).item() < self.drop_utae_modality)
        )
        if not skip_fusion:
            terms = self.fusion(embedding, footprint, [f.shape[-2:] for f in features])
            features = [f + term for f, term in zip(features, terms)]
        logits = self.unet.decode(features)
        # 1x1 conv then nearest upsampling: equal to upsampling first, at a fraction of the cost
        aux = self.aux_head(center_crop(embedding, footprint))
        aux = F.interpolate(aux, size=tuple(aerial.shape[-2:]), mode="nearest")
        return FusionOutput(logits, aux)
