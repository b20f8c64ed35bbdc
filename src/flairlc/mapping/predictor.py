"""The contract between a trained model and the mapper: :class:`Predictor`."""

from __future__ import annotations

import datetime
from typing import Protocol, runtime_checkable

import torch

from flairlc.mapping.errors import MappingInputError


@runtime_checkable
class Predictor(Protocol):
    """A trained model seen by the mapper (implemented by ``flairlc.inference.TrainedModel``).

    Attributes:
        num_classes: number of classes ``K`` of the output probabilities.
        aerial_channels: aerial channels expected (5 = R, G, B, NIR, elevation).
        uses_sentinel: whether the model takes a Sentinel-2 time series.
        sat_patch_size: side ``S`` of the Sentinel-2 window, in 10 m pixels (default 40).
        reference_date: date that ``dates_days`` offsets are counted from.

    A predictor may also have ``series_preprocessing``
    (:class:`flairlc.data.sentinel.SeriesPreprocessing`): the cloud filter and monthly average it
    was trained with, applied by the mapper to each window's series (none when absent);
    ``bands``, the aerial bands it reads (:mod:`flairlc.data.bands`; default all 5), which the
    mapper requires from the raster; ``nomenclature``
    (:class:`flairlc.nomenclature.Nomenclature`), whose names and colours the map carries; and
    ``use_channels_last(enabled)``, called by the mapper to pick the network's memory format;
    ``model_inputs``, the batch keys it reads, of which the mapper feeds :data:`MAPPED_INPUTS`
    only (:func:`check_mapped_inputs`).
    """

    num_classes: int
    aerial_channels: int
    uses_sentinel: bool
    sat_patch_size: int
    reference_date: datetime.date

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Softmax probabilities for a batch.

        Args:
            batch: ``aerial`` uint8 ``(B, 5, H, W)`` raw values in FLAIR's band order, bands the
                predictor does not read set to 0 (it picks and scales its own);
                optionally ``sentinel`` float32 ``(B, T, 10, S, S)`` reflectance x 10 000,
                ``dates_days`` int64 ``(B, T)``, ``sentinel_pad_mask`` bool ``(B, T)``
                (True where the date is padding).

        Returns:
            float probabilities ``(B, K, H, W)`` summing to 1 over ``K``.
        """
        ...


#: The inputs a map is made from: aerial imagery (with its elevation) and Sentinel-2.
MAPPED_INPUTS = ("aerial", "sentinel")


def check_mapped_inputs(predictor: Predictor, name: str = "the model") -> None:
    """Refuse, before any work, a predictor that reads inputs the mapper does not feed (e.g.
    FLAIR-HUB's ``spot``, ``sentinel1_asc``: a map has no SPOT or Sentinel-1 raster).

    Raises:
        MappingInputError: naming those inputs.
    """
    unmapped = [key for key in getattr(predictor, "model_inputs", ()) if key not in MAPPED_INPUTS]
    if unmapped:
        raise MappingInputError(f"{name} reads {', '.join(unmapped)}, which mapping does not take (it feeds aerial "
                                "imagery, elevation and Sentinel-2): map with a model that reads only those")
