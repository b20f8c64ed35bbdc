"""Parameter counts of the default models (``python -m flairlc.models``)."""

from __future__ import annotations

from torch import nn

from flairlc.models.factory import create_model

#: The default configurations summarized by :func:`describe_models`: (name, kwargs, description).
DEFAULT_CONFIGS: tuple[tuple[str, dict[str, object], str], ...] = (
    ("unet", {}, "U-Net ResNet34, aerial 5 channels, 13 classes"),
    ("unet", {"use_metadata": True}, "U-Net ResNet34 + aerial metadata MLP (M = 45)"),
    ("utae", {}, "U-TAE, Sentinel-2 10 bands, widths [64, 64, 128, 128], L-TAE 16 heads"),
    ("utt", {}, "U-T&T: U-Net ResNet34 + U-TAE encoder + fusion + auxiliary head"),
    ("utt", {"use_metadata": True}, "U-T&T + aerial metadata MLP (M = 45)"),
    ("multimodal", {}, "FLAIR-HUB multimodal: ResNet34 per image modality (aerial RGBI, DEM) + U-TAE encoder, 1x1 fusion per stage"),
)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (elements) of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe_models() -> list[dict[str, object]]:
    """Name, kwargs, description and parameter count of each default configuration.

    Returns:
        one dict per configuration with keys ``name``, ``kwargs``, ``description``, ``parameters``.
    """
    rows = []
    for name, kwargs, description in DEFAULT_CONFIGS:
        model = create_model(name, **kwargs)
        rows.append(
            {
                "name": name,
                "kwargs": dict(kwargs),
                "description": description,
                "parameters": count_parameters(model),
            }
        )
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    """A markdown table of :func:`describe_models` rows."""
    lines = ["| model | options | description | parameters |", "|---|---|---|---:|"]
    for row in rows:
        options = ", ".join(f"{k}={v}" for k, v in row["kwargs"].items()) or "defaults"  # type: ignore[union-attr]
        n = int(row["parameters"])  # type: ignore[arg-type]
        lines.append(
            f"| {row['name']} | {options} | {row['description']} | {n:,} ({n / 1e6:.2f} M) |"
        )
    return "\n".join(lines)
