"""Class distribution of a FLAIR dataset (``flairlc stats``): pixels per class, split and domain.

:func:`class_distribution` reads every label mask of a root (with
:func:`flairlc.data.readers.read_mask`, so in the baseline nomenclature raw values 13..19 are
counted as 'other') and counts pixels per class, overall, per split and per domain. Shares are
fractions of the labelled pixels, as the percentages of Table 2 of the FLAIR #2 paper (Garioud et
al., 2023, "FLAIR #2: textural and temporal information for semantic segmentation from
multi-source optical imagery").

:func:`count_classes` is the counting itself, over any list of :class:`LabelFile`;
:func:`flairlc.data.hub.stats.hub_class_distribution` gives it a FLAIR-HUB root's CoSIA labels.

:class:`ClassDistribution` writes the result as CSV (``class_distribution.csv``,
``class_distribution_by_domain.csv``), JSON (``class_distribution.json``) and a bar chart
(``class_distribution.png``), each atomically (:mod:`flairlc.outputs`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from flairlc.data.layout import discover_patches
from flairlc.data.readers import read_mask
from flairlc.nomenclature import class_colors, class_names, classes
from flairlc.outputs import ensure_dir, save_figure, write_text

CSV_NAME = "class_distribution.csv"
CSV_BY_DOMAIN_NAME = "class_distribution_by_domain.csv"
JSON_NAME = "class_distribution.json"
PLOT_NAME = "class_distribution.png"
#: Above this ratio between the largest and smallest non-zero share, the plot uses a log scale.
LOG_SCALE_RATIO = 100.0


@dataclass
class ClassDistribution:
    """Pixel counts per class of a FLAIR dataset.

    Attributes:
        nomenclature: ``"baseline"`` (13 classes), ``"raw"`` (19 classes) or ``"cosia"``
            (FLAIR-HUB's 19 classes).
        overall: int64 ``(K,)`` pixels per class (zero-based index), over every mask read.
        by_split: int64 ``(K,)`` pixels per class for each split read, e.g. ``"train"``.
        by_domain: int64 ``(K,)`` pixels per class for each domain, e.g. ``"D004_2021"``
            (a FLAIR-HUB domain-year: ``"D006-2020"``).
        domain_split: the split each domain comes from; splits joined by ``+`` in the order met
            (``"train+valid"``) when its patches lie in several (FLAIR-HUB).
        num_masks: number of masks read.
        num_unlabelled: number of patches without a mask (not counted).
    """

    nomenclature: str
    overall: np.ndarray
    by_split: dict[str, np.ndarray] = field(default_factory=dict)
    by_domain: dict[str, np.ndarray] = field(default_factory=dict)
    domain_split: dict[str, str] = field(default_factory=dict)
    num_masks: int = 0
    num_unlabelled: int = 0

    @property
    def class_names(self) -> list[str]:
        """Class names in index order."""
        return class_names(self.nomenclature)

    @property
    def colors(self) -> list[str]:
        """Class display colours (``#RRGGBB``) in index order."""
        return class_colors(self.nomenclature)

    @property
    def total(self) -> int:
        """Total number of labelled pixels counted."""
        return int(self.overall.sum())

    @staticmethod
    def shares_of(counts: np.ndarray) -> np.ndarray:
        """float64 fractions of ``counts`` (summing to 1; all zeros when ``counts`` is empty)."""
        total = counts.sum()
        return counts / total if total else np.zeros(counts.shape, dtype=np.float64)

    @property
    def shares(self) -> np.ndarray:
        """float64 ``(K,)`` share of each class over every mask read."""
        return self.shares_of(self.overall)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict: classes, pixel counts and shares, overall, per split, domain."""

        def block(counts: np.ndarray) -> dict[str, Any]:
            return {
                "pixels": counts.astype(int).tolist(),
                "shares": [round(float(s), 8) for s in self.shares_of(counts)],
                "total": int(counts.sum()),
            }

        return {
            "nomenclature": self.nomenclature,
            "classes": [
                {"index": c.index, "value": c.value, "name": c.name, "color": c.color}
                for c in classes(self.nomenclature)
            ],
            "num_masks": self.num_masks,
            "num_unlabelled": self.num_unlabelled,
            "overall": block(self.overall),
            "by_split": {split: block(c) for split, c in self.by_split.items()},
            "by_domain": {
                domain: {"split": self.domain_split.get(domain), **block(c)}
                for domain, c in self.by_domain.items()
            },
        }

    def write_csv(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``class_distribution.csv`` and ``class_distribution_by_domain.csv``.

        The first has one row per class: index, value, name, pixels and share overall, then pixels
        and share per split. The second has one row per domain: domain, split, patches' pixels,
        then the share of each class (one column per class name).

        Returns:
            The two paths.
        """
        directory = Path(directory)
        splits = list(self.by_split)
        header = ["index", "value", "class", "pixels", "share"]
        for split in splits:
            header += [f"pixels_{split}", f"share_{split}"]
        rows: list[list[Any]] = []
        split_shares = {split: self.shares_of(c) for split, c in self.by_split.items()}
        for cls, pixels, share in zip(classes(self.nomenclature), self.overall, self.shares):
            row: list[Any] = [cls.index, cls.value, cls.name, int(pixels), f"{share:.6f}"]
            for split in splits:
                row += [
                    int(self.by_split[split][cls.index]),
                    f"{split_shares[split][cls.index]:.6f}",
                ]
            rows.append(row)
        main = _write_csv(directory / CSV_NAME, header, rows)

        header = ["domain", "split", "pixels", *self.class_names]
        rows = [
            [domain, self.domain_split.get(domain, ""), int(counts.sum())]
            + [f"{s:.6f}" for s in self.shares_of(counts)]
            for domain, counts in self.by_domain.items()
        ]
        by_domain = _write_csv(directory / CSV_BY_DOMAIN_NAME, header, rows)
        return main, by_domain

    def write_json(self, directory: str | Path) -> Path:
        """Write :meth:`to_dict` to ``class_distribution.json``; returns its path."""
        return write_text(Path(directory) / JSON_NAME, json.dumps(self.to_dict(), indent=2) + "\n")

    def plot(self, directory: str | Path, log: bool | None = None) -> Path:
        """Draw ``class_distribution.png``: the share of each class, per split, in class colours.

        Args:
            directory: output folder.
            log: log scale for the shares; by default when the largest non-zero share is more
                than :data:`LOG_SCALE_RATIO` times the smallest.

        Returns:
            The path of the PNG file.
        """
        return save_figure(self._figure(log), Path(directory) / PLOT_NAME)

    def write_all(self, directory: str | Path) -> dict[str, Path]:
        """Write the CSV files, the JSON file and the plot; returns their paths by kind."""
        directory = ensure_dir(directory)
        csv_path, by_domain_path = self.write_csv(directory)
        return {
            "csv": csv_path,
            "csv_by_domain": by_domain_path,
            "json": self.write_json(directory),
            "plot": self.plot(directory),
        }

    def _figure(self, log: bool | None) -> Any:
        # The object-oriented API without pyplot: no global state, no display backend needed.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        series = {"all": self.overall}
        if len(self.by_split) > 1:
            series.update(self.by_split)
        shares = {name: 100.0 * self.shares_of(c) for name, c in series.items()}
        nonzero = np.concatenate([s[s > 0] for s in shares.values()])
        if log is None:
            log = bool(nonzero.size) and nonzero.max() / nonzero.min() > LOG_SCALE_RATIO
        num_classes = len(self.class_names)
        figure = Figure(figsize=(max(8.0, 0.6 * num_classes + 2), 5.5), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        width = 0.8 / len(shares)
        x = np.arange(num_classes)
        hatches = ["", "//", "..", "xx"]
        # Hatches in white on dark classes ('other' is black), black elsewhere.
        hatch_colors = ["white" if _luminance(c) < 0.3 else "black" for c in self.colors]
        for k, (name, values) in enumerate(shares.items()):
            bars = axes.bar(
                x + (k - (len(shares) - 1) / 2) * width,
                values,
                width=width,
                color=self.colors,
                edgecolor="black",
                linewidth=0.8,
                hatch=hatches[k % len(hatches)],
                label=name,
            )
            for bar, hatch_color in zip(bars, hatch_colors):
                bar.set_hatchcolor(hatch_color)
        if log:
            axes.set_yscale("log")
        axes.set_xticks(x, self.class_names, rotation=45, ha="right")
        axes.set_ylabel("share of labelled pixels (%)" + (", log scale" if log else ""))
        axes.set_title(
            f"FLAIR class distribution ({self.nomenclature} nomenclature, "
            f"{self.num_masks} masks, {self.total:,} pixels)"
        )
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
        if len(shares) > 1:
            # Legend patches in grey: the bar colours are those of the classes, the hatch the split.
            from matplotlib.patches import Patch

            handles = [
                Patch(facecolor="lightgrey", edgecolor="black", hatch=hatches[k % len(hatches)])
                for k in range(len(shares))
            ]
            axes.legend(
                handles, list(shares), title="split", loc="upper left", bbox_to_anchor=(1.0, 1.0)
            )
        return figure


def class_distribution(
    root: str | Path,
    toy: bool | None = None,
    nomenclature: str = "baseline",
    splits: tuple[str, ...] = ("train", "test"),
    progress: bool = False,
) -> ClassDistribution:
    """Count the pixels of each class in the label masks of a FLAIR root.

    Args:
        root: dataset root.
        toy: see :func:`flairlc.data.layout.find_trees`.
        nomenclature: ``"baseline"`` (13 classes, raw 13..19 counted as 'other') or ``"raw"``
            (19 classes).
        splits: the splits to read; a split without labels contributes nothing.
        progress: show a progress bar over the masks.

    Returns:
        The counts overall, per split and per domain.

    Raises:
        FlairDataError: when the root holds no aerial tree, or a mask is unreadable or holds
            values outside 1..19 (``flairlc check`` lists every such file).
        ValueError: for an unknown nomenclature.
    """
    classes(nomenclature)  # an unknown nomenclature fails before the walk
    records = discover_patches(root, splits=splits, toy=toy)
    labels = [LabelFile(r.files.get("mask"), r.split, r.domain) for r in records]
    return count_classes(labels, lambda path: read_mask(path, nomenclature), nomenclature, progress)


@dataclass(frozen=True)
class LabelFile:
    """A label mask to count, with the split and the domain it counts in.

    Attributes:
        path: the mask file, or None for a patch without one (counted as unlabelled).
        split: e.g. ``"train"``.
        domain: e.g. ``"D004_2021"`` (FLAIR #2) or ``"D006-2020"`` (FLAIR-HUB).
    """

    path: Path | None
    split: str
    domain: str


def count_classes(
    labels: Iterable[LabelFile],
    read: Callable[[Path], np.ndarray],
    nomenclature: str,
    progress: bool = False,
) -> ClassDistribution:
    """Count the pixels of each class in label masks, overall, per split and per domain.

    Args:
        labels: the masks, with their split and domain.
        read: reads a mask file as zero-based class indices of ``nomenclature`` (any shape),
            raising :class:`~flairlc.data.errors.FlairDataError` on a bad file.
        nomenclature: the nomenclature of the indices (see :func:`flairlc.nomenclature.get`).
        progress: show a progress bar over the masks.

    Returns:
        The counts; ``by_domain`` sorted by domain.
    """
    num_classes = len(classes(nomenclature))
    result = ClassDistribution(nomenclature, np.zeros(num_classes, dtype=np.int64))
    splits_of_domain: dict[str, list[str]] = {}
    for label in tqdm(labels, desc="counting", unit="mask", disable=not progress):
        if label.path is None:
            result.num_unlabelled += 1
            continue
        counts = np.bincount(read(label.path).ravel(), minlength=num_classes).astype(np.int64)
        result.overall += counts
        for table, key in ((result.by_split, label.split), (result.by_domain, label.domain)):
            if key not in table:
                table[key] = np.zeros(num_classes, dtype=np.int64)
            table[key] += counts
        met = splits_of_domain.setdefault(label.domain, [])
        if label.split not in met:
            met.append(label.split)
        result.num_masks += 1
    result.by_domain = dict(sorted(result.by_domain.items()))
    result.domain_split = {domain: "+".join(met) for domain, met in splits_of_domain.items()}
    return result


def _luminance(color: str) -> float:
    red, green, blue = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())

