"""The aerial-only baseline: a segmentation-models-pytorch network, optionally fed metadata.

FLAIR #2's U-Net is ``smp.Unet`` with a ResNet34 encoder on 5-channel aerial patches (R, G, B, NIR,
elevation) at 0.2 m, 13 output classes. Any smp architecture (``arch``) and encoder
(``encoder_name``) can be selected by name. With ``use_metadata`` the encoded aerial metadata is
added to the deepest encoder feature map (see :mod:`flairlc.models.metadata`).
"""

from __future__ import annotations

from typing import Any

import segmentation_models_pytorch as smp
import torch
from torch import nn

from flairlc.models.metadata import DEFAULT_METADATA_SIZE, MetadataEncoder
from flairlc.models.upernet_v040 import UPerNetV040
from flairlc.nomenclature import NUM_BASELINE_CLASSES

#: Aerial channels of FLAIR patches: R, G, B, NIR, elevation.
AERIAL_CHANNELS = 5
#: ``arch`` of smp 0.4.0's UPerNet, the decoder of FLAIR-HUB's published UPerNet models.
UPERNET_V040 = "upernet_v040"


class UNet(nn.Module):
    """U-Net (or any smp architecture) for aerial patches, with optional metadata input.

    The network is split into :meth:`encode` (encoder, plus metadata) and :meth:`decode` (decoder
    and segmentation head) so that the U-T&T fusion can act on the encoder features in between.

    Args:
        num_classes: number of output classes ``K``.
        in_channels: number of aerial channels ``C``.
        encoder_name: smp encoder name, e.g. ``"resnet34"``.
        encoder_weights: smp encoder weights, ``None`` (random init) or e.g. ``"imagenet"``
            (downloaded by smp on first use).
        arch: smp architecture name for :func:`segmentation_models_pytorch.create_model`, e.g.
            ``"unet"``, ``"fpn"``, ``"deeplabv3plus"``, or ``"upernet_v040"``: smp 0.4.0's UPerNet
            as FLAIR-HUB built it (:mod:`flairlc.models.upernet_v040`).
        use_metadata: add an encoded metadata vector to the deepest encoder features.
        metadata_size: length ``M`` of the metadata vector.
        **arch_kwargs: further arguments of the architecture (e.g. ``decoder_channels``).
    """

    def __init__(
        self,
        num_classes: int = NUM_BASELINE_CLASSES,
        in_channels: int = AERIAL_CHANNELS,
        encoder_name: str = "resnet34",
        encoder_weights: str | None = None,
        arch: str = "unet",
        use_metadata: bool = False,
        metadata_size: int = DEFAULT_METADATA_SIZE,
        **arch_kwargs: Any,
    ) -> None:
        super().__init__()
        if arch == UPERNET_V040:
            self.net: nn.Module = UPerNetV040(encoder_name, encoder_weights, in_channels, num_classes, **arch_kwargs)
        else:
            self.net = smp.create_model(
                arch=arch,
                encoder_name=encoder_name,
                encoder_weights=encoder_weights,
                in_channels=in_channels,
                classes=num_classes,
                **arch_kwargs,
            )
        self.use_metadata = use_metadata
        self.metadata_encoder = (
            MetadataEncoder(metadata_size, self.encoder_channels[-1]) if use_metadata else None
        )

    @property
    def encoder_channels(self) -> list[int]:
        """Channels of each encoder feature map, from the input level to the deepest."""
        return list(self.net.encoder.out_channels)

    def encode(
        self, aerial: torch.Tensor, metadata: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Encoder feature maps, with the metadata term added to the deepest one.

        Args:
            aerial: float ``(B, C, H, W)``; ``H`` and ``W`` divisible by the encoder's output stride
                (32 for ResNets).
            metadata: float ``(B, M)``; required when ``use_metadata``, ignored otherwise.

        Returns:
            the encoder feature maps ``(B, C_l, H_l, W_l)``, highest resolution first (for a ResNet
            encoder: 6 maps, the input itself then strides 2, 4, 8, 16, 32).
        """
        features = list(self.net.encoder(aerial))
        if self.metadata_encoder is not None:
            if metadata is None:
                raise ValueError("this model was built with use_metadata=True: pass `metadata`")
            features[-1] = features[-1] + self.metadata_encoder(metadata)
        return features

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Logits ``(B, K, H, W)`` from encoder feature maps (as returned by :meth:`encode`)."""
        return self.net.segmentation_head(self.net.decoder(features))

    def forward(self, aerial: torch.Tensor, metadata: torch.Tensor | None = None) -> torch.Tensor:
        """Segment aerial patches.

        Args:
            aerial: float ``(B, C, H, W)``, already scaled.
            metadata: float ``(B, M)`` or ``None``.

        Returns:
            logits ``(B, K, H, W)``.
        """
        return self.decode(self.encode(aerial, metadata))
