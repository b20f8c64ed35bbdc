"""Build a FLAIR model by name: ``create_model("unet" | "utae" | "utt" | "multimodal", **kwargs)``."""

from __future__ import annotations

from torch import nn

from flairlc.models.multimodal import MultimodalNet
from flairlc.models.unet import UNet
from flairlc.models.utae import UTAE
from flairlc.models.utt import UTT

#: Model names accepted by :func:`create_model` and the classes they build.
MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "utae": UTAE, "utt": UTT, "multimodal": MultimodalNet}


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a model by name.

    Args:
        name: ``"unet"`` (aerial, :class:`~flairlc.models.unet.UNet`), ``"utae"`` (Sentinel-2,
            :class:`~flairlc.models.utae.UTAE`), ``"utt"`` (fusion,
            :class:`~flairlc.models.utt.UTT`) or ``"multimodal"`` (FLAIR-HUB's one encoder per
            modality, :class:`~flairlc.models.multimodal.MultimodalNet`); case-insensitive.
        **kwargs: constructor arguments of that class.

    Raises:
        ValueError: for an unknown name.
    """
    try:
        cls = MODELS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}: expected one of {', '.join(repr(n) for n in MODELS)}"
        ) from None
    return cls(**kwargs)
