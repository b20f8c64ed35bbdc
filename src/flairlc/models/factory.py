"""Build a FLAIR model by name: ``create_model("unet" | "utae" | "utt", **kwargs)``."""

from __future__ import annotations

from torch import nn

from flairlc.models.unet import UNet
from flairlc.models.utae import UTAE
from flairlc.models.utt import UTT

#: Model names accepted by :func:`create_model` and the classes they build.
MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "utae": UTAE, "utt": UTT}


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build a model by name.

    Args:
        name: ``"unet"`` (aerial, :class:`~flairlc.models.unet.UNet`), ``"utae"`` (Sentinel-2,
            :class:`~flairlc.models.utae.UTAE`) or ``"utt"`` (fusion,
            :class:`~flairlc.models.utt.UTT`); case-insensitive.
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
