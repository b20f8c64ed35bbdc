"""The FLAIR land-cover nomenclature: the single source of class values, names and colours.

The raw masks hold values 1..19 (:data:`RAW_CLASSES`). The paper's baseline groups them into 13
classes: raw values 1..12 keep their meaning and 13..19 fold into 'other'. Models work with
zero-based indices: baseline class ``k`` (1..13) is index ``k - 1``, so 'other' is index 12
(:data:`OTHER_INDEX`). Every map, plot and style file takes its colours from here.

Colours are those of the official FLAIR colour table (hex RGB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LandCoverClass:
    """One class of a nomenclature.

    Attributes:
        index: zero-based index used by models and maps.
        value: value in the FLAIR raw masks (1..19) or baseline grouping (1..13).
        name: human-readable class name.
        color: display colour, ``#RRGGBB``.
    """

    index: int
    value: int
    name: str
    color: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        """Display colour as an ``(r, g, b)`` tuple of 0..255 integers."""
        return tuple(int(self.color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


_RAW = [
    (1, "building", "#db0e9a"),
    (2, "pervious surface", "#938e7b"),
    (3, "impervious surface", "#f80c00"),
    (4, "bare soil", "#a97101"),
    (5, "water", "#1553ae"),
    (6, "coniferous", "#194a26"),
    (7, "deciduous", "#46e483"),
    (8, "brushwood", "#f3a60d"),
    (9, "vineyard", "#660082"),
    (10, "herbaceous vegetation", "#55ff00"),
    (11, "agricultural land", "#fff30d"),
    (12, "plowed land", "#e4df7c"),
    (13, "swimming pool", "#3de6eb"),
    (14, "snow", "#ffffff"),
    (15, "clear cut", "#8ab3a0"),
    (16, "mixed", "#6b714f"),
    (17, "ligneous", "#c5dc42"),
    (18, "greenhouse", "#9999ff"),
    (19, "other", "#000000"),
]

#: The 19 raw FLAIR classes, index = value - 1.
RAW_CLASSES: tuple[LandCoverClass, ...] = tuple(
    LandCoverClass(index=v - 1, value=v, name=n, color=c) for v, n, c in _RAW
)

#: The 13 baseline classes of the paper: raw 1..12, then 'other' (raw 13..19).
BASELINE_CLASSES: tuple[LandCoverClass, ...] = tuple(
    LandCoverClass(index=v - 1, value=v, name=n, color=c) for v, n, c in _RAW[:12]
) + (LandCoverClass(index=12, value=13, name="other", color="#000000"),)

NUM_RAW_CLASSES = 19
NUM_BASELINE_CLASSES = 13
#: Zero-based index of 'other' in the baseline nomenclature (excluded from mIoU).
OTHER_INDEX = 12
#: Value written in maps for pixels with no data (outside the image footprint).
NODATA_VALUE = 255

#: Baseline indices whose union is the artificialized surface (building, pervious, impervious).
ARTIFICIAL_INDICES: tuple[int, ...] = (0, 1, 2)
#: Baseline indices counted as forest (coniferous, deciduous).
FOREST_INDICES: tuple[int, ...] = (5, 6)

# Lookup from raw mask value (0..255) to zero-based baseline index; invalid values map to 255.
_RAW_TO_BASELINE = np.full(256, 255, dtype=np.uint8)
_RAW_TO_BASELINE[1:13] = np.arange(12, dtype=np.uint8)
_RAW_TO_BASELINE[13:20] = OTHER_INDEX
_RAW_TO_RAW_INDEX = np.full(256, 255, dtype=np.uint8)
_RAW_TO_RAW_INDEX[1:20] = np.arange(19, dtype=np.uint8)


def classes(nomenclature: str = "baseline") -> tuple[LandCoverClass, ...]:
    """The classes of a nomenclature, ``"baseline"`` (13) or ``"raw"`` (19), in index order."""
    if nomenclature == "baseline":
        return BASELINE_CLASSES
    if nomenclature == "raw":
        return RAW_CLASSES
    raise ValueError(f"unknown nomenclature {nomenclature!r}: expected 'baseline' or 'raw'")


def class_names(nomenclature: str = "baseline") -> list[str]:
    """Class names in index order."""
    return [c.name for c in classes(nomenclature)]


def class_colors(nomenclature: str = "baseline") -> list[str]:
    """Class colours (``#RRGGBB``) in index order."""
    return [c.color for c in classes(nomenclature)]


def colormap(nomenclature: str = "baseline") -> dict[int, tuple[int, int, int, int]]:
    """A rasterio colour table ``{index: (r, g, b, 255)}`` for maps of zero-based indices."""
    return {c.index: (*c.rgb, 255) for c in classes(nomenclature)}


def raw_to_index(raw: np.ndarray, nomenclature: str = "baseline") -> np.ndarray:
    """Map raw mask values (1..19) to zero-based indices of a nomenclature.

    Args:
        raw: integer array of raw FLAIR values, any shape.
        nomenclature: ``"baseline"`` folds 13..19 into 'other' (index 12); ``"raw"`` keeps 19.

    Returns:
        uint8 array of the same shape; values outside 1..19 become 255 (:data:`NODATA_VALUE`).
    """
    if nomenclature not in ("baseline", "raw"):
        raise ValueError(f"unknown nomenclature {nomenclature!r}: expected 'baseline' or 'raw'")
    table = _RAW_TO_BASELINE if nomenclature == "baseline" else _RAW_TO_RAW_INDEX
    raw = np.asarray(raw)
    if raw.dtype == np.uint8:
        return table[raw]
    # Wider integer types: values outside 0..255 must not wrap around onto valid classes.
    outside = (raw < 0) | (raw > 255)
    indices = table[np.clip(raw, 0, 255).astype(np.uint8)]
    indices[outside] = NODATA_VALUE
    return indices


def num_classes(nomenclature: str = "baseline") -> int:
    """Number of classes of a nomenclature (13 or 19)."""
    return len(classes(nomenclature))
