"""FLAIR-HUB's modalities as data: folder suffix, bands, grid, dtype, time series and dates.

FLAIR-HUB (Garioud et al., "FLAIR-HUB: Large-scale Multimodal Dataset for Land Cover and Crop
Mapping", 2025, arXiv:2506.07080) stores one GeoTIFF per patch and modality, all covering the same
102.4 m × 102.4 m footprint in Lambert-93. A :class:`HubModality` says what one of them holds;
:data:`HUB_MODALITIES` is the table every reader, the generator and ``check`` read.

Values marked ``None`` (a dtype, a nominal size) are not confirmed in IGN's code: readers take what
the file says and ``check`` validates the footprint rather than a hard-coded size.
"""

from __future__ import annotations

from dataclasses import dataclass

from flairlc.data.bands import AERIAL_BANDS

#: Side of a FLAIR-HUB patch footprint, metres (512 px at 0.2 m).
PATCH_FOOTPRINT_M = 102.4
#: Folder of the global metadata files (splits and acquisition dates).
GLOBAL_MTD_DIR = "GLOBAL_ALL_MTD"
#: The official splits file, under :data:`GLOBAL_MTD_DIR`.
SPLIT_GPKG = "GLOBAL_ALL_MTD_SPLIT.gpkg"
#: Split columns of :data:`SPLIT_GPKG` (values ``train``, ``valid``, ``test``).
SPLIT_COLUMNS = ("split_1", "split_2", "split_3", "split_4", "split_5", "split_flairchallenge")
#: Split names as written in the split files.
SPLIT_NAMES = ("train", "valid", "test")
#: Year written in the folder and file names of the 1950s historical modality.
HISTORICAL_YEAR = "195X"


@dataclass(frozen=True)
class HubModality:
    """One FLAIR-HUB modality.

    Attributes:
        name: folder and file suffix, e.g. ``"AERIAL_RGBI"`` in
            ``D006-2020_AERIAL_RGBI/FF-S1-14/D006-2020_AERIAL_RGBI_FF-S1-14_5-5.tif``.
        key: key of the modality in a :class:`~flairlc.data.hub.FlairHubDataset` sample.
        bands: band names of one image (of one date, for a time series), in file order.
        pixel_m: nominal pixel size, metres (None: not confirmed; read from the file).
        patch_px: nominal patch side, pixels (None: not confirmed; read from the file).
        dtype: dtype of the files (None: not confirmed; read from the file).
        time_series: True when the file stacks ``T × len(bands)`` bands date by date.
        dates_file: GeoPackage under :data:`GLOBAL_MTD_DIR` holding the dates of a time series.
        label: True for a label modality (a mask, not an input).
        nomenclature: a label's built-in nomenclature (band 1's values), e.g. ``"cosia"``.
        year: the year in its names when it is not the patch's (``"195X"``), else None.
    """

    name: str
    key: str
    bands: tuple[str, ...]
    pixel_m: float | None
    patch_px: int | None
    dtype: str | None
    time_series: bool = False
    dates_file: str | None = None
    label: bool = False
    year: str | None = None
    nomenclature: str | None = None


#: Every FLAIR-HUB modality flairlc knows, by folder suffix.
HUB_MODALITIES: dict[str, HubModality] = {
    m.name: m
    for m in (
        HubModality("AERIAL_RGBI", "aerial", AERIAL_BANDS[:4], 0.2, 512, "uint8"),
        HubModality("AERIAL-RLT_PAN", "aerial_rlt", ("PAN",), None, None, None, year=HISTORICAL_YEAR),
        HubModality("DEM_ELEV", "dem", ("DSM", "DTM"), 0.2, 512, None),
        HubModality("SPOT_RGBI", "spot", ("R", "G", "B", "NIR"), 1.6, 64, None),
        HubModality(
            "SENTINEL2_TS", "sentinel",
            ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
            10.24, 10, None, time_series=True, dates_file="GLOBAL_SENTINEL2_MTD_DATES.gpkg",
        ),
        # Same dates as SENTINEL2_TS: channel 0 snow, channel 1 cloud, probabilities 0..100.
        HubModality(
            "SENTINEL2_MSK-SC", "sentinel_masks", ("snow", "cloud"), 10.24, 10, "uint8",
            time_series=True, dates_file="GLOBAL_SENTINEL2_MTD_DATES.gpkg",
        ),
        HubModality(
            "SENTINEL1-ASC_TS", "sentinel1_asc", ("VV", "VH"), 10.24, 10, None,
            time_series=True, dates_file="GLOBAL_SENTINEL1-ASC_MTD_DATES.gpkg",
        ),
        HubModality(
            "SENTINEL1-DESC_TS", "sentinel1_desc", ("VV", "VH"), 10.24, 10, None,
            time_series=True, dates_file="GLOBAL_SENTINEL1-DESC_MTD_DATES.gpkg",
        ),
        HubModality("AERIAL_LABEL-COSIA", "mask", ("cosia",), 0.2, 512, "uint8", label=True, nomenclature="cosia"),
        HubModality("ALL_LABEL-LPIS", "lpis", ("lpis",), 0.2, 512, "uint8", label=True, nomenclature="lpis"),
    )
}


def hub_modality(name: str) -> HubModality:
    """The modality of a folder suffix or sample key (``"SENTINEL2_TS"`` or ``"sentinel"``).

    Raises:
        ValueError: naming the known modalities.
    """
    if name in HUB_MODALITIES:
        return HUB_MODALITIES[name]
    for modality in HUB_MODALITIES.values():
        if modality.key == name:
            return modality
    known = ", ".join(HUB_MODALITIES)
    raise ValueError(f"unknown FLAIR-HUB modality {name!r}: expected one of {known} (or their keys)")
