"""The FLAIR #2 and FLAIR-HUB networks: tensors in, tensors out (no file I/O, no config parsing, no logging).

- ``"unet"`` (:class:`UNet`): aerial ``(B, 5, H, W)`` [+ metadata ``(B, M)``] → ``(B, K, H, W)``;
- ``"utae"`` (:class:`UTAE`): Sentinel-2 ``(B, T, 10, S, S)``, dates ``(B, T)`` days, pad mask
  ``(B, T)`` → ``(B, K, S, S)`` [+ features ``(B, 64, S, S)``];
- ``"utt"`` (:class:`UTT`): both → :class:`FusionOutput` ``(logits, aux_logits)`` at aerial
  resolution; runs on aerial alone too;
- ``"multimodal"`` (:class:`MultimodalNet`, FLAIR-HUB): one smp encoder per image modality (band
  groups of the aerial tensor: ``aerial`` R, G, B, NIR; ``dem`` elevation) and U-TAE's encoder for
  ``sentinel``; at each encoder stage all modalities are resized (bilinear) to the first image
  modality's size, concatenated and mapped back to its channels by a 1×1 convolution; one U-Net
  decoder → :class:`FusionOutput` (aux logits from the Sentinel-2 embedding); optional modality
  dropout in training.

Build them with :func:`create_model`; ``python -m flairlc.models`` prints their sizes.
"""

from flairlc.models.factory import MODELS, create_model
from flairlc.models.fusion import FusionModule, sentinel_footprint_px
from flairlc.models.ltae import LTAE2d
from flairlc.models.metadata import MetadataEncoder
from flairlc.models.multimodal import MultimodalNet
from flairlc.models.summary import count_parameters, describe_models
from flairlc.models.unet import UNet
from flairlc.models.utae import UTAE, UTAEEncoder
from flairlc.models.utt import UTT, FusionOutput

__all__ = [
    "LTAE2d",
    "MODELS",
    "UTAE",
    "UTT",
    "FusionModule",
    "FusionOutput",
    "MetadataEncoder",
    "MultimodalNet",
    "UNet",
    "UTAEEncoder",
    "count_parameters",
    "create_model",
    "describe_models",
    "sentinel_footprint_px",
]
