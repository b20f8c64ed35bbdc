"""FLAIR-HUB: modalities as data, discovery of a root, splits, dates, dataset and check.

Imports neither Lightning nor torchmetrics.
"""

from flairlc.data.hub.dataset import FlairHubDataset, collate_hub
from flairlc.data.hub.layout import (
    HUB_REFERENCE_DAY,
    HubPatch,
    days_to_reference,
    discover_hub,
    parse_patch_id,
    patches_from_csv,
    read_dates_gpkg,
    read_split_csv,
    read_split_gpkg,
    select_split,
    split_gpkg_path,
)
from flairlc.data.hub.modalities import HUB_MODALITIES, HubModality, hub_modality

__all__ = [
    "HUB_MODALITIES",
    "HUB_REFERENCE_DAY",
    "FlairHubDataset",
    "HubModality",
    "HubPatch",
    "collate_hub",
    "days_to_reference",
    "discover_hub",
    "hub_modality",
    "parse_patch_id",
    "patches_from_csv",
    "read_dates_gpkg",
    "read_split_csv",
    "read_split_gpkg",
    "select_split",
    "split_gpkg_path",
]
