"""The FLAIR #2 networks: tensors in, tensors out (no file I/O, no config parsing, no logging).

- ``"unet"`` (:class:`UNet`): aerial ``(B, 5, H, W)`` [+ metadata ``(B, M)``] → ``(B, K, H, W)``;
- ``"utae"`` (:class:`UTAE`): Sentinel-2 ``(B, T, 10, S, S)``, dates ``(B, T)`` days, pad mask
  ``(B, T)`` → ``(B, K, S, S)`` [+ features ``(B, 64, S, S)``];
- ``"utt"`` (:class:`UTT`): both → :class:`FusionOutput` ``(logits, aux_logits)`` at aerial
  resolution; runs on aerial alone too.

Build them with :func:`create_model`; ``python -m flairlc.models`` prints their sizes.
"""

from flairlc.models.factory import MODELS, create_model
from flairlc.models.fusion import FusionModule, sentinel_footprint_px
from flairlc.models.ltae import LTAE2d
from flairlc.models.metadata import MetadataEncoder
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
    "UNet",
    "UTAEEncoder",
    "count_parameters",
    "create_model",
    "describe_models",
    "sentinel_footprint_px",
]
