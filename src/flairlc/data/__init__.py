"""The FLAIR data layer: discovery, readers, datasets, batching, synthetic data and checks.

No Lightning here: the data module that batches these datasets for the Trainer is
:class:`flairlc.training.FlairDataModule`.
"""

from flairlc.data.collate import collate_flair, pad_series
from flairlc.data.dataset import MODALITIES, FlairDataset
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import PatchRecord, discover_patches
from flairlc.data.metadata import encode_metadata, metadata_size
from flairlc.data.readers import read_aerial, read_mask
from flairlc.data.sentinel import (
    REFERENCE_DATE,
    SuperArea,
    SuperAreaPaths,
    dates_to_days,
    filter_cloudy_dates,
    monthly_average,
    product_date,
)

__all__ = [
    "MODALITIES",
    "REFERENCE_DATE",
    "FlairDataError",
    "FlairDataset",
    "PatchRecord",
    "SuperArea",
    "SuperAreaPaths",
    "collate_flair",
    "dates_to_days",
    "discover_patches",
    "encode_metadata",
    "filter_cloudy_dates",
    "metadata_size",
    "monthly_average",
    "pad_series",
    "product_date",
    "read_aerial",
    "read_mask",
]
