"""Class distribution of a FLAIR-HUB root's CoSIA labels (``flairlc stats`` on that layout).

The counting, the CSV, JSON and PNG outputs are FLAIR #2's (:mod:`flairlc.data.stats`); only the
list of label files comes from FLAIR-HUB's discovery and split file.
"""

from __future__ import annotations

from pathlib import Path

from flairlc.data.hub.layout import discover_hub, read_split_gpkg, split_gpkg_path
from flairlc.data.hub.readers import read_cosia_label
from flairlc.data.stats import ClassDistribution, LabelFile, count_classes

#: Modality of the labels counted.
LABEL_MODALITY = "AERIAL_LABEL-COSIA"
#: Split of the patches absent from the split column (or of every patch, without a split file).
UNSPLIT = "unsplit"


def hub_class_distribution(root: str | Path, split_column: str = "split_1", progress: bool = False) -> ClassDistribution:
    """Count the pixels of each CoSIA class in the ``AERIAL_LABEL-COSIA`` files of a FLAIR-HUB root.

    Splits are those of ``split_column`` in ``GLOBAL_ALL_MTD/GLOBAL_ALL_MTD_SPLIT.gpkg``
    (``train``, ``valid``, ``test``; ``unsplit`` for a patch absent from it, or for every patch when
    the root has no split file); domains are domain-years (``D006-2020``). A patch without a label
    file counts as unlabelled.

    Args:
        root: the dataset root.
        split_column: ``split_1`` … ``split_5``, ``split_flairchallenge``.
        progress: show a progress bar over the labels.

    Returns:
        The counts in the ``"cosia"`` nomenclature (19 classes, indices 0..18).

    Raises:
        FlairDataError: the root holds no modality folder; the split file is unreadable or lacks
            the column; a label is unreadable or holds values outside 0..18 (``flairlc check``
            lists every such file).
    """
    patches = discover_hub(root)
    split_path = split_gpkg_path(root)
    split_of = read_split_gpkg(split_path, split_column) if split_path.exists() else {}
    labels = [
        LabelFile(p.files.get(LABEL_MODALITY), split_of.get(p.id, UNSPLIT), p.domain_year) for p in patches
    ]
    return count_classes(labels, read_cosia_label, "cosia", progress)
