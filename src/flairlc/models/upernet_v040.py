"""The UPerNet of segmentation-models-pytorch 0.4.0, which FLAIR-HUB's published UPerNets use.

smp 0.5 rewrote its UPerNet (other layer widths, feature norms, renamed FPN layers), so the
weights IGN published for FLAIR-HUB's UPerNet models fit no network of the smp that flairlc uses.
This module rebuilds the 0.4.0 decoder, layer for layer and with the same parameter names, on an
encoder of the current smp (timm encoders keep their keys), so that those weights load and give
the published network's outputs. Checked against smp 0.4.0 itself (``docs/published-models.md``).

The network (:class:`UPerNetV040`) is ``encoder → decoder → head``:

- decoder: a pyramid pooling module (PSP: average pools of 1, 2, 3 and 6 cells, 1×1 conv-BN-ReLU
  each, concatenated with the input and fused by a 1×1 conv-BN-ReLU to ``pyramid_channels``) on
  the deepest features, then a top-down FPN (upsample bilinearly to the next skip's size, add its
  1×1 conv-BN-ReLU projection; a skip with 0 channels adds nothing), every level resized to 1/4 of
  the input and concatenated, and a 3×3 conv-BN-ReLU to ``segmentation_channels``;
- head: 1×1 conv to ``K`` classes, then bilinear upsampling ×4 (``align_corners=True``).

FLAIR-HUB builds the decoder from a model with 1 input channel (its encoder is dropped), so the
decoder of its files has one FPN stage more than it uses (a 1-channel skip); ``decoder_in_channels``
reproduces that.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from segmentation_models_pytorch.encoders import get_encoder
from torch import nn

#: Pooling grid sizes of the PSP module.
PSP_SIZES = (1, 2, 3, 6)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, padding: int = 0) -> nn.Sequential:
    """``Conv2d`` (no bias) → ``BatchNorm2d`` → ``ReLU``: parameters ``0.weight``, ``1.*``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class _PSP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(size), _conv_bn_relu(in_channels, in_channels // len(PSP_SIZES), 1))
            for size in PSP_SIZES
        )
        self.out_conv = _conv_bn_relu(in_channels * 2, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(block(x), size=size, mode="bilinear", align_corners=False) for block in self.blocks]
        return self.out_conv(torch.cat([x, *pooled], dim=1))


class _FPNStage(nn.Module):
    def __init__(self, skip_channels: int, pyramid_channels: int) -> None:
        super().__init__()
        self.skip_conv = _conv_bn_relu(skip_channels, pyramid_channels, 1) if skip_channels else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return x + self.skip_conv(skip) if skip.shape[1] else x


class UPerNetV040Decoder(nn.Module):
    """smp 0.4.0's UPerNet decoder (see the module docstring).

    Args:
        encoder_channels: channels of the encoder's feature maps, input level first (smp's
            ``encoder.out_channels``, e.g. ``[3, 0, 96, 192, 384, 768]`` for ConvNeXt V2 tiny).
        pyramid_channels: channels of the PSP output and FPN levels.
        segmentation_channels: channels of the fused output.
    """

    def __init__(self, encoder_channels: Sequence[int], pyramid_channels: int = 256, segmentation_channels: int = 64) -> None:
        super().__init__()
        deepest_first = list(encoder_channels)[::-1]
        self.psp = _PSP(deepest_first[0], pyramid_channels)
        self.fpn_stages = nn.ModuleList(_FPNStage(c, pyramid_channels) for c in deepest_first[1:])
        self.fpn_bottleneck = _conv_bn_relu((len(deepest_first) - 1) * pyramid_channels, segmentation_channels, 3, padding=1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fused features ``(B, segmentation_channels, H/4, W/4)`` from encoder features
        (``(B, C_l, H_l, W_l)``, input level first, as smp encoders return them)."""
        quarter = [s // 4 for s in features[0].shape[-2:]]
        deepest_first = list(features[1:])[::-1]
        levels = [self.psp(deepest_first[0])]
        for skip, stage in zip(deepest_first[1:], self.fpn_stages):
            levels.append(stage(levels[-1], skip))
        resized = [F.interpolate(level, size=quarter, mode="bilinear", align_corners=False) for level in levels]
        return self.fpn_bottleneck(torch.cat(resized, dim=1))


class UPerNetV040(nn.Module):
    """An smp encoder with smp 0.4.0's UPerNet decoder and head (see the module docstring).

    Args:
        encoder_name: smp encoder name, e.g. ``"tu-convnextv2_tiny"``.
        encoder_weights: smp encoder weights (None: random).
        in_channels: input channels ``C``.
        classes: output classes ``K``.
        decoder_in_channels: the input channels the decoder's layout was built for (FLAIR-HUB: 1;
            None: ``in_channels``).
        pyramid_channels, segmentation_channels: decoder widths (smp 0.4.0's defaults).
        **encoder_kwargs: passed to the encoder (e.g. ``img_size`` for Swin).
    """

    def __init__(self, encoder_name: str, encoder_weights: str | None = None, in_channels: int = 3, classes: int = 19,
                 decoder_in_channels: int | None = 1, pyramid_channels: int = 256, segmentation_channels: int = 64,
                 **encoder_kwargs: object) -> None:
        super().__init__()
        self.encoder = get_encoder(encoder_name, in_channels=in_channels, depth=5, weights=encoder_weights, **encoder_kwargs)
        channels = list(self.encoder.out_channels)
        if decoder_in_channels is not None:
            channels[0] = decoder_in_channels
        self.decoder = UPerNetV040Decoder(channels, pyramid_channels, segmentation_channels)
        self.segmentation_head = nn.Sequential(
            nn.Conv2d(segmentation_channels, classes, kernel_size=1),
            nn.UpsamplingBilinear2d(scale_factor=4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` of ``x`` ``(B, C, H, W)``, ``H`` and ``W`` divisible by 32."""
        return self.segmentation_head(self.decoder(self.encoder(x)))
