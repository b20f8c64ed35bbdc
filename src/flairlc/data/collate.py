"""Batching of FLAIR samples, with time series of different lengths padded in time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

_STRING_KEYS = ("id", "domain")


def collate_flair(samples: Sequence[dict[str, Any]], pad_value: float = 0.0) -> dict[str, Any]:
    """Stack samples of :class:`~flairlc.data.FlairDataset` into a batch.

    Tensors are stacked on a new first axis ``B``. Sentinel-2 series are padded at the end in time
    to the longest series of the batch (``sentinel`` with ``pad_value``, ``dates_days`` with 0), and
    ``sentinel_pad_mask`` bool ``(B, T)`` is added: True where the date is padding. ``id`` and
    ``domain`` become lists of strings and ``index`` an int64 tensor ``(B,)``.
    """
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        if key in _STRING_KEYS:
            batch[key] = list(values)
        elif key == "index":
            batch[key] = torch.as_tensor(values, dtype=torch.int64)
        elif key == "sentinel":
            batch["sentinel"], batch["sentinel_pad_mask"] = pad_series(values, pad_value)
        elif key == "dates_days":
            batch[key], _ = pad_series(values, 0)
        else:
            batch[key] = torch.stack(values)
    return batch


def pad_series(series: Sequence[torch.Tensor], pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad tensors ``(T_i, …)`` at the end of the time axis and stack them.

    Returns:
        ``(B, T_max, …)`` padded tensor and bool ``(B, T_max)`` mask, True on padded steps.
    """
    lengths = torch.as_tensor([s.shape[0] for s in series])
    length = int(lengths.max())
    padded = series[0].new_full((len(series), length, *series[0].shape[1:]), pad_value)
    for i, s in enumerate(series):
        padded[i, : s.shape[0]] = s
    pad_mask = torch.arange(length)[None, :] >= lengths[:, None]
    return padded, pad_mask
