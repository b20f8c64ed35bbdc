"""The aerial metadata encoder of the FLAIR #2 baselines.

Each patch carries a small vector of encoded metadata (position, altitude, camera, date and time of
acquisition; built by the data layer, ``M = geo_enc_size + 13`` values, 45 by default). A small MLP
maps it to one value per channel of the deepest U-Net encoder level, and that vector is added,
broadcast over space, to the deepest encoder feature map before decoding.
"""

from __future__ import annotations

import torch
from torch import nn

#: Length of the encoded metadata vector with the default ``geo_enc_size`` of 32.
DEFAULT_METADATA_SIZE = 45
#: Hidden widths of the metadata MLP (paper: 64 -> 32 -> channels of the deepest level).
METADATA_HIDDEN_WIDTHS: tuple[int, int] = (64, 32)
#: Dropout probability between the metadata MLP layers.
METADATA_DROPOUT = 0.5


class MetadataEncoder(nn.Module):
    """MLP that turns a metadata vector into an additive term for a feature map.

    Args:
        metadata_size: length ``M`` of the input vector.
        out_channels: channels ``C`` of the feature map it is added to.
        hidden_widths: widths of the hidden layers.
        dropout: dropout probability after each hidden layer.
    """

    def __init__(
        self,
        metadata_size: int = DEFAULT_METADATA_SIZE,
        out_channels: int = 512,
        hidden_widths: tuple[int, ...] = METADATA_HIDDEN_WIDTHS,
        dropout: float = METADATA_DROPOUT,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = metadata_size
        for hidden in hidden_widths:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, out_channels))
        self.mlp = nn.Sequential(*layers)

    def forward(self, metadata: torch.Tensor) -> torch.Tensor:
        """Encode metadata.

        Args:
            metadata: float ``(B, M)``.

        Returns:
            ``(B, C, 1, 1)``, ready to be added (broadcast) to a ``(B, C, h, w)`` feature map.
        """
        return self.mlp(metadata)[:, :, None, None]
