"""Land-cover nomenclatures as data: the single source of class values, names and colours.

A :class:`Nomenclature` is a list of classes, each with a zero-based ``index`` (what models
predict and maps hold), a name, a colour and the mask ``values`` folded into it. Four are built in:

- ``"raw"``: FLAIR's 19 classes; masks hold values 1..19, value ``v`` is index ``v - 1``
  (:data:`RAW_CLASSES`); the order of IGN's FLAIR-1/FLAIR-INC models' 19 outputs.
- ``"baseline"``: the paper's 13 classes: raw values 1..12 keep their meaning and 13..19 fold
  into 'other', index 12 (:data:`OTHER_INDEX`).
- ``"cosia"``: the 19-class CoSIA nomenclature of FLAIR-HUB, 0-based in its masks and outputs
  (value ``v`` is index ``v``), in FLAIR-HUB's order.
- ``"lpis"``: FLAIR-HUB's 23 crop types, band 1 of its ``ALL_LABEL-LPIS`` files, 0-based (value
  ``v`` is index ``v``), 22 being 'background' (no declared crop). Names are those of
  ``ALL_LABEL-LPIS``'s ``value_name`` in IGN's ``configs/train/config_supervision.yaml``
  (github.com/IGNF/FLAIR-HUB), colours those of its README's "Inference classes and colors"
  (where 'mixed crops' and 'background' are both black). IGN's config weights every one of the 23
  classes 1 (no ``default_exceptions``), so its loss and its mIoU count them all, background
  included: none is unlabeled here.

Any other nomenclature is a JSON file or dict (:meth:`Nomenclature.from_dict`), e.g. a user's 3
classes made of raw FLAIR values for fine-tuning. Every map, plot and style file takes its names
and colours from here.

Colours of ``raw``/``baseline`` are those of the official FLAIR colour table (hex RGB).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LandCoverClass:
    """One class of a nomenclature.

    Attributes:
        index: zero-based index used by models and maps.
        value: the class's own value (FLAIR raw 1..19, baseline 1..13, CoSIA 0..18, LPIS 0..22).
        name: human-readable class name.
        color: display colour, ``#RRGGBB``.
        mask_values: the label-mask values that mean this class (default ``(value,)``; baseline
            'other' holds raw 13..19).
    """

    index: int
    value: int
    name: str
    color: str
    mask_values: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.mask_values:
            object.__setattr__(self, "mask_values", (self.value,))

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
) + (LandCoverClass(index=12, value=13, name="other", color="#000000", mask_values=tuple(range(13, 20))),)

# FLAIR-HUB's CoSIA classes in output order (0-based values); colours of the matching FLAIR
# classes where there is one (the same land cover), CoSIA's own for the rest.
_COSIA = [
    ("building", "#db0e9a"),
    ("greenhouse", "#9999ff"),
    ("swimming pool", "#3de6eb"),
    ("impervious surface", "#f80c00"),
    ("pervious surface", "#938e7b"),
    ("bare soil", "#a97101"),
    ("water", "#1553ae"),
    ("snow", "#ffffff"),
    ("herbaceous vegetation", "#55ff00"),
    ("agricultural land", "#fff30d"),
    ("plowed land", "#e4df7c"),
    ("vineyard", "#660082"),
    ("deciduous", "#46e483"),
    ("coniferous", "#194a26"),
    ("brushwood", "#f3a60d"),
    ("clear cut", "#8ab3a0"),
    ("ligneous", "#c5dc42"),
    ("mixed", "#6b714f"),
    ("undefined", "#000000"),
]

#: The 19 CoSIA classes of FLAIR-HUB, 0-based: index = value.
COSIA_CLASSES: tuple[LandCoverClass, ...] = tuple(
    LandCoverClass(index=v, value=v, name=n, color=c) for v, (n, c) in enumerate(_COSIA)
)

# FLAIR-HUB's crop types (band 1 of ALL_LABEL-LPIS) in value order, names and colours as IGN gives
# them (see the module docstring).
_LPIS = [
    ("grasses", "#92d050"),
    ("wheat", "#d7e600"),
    ("barley", "#e0e000"),
    ("maize", "#fff100"),
    ("other cereals", "#ffff00"),
    ("rice", "#e8e8e8"),
    ("flax/hemp/tobacco", "#dceaf7"),
    ("sunflower", "#d29ead"),
    ("rapeseed", "#d29ed0"),
    ("other oilseed crops", "#ffbe99"),
    ("soy", "#ffc000"),
    ("other protein crops", "#ff9000"),
    ("fodder legumes", "#009999"),
    ("beetroots", "#808000"),
    ("potatoes", "#a7a700"),
    ("other arable crops", "#89896d"),
    ("vineyard", "#f2cfee"),
    ("olive groves", "#6f6633"),
    ("fruits orchards", "#ac8141"),
    ("nut orchards", "#996633"),
    ("other permanent crops", "#80c1d7"),
    ("mixed crops", "#000000"),
    ("background", "#000000"),
]

#: The 23 crop-type classes of FLAIR-HUB's LPIS labels, 0-based: index = value.
LPIS_CLASSES: tuple[LandCoverClass, ...] = tuple(
    LandCoverClass(index=v, value=v, name=n, color=c) for v, (n, c) in enumerate(_LPIS)
)
#: Value (and index) of LPIS 'background': land with no declared crop.
LPIS_BACKGROUND = 22

NUM_RAW_CLASSES = 19
NUM_BASELINE_CLASSES = 13
#: Zero-based index of 'other' in the baseline nomenclature (excluded from mIoU).
OTHER_INDEX = 12
#: Value written in maps for pixels with no data (outside the image footprint).
NODATA_VALUE = 255

#: Classes whose union is the artificialized surface, and those counted as forest, by name (the
#: same names in the raw, baseline and CoSIA nomenclatures).
ARTIFICIAL_CLASS_NAMES: tuple[str, ...] = ("building", "pervious surface", "impervious surface")
FOREST_CLASS_NAMES: tuple[str, ...] = ("coniferous", "deciduous")
#: Their baseline (and raw) indices.
ARTIFICIAL_INDICES: tuple[int, ...] = (0, 1, 2)
FOREST_INDICES: tuple[int, ...] = (5, 6)


def indices_named(names: tuple[str, ...], class_names: list[str]) -> tuple[int, ...]:
    """Indices of the classes of ``class_names`` that are among ``names`` (absent ones skipped)."""
    return tuple(i for i, name in enumerate(class_names) if name in names)


@dataclass(frozen=True)
class Nomenclature:
    """A nomenclature: classes in index order, each with its mask values, name and colour.

    Attributes:
        name: short name (``"baseline"``, ``"raw"``, ``"cosia"``, ``"lpis"`` or the user's).
        classes: the classes, ``classes[i].index == i``.
        unlabeled: indices of classes that name no land cover ('other', 'undefined'): weighted 0
            in training and left out of mIoU by default.
    """

    name: str
    classes: tuple[LandCoverClass, ...]
    unlabeled: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.classes:
            raise ValueError(f"nomenclature {self.name!r} has no class")
        if len(self.classes) > NODATA_VALUE:
            raise ValueError(f"nomenclature {self.name!r} has {len(self.classes)} classes: at most {NODATA_VALUE}")
        seen: dict[int, str] = {}
        for i, c in enumerate(self.classes):
            if c.index != i:
                raise ValueError(f"nomenclature {self.name!r}: class {c.name!r} has index {c.index}, expected {i}")
            for v in c.mask_values:
                if not 0 <= v < NODATA_VALUE:
                    raise ValueError(f"nomenclature {self.name!r}: class {c.name!r} has mask value {v}, outside 0..254")
                if v in seen:
                    raise ValueError(f"nomenclature {self.name!r}: mask value {v} belongs to both {seen[v]!r} and {c.name!r}")
                seen[v] = c.name
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"nomenclature {self.name!r} names a class twice: {names}")
        if any(not 0 <= i < len(self.classes) for i in self.unlabeled):
            raise ValueError(f"nomenclature {self.name!r}: unlabeled classes {self.unlabeled} outside 0..{len(self.classes) - 1}")

    @property
    def num_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        """Class names in index order."""
        return [c.name for c in self.classes]

    @property
    def colors(self) -> list[str]:
        """Class colours (``#RRGGBB``) in index order."""
        return [c.color for c in self.classes]

    @property
    def mask_values(self) -> list[int]:
        """Every mask value the nomenclature gives a meaning to, sorted."""
        return sorted(v for c in self.classes for v in c.mask_values)

    def index_of(self, name: str) -> int:
        """Index of a class by name (raises ``ValueError`` naming the classes otherwise)."""
        for c in self.classes:
            if c.name == name:
                return c.index
        raise ValueError(f"no class {name!r} in nomenclature {self.name!r}: its classes are {self.names}")

    def lookup(self) -> np.ndarray:
        """uint8 ``(256,)`` table from mask value to index; values of no class give 255 (read-only,
        built once per nomenclature: every mask read goes through it)."""
        return self._lookup_table

    @functools.cached_property
    def _lookup_table(self) -> np.ndarray:
        table = np.full(256, NODATA_VALUE, dtype=np.uint8)
        for c in self.classes:
            table[list(c.mask_values)] = c.index
        table.flags.writeable = False
        return table

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """A rasterio colour table ``{index: (r, g, b, 255)}`` for maps of indices."""
        return {c.index: (*c.rgb, 255) for c in self.classes}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, read back by :meth:`from_dict`."""
        return {
            "name": self.name,
            "classes": [
                {"name": c.name, "color": c.color, "value": c.value, "mask_values": list(c.mask_values)}
                for c in self.classes
            ],
            "unlabeled": [self.classes[i].name for i in self.unlabeled],
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Nomenclature:
        """A nomenclature from ``{"name": …, "classes": [{"name", "color", "mask_values"|"value"}, …]}``.

        A class's ``value`` defaults to its first mask value, and its mask values to ``[value]``;
        ``color`` defaults to grey. ``"unlabeled"`` optionally lists class names (see the class
        attributes).

        Raises:
            ValueError: a malformed description, naming the problem.
        """
        if not isinstance(spec, Mapping) or not isinstance(spec.get("classes"), Sequence):
            raise ValueError("a nomenclature is a mapping with a 'classes' list")
        classes = []
        for i, entry in enumerate(spec["classes"]):
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise ValueError(f"nomenclature class {i} needs a 'name' (got {entry!r})")
            values = [int(v) for v in entry.get("mask_values") or [entry.get("value", i)]]
            value = int(entry.get("value", values[0]))
            color = str(entry.get("color", "#808080"))
            if len(color) != 7 or color[0] != "#":
                raise ValueError(f"nomenclature class {entry['name']!r}: colour {color!r} is not #RRGGBB")
            classes.append(LandCoverClass(i, value, str(entry["name"]), color, tuple(values)))
        names = [c.name for c in classes]
        unknown = [n for n in spec.get("unlabeled") or [] if n not in names]
        if unknown:
            raise ValueError(f"'unlabeled' names {unknown}, which are not classes ({names})")
        unlabeled = tuple(names.index(n) for n in spec.get("unlabeled") or [])
        return cls(str(spec.get("name", "custom")), tuple(classes), unlabeled)


_BUILT_IN = {
    "baseline": Nomenclature("baseline", BASELINE_CLASSES, unlabeled=(OTHER_INDEX,)),
    "raw": Nomenclature("raw", RAW_CLASSES, unlabeled=(NUM_RAW_CLASSES - 1,)),
    "cosia": Nomenclature("cosia", COSIA_CLASSES, unlabeled=(len(COSIA_CLASSES) - 1,)),
    "lpis": Nomenclature("lpis", LPIS_CLASSES),
}
#: Names of the built-in nomenclatures.
BUILT_IN_NOMENCLATURES: tuple[str, ...] = tuple(_BUILT_IN)

#: What a nomenclature argument may be: a built-in name, a JSON file, a dict or a Nomenclature.
NomenclatureSpec = str | Path | Mapping[str, Any] | Nomenclature


def get(spec: NomenclatureSpec = "baseline") -> Nomenclature:
    """The nomenclature a spec names: built-in name, path of a JSON file, dict, or itself.

    Raises:
        ValueError: an unknown name, a missing or malformed file, naming it.
    """
    if isinstance(spec, Nomenclature):
        return spec
    if isinstance(spec, Mapping):
        return Nomenclature.from_dict(spec)
    if isinstance(spec, str) and spec in _BUILT_IN:
        return _BUILT_IN[spec]
    path = Path(spec)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise ValueError(f"nomenclature file {path} not found")
        try:
            return Nomenclature.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as error:
            raise ValueError(f"nomenclature file {path}: {error}") from None
    raise ValueError(
        f"unknown nomenclature {str(spec)!r}: expected one of {', '.join(BUILT_IN_NOMENCLATURES)} "
        "or a JSON file describing the classes"
    )


def portable(spec: NomenclatureSpec) -> str | dict[str, Any]:
    """A spec to store in a checkpoint: a built-in name as is, anything else as its full dict."""
    if isinstance(spec, str) and spec in _BUILT_IN:
        return spec
    return get(spec).to_dict()


def same(a: NomenclatureSpec, b: NomenclatureSpec) -> bool:
    """Whether two specs describe the same classes (names, order and mask values)."""
    x, y = get(a), get(b)
    return [(c.name, c.mask_values) for c in x.classes] == [(c.name, c.mask_values) for c in y.classes]


def for_class_count(num_classes: int) -> Nomenclature | None:
    """The built-in FLAIR nomenclature of a class count (13: baseline, 19: raw), else None."""
    return {NUM_BASELINE_CLASSES: _BUILT_IN["baseline"], NUM_RAW_CLASSES: _BUILT_IN["raw"]}.get(num_classes)


def classes(nomenclature: NomenclatureSpec = "baseline") -> tuple[LandCoverClass, ...]:
    """The classes of a nomenclature (see :func:`get`), in index order."""
    return get(nomenclature).classes


def class_names(nomenclature: NomenclatureSpec = "baseline") -> list[str]:
    """Class names in index order."""
    return get(nomenclature).names


def class_colors(nomenclature: NomenclatureSpec = "baseline") -> list[str]:
    """Class colours (``#RRGGBB``) in index order."""
    return get(nomenclature).colors


def colormap(nomenclature: NomenclatureSpec = "baseline") -> dict[int, tuple[int, int, int, int]]:
    """A rasterio colour table ``{index: (r, g, b, 255)}`` for maps of zero-based indices."""
    return get(nomenclature).colormap()


def raw_to_index(raw: np.ndarray, nomenclature: NomenclatureSpec = "baseline") -> np.ndarray:
    """Map label-mask values to zero-based indices of a nomenclature.

    Args:
        raw: integer array of mask values (FLAIR raw 1..19 for ``baseline``/``raw``), any shape.
        nomenclature: see :func:`get`; ``"baseline"`` folds 13..19 into 'other' (index 12),
            ``"raw"`` keeps 19.

    Returns:
        uint8 array of the same shape; values of no class become 255 (:data:`NODATA_VALUE`).
    """
    table = get(nomenclature).lookup()
    raw = np.asarray(raw)
    if raw.dtype == np.uint8:
        return np.take(table, raw)  # (twice as fast as table[raw] on a 512 x 512 mask)
    # Wider integer types: values outside 0..255 must not wrap around onto valid classes.
    outside = (raw < 0) | (raw > 255)
    indices = table[np.clip(raw, 0, 255).astype(np.uint8)]
    indices[outside] = NODATA_VALUE
    return indices


def num_classes(nomenclature: NomenclatureSpec = "baseline") -> int:
    """Number of classes of a nomenclature."""
    return get(nomenclature).num_classes


#: GeoTIFF tags that carry a class raster's nomenclature (maps of ``map``/``map-area``, predictions
#: of ``predict``): its name, and its full description (:meth:`Nomenclature.to_dict`, JSON).
NAME_TAG = "FLAIRLC_NOMENCLATURE"
CLASSES_TAG = "FLAIRLC_CLASSES"


def to_tags(nomen: Nomenclature) -> dict[str, str]:
    """The GeoTIFF tags that describe a nomenclature, read back by :func:`from_tags`."""
    return {NAME_TAG: nomen.name, CLASSES_TAG: json.dumps(nomen.to_dict())}


def from_tags(tags: Mapping[str, str]) -> Nomenclature | None:
    """The nomenclature a raster's tags describe: its :data:`CLASSES_TAG` (the full description),
    else its :data:`NAME_TAG` when built in, else None (a raster of another tool, or older)."""
    if CLASSES_TAG in tags:
        try:
            return get(json.loads(tags[CLASSES_TAG]))
        except ValueError:
            pass
    name = tags.get(NAME_TAG)
    return get(name) if name in BUILT_IN_NOMENCLATURES else None
