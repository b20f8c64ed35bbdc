"""The result of an evaluation: confusion matrices, their scores, and the files that report them.

:class:`EvaluationResult` holds the overall and per-domain confusion matrices (the only data; every
score is recomputed from them) and writes them as JSON, CSV and PNG. Every file is written
atomically (:mod:`flairlc.outputs`): to a temporary file in the same folder, then renamed over the
target, so a reader never sees a half-written report.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flairlc.evaluation.scores import Scores, default_class_names, default_exclude
from flairlc.nomenclature import BASELINE_CLASSES, RAW_CLASSES
from flairlc.outputs import write_bytes as atomic_write_bytes  # the shared writer, by its old name

#: Version of the JSON layout written by :meth:`EvaluationResult.to_json`.
JSON_FORMAT_VERSION = 1

_FILE_NAMES = {
    "json": "evaluation.json",
    "per_class_csv": "per_class.csv",
    "per_domain_csv": "per_domain.csv",
    "confusion_png": "confusion_matrix.png",
    "iou_png": "per_class_iou.png",
    "domain_png": "per_domain_miou.png",
}


def _class_colors(names: Sequence[str]) -> list[str]:
    """Nomenclature colour of each class name (grey for names the nomenclature lacks)."""
    by_name = {c.name: c.color for c in (*RAW_CLASSES, *BASELINE_CLASSES)}
    return [by_name.get(n, "#808080") for n in names]


def _fmt(x: float | None, digits: int = 4) -> str:
    return "" if x is None or math.isnan(x) else f"{x:.{digits}f}"


@dataclass
class EvaluationResult:
    """Overall and per-domain confusion matrices of an evaluation, and their reports.

    Attributes:
        confusion: int64 ``(K, K)`` over every evaluated pixel, rows = truth, columns = prediction.
        domain_confusion: domain (e.g. ``"D004_2021"``) → int64 ``(K, K)``; they sum to
            ``confusion`` when every pixel was given a domain.
        class_names: ``K`` names in index order.
        exclude: indices left out of mIoU and mean F1 ('other' by default).
        metadata: free JSON-serializable information (e.g. prediction folder, patch count).
    """

    confusion: np.ndarray
    domain_confusion: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    exclude: tuple[int, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.confusion = np.asarray(self.confusion, dtype=np.int64)
        k = self.confusion.shape[0]
        if self.confusion.shape != (k, k):
            raise ValueError(f"confusion matrix must be (K, K), got {self.confusion.shape}")
        if not self.class_names:
            self.class_names = default_class_names(k)
        self.class_names = list(self.class_names)
        if len(self.class_names) != k:
            raise ValueError(f"{len(self.class_names)} class names for {k} classes")
        self.exclude = tuple(self.exclude) if self.exclude is not None else default_exclude(k)
        self.domain_confusion = {
            str(d): np.asarray(cm, dtype=np.int64)
            for d, cm in sorted(self.domain_confusion.items())
        }
        for d, cm in self.domain_confusion.items():
            if cm.shape != (k, k):
                raise ValueError(
                    f"domain {d}: confusion matrix shape {cm.shape}, expected {(k, k)}"
                )

    @property
    def num_classes(self) -> int:
        """``K``."""
        return len(self.class_names)

    # -- scores ----------------------------------------------------------------------------------

    def overall(self) -> Scores:
        """:class:`Scores` (arrays, NaN where undefined) of the overall matrix."""
        return Scores.from_confusion(self.confusion, self.class_names, self.exclude)

    def scores(self) -> dict[str, Any]:
        """Overall scores as a dictionary (:meth:`Scores.to_dict`; ``None`` where undefined)."""
        return self.overall().to_dict()

    def domain_scores(self) -> dict[str, dict[str, Any]]:
        """Domain → scores dictionary, domains sorted."""
        return {
            d: Scores.from_confusion(cm, self.class_names, self.exclude).to_dict()
            for d, cm in self.domain_confusion.items()
        }

    # -- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything as a JSON-ready dictionary: matrices, overall and per-domain scores."""
        return {
            "format_version": JSON_FORMAT_VERSION,
            "class_names": list(self.class_names),
            "exclude": list(self.exclude or ()),
            "metadata": self.metadata,
            "confusion_matrix": self.confusion.tolist(),
            "domain_confusion_matrices": {
                d: cm.tolist() for d, cm in self.domain_confusion.items()
            },
            "scores": self.scores(),
            "domain_scores": self.domain_scores(),
        }

    def to_json(self, path: Path | str) -> Path:
        """Write :meth:`to_dict` as JSON (atomically); returns the path."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False)
        return atomic_write_bytes(Path(path), (text + "\n").encode("utf-8"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationResult:
        """Rebuild from :meth:`to_dict` output (scores are recomputed from the matrices)."""
        return cls(
            confusion=np.asarray(data["confusion_matrix"], dtype=np.int64),
            domain_confusion={
                d: np.asarray(cm, dtype=np.int64)
                for d, cm in data.get("domain_confusion_matrices", {}).items()
            },
            class_names=list(data["class_names"]),
            exclude=tuple(data.get("exclude", ())),
            metadata=dict(data.get("metadata", {})),
        )

    @classmethod
    def from_json(cls, path: Path | str) -> EvaluationResult:
        """Read a file written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    # -- CSV -------------------------------------------------------------------------------------

    def to_csv(self, directory: Path | str) -> dict[str, Path]:
        """Write ``per_class.csv`` and ``per_domain.csv`` (atomically) into ``directory``.

        ``per_class.csv``: index, name, excluded, iou, precision, recall, f1, support, predicted.
        ``per_domain.csv``: domain, miou, overall_accuracy, mean_f1, num_pixels, ``iou_{name}``
        per class. Undefined values are empty cells.

        Returns:
            ``{"per_class_csv": path, "per_domain_csv": path}``.
        """
        directory = Path(directory)
        s = self.overall()
        rows: list[list[Any]] = [
            [
                "index",
                "name",
                "excluded",
                "iou",
                "precision",
                "recall",
                "f1",
                "support",
                "predicted",
            ]
        ]
        for i, name in enumerate(self.class_names):
            rows.append(
                [
                    i,
                    name,
                    int(i in s.exclude),
                    _fmt(s.iou[i], 6),
                    _fmt(s.precision[i], 6),
                    _fmt(s.recall[i], 6),
                    _fmt(s.f1[i], 6),
                    int(s.support[i]),
                    int(s.predicted[i]),
                ]
            )
        domain_rows: list[list[Any]] = [
            ["domain", "miou", "overall_accuracy", "mean_f1", "num_pixels"]
            + [f"iou_{n}" for n in self.class_names]
        ]
        for d, cm in self.domain_confusion.items():
            ds = Scores.from_confusion(cm, self.class_names, self.exclude)
            domain_rows.append(
                [d, _fmt(ds.miou, 6), _fmt(ds.overall_accuracy, 6), _fmt(ds.mean_f1, 6)]
                + [int(cm.sum())]
                + [_fmt(v, 6) for v in ds.iou]
            )
        return {
            "per_class_csv": atomic_write_bytes(
                directory / _FILE_NAMES["per_class_csv"], _csv_bytes(rows)
            ),
            "per_domain_csv": atomic_write_bytes(
                directory / _FILE_NAMES["per_domain_csv"], _csv_bytes(domain_rows)
            ),
        }

    # -- plots -----------------------------------------------------------------------------------

    def plot(self, directory: Path | str, dpi: int = 120) -> dict[str, Path]:
        """Draw the PNGs (atomically) into ``directory``.

        - ``confusion_matrix.png``: row-normalized confusion matrix, values annotated;
        - ``per_class_iou.png``: IoU per class in the nomenclature colours, mIoU as a line;
        - ``per_domain_miou.png``: mIoU per domain (only when there are domains).

        Returns:
            ``{"confusion_png": path, "iou_png": path[, "domain_png": path]}``.
        """
        from flairlc.evaluation import plots

        directory = Path(directory)
        s = self.overall()
        out = {
            "confusion_png": atomic_write_bytes(
                directory / _FILE_NAMES["confusion_png"],
                plots.confusion_png(s.normalized_confusion, self.class_names, dpi=dpi),
            ),
            "iou_png": atomic_write_bytes(
                directory / _FILE_NAMES["iou_png"],
                plots.iou_png(
                    s.iou, self.class_names, _class_colors(self.class_names), s.miou, s.exclude, dpi
                ),
            ),
        }
        if self.domain_confusion:
            domains = list(self.domain_confusion)
            mious = [
                Scores.from_confusion(cm, self.class_names, self.exclude).miou
                for cm in self.domain_confusion.values()
            ]
            out["domain_png"] = atomic_write_bytes(
                directory / _FILE_NAMES["domain_png"],
                plots.domain_png(domains, mious, s.miou, dpi=dpi),
            )
        return out

    def write(self, directory: Path | str) -> dict[str, Path]:
        """Write the JSON, the CSVs and the PNGs into ``directory``; returns name → path."""
        directory = Path(directory)
        paths = {"json": self.to_json(directory / _FILE_NAMES["json"])}
        paths.update(self.to_csv(directory))
        paths.update(self.plot(directory))
        return paths

    # -- terminal --------------------------------------------------------------------------------

    def summary_table(self) -> str:
        """A plain-text table of the per-class and per-domain scores, for the terminal; every
        score in percent, and labelled so (``mIoU 42.17 %``)."""
        s = self.overall()
        width = max(len(n) for n in self.class_names) + 2
        head = f"{'class':<{width}}{'IoU %':>9}{'prec. %':>9}{'recall %':>9}{'F1 %':>9}{'support':>14}"
        lines = [head, "-" * len(head)]
        for i, name in enumerate(self.class_names):
            mark = " *" if i in s.exclude else ""
            lines.append(
                f"{name + mark:<{width}}{_pct(s.iou[i]):>9}{_pct(s.precision[i]):>9}"
                f"{_pct(s.recall[i]):>9}{_pct(s.f1[i]):>9}{int(s.support[i]):>14,}"
            )
        lines.append("-" * len(head))
        lines.append(
            f"mIoU {_pct(s.miou, '%')}   mean F1 {_pct(s.mean_f1, '%')}   OA {_pct(s.overall_accuracy, '%')}   "
            f"over {len(s.mean_classes)} classes, {int(s.confusion.sum()):,} pixels"
        )
        if s.exclude:
            lines.append("* excluded from the means; n/a: undefined (class absent)")
        if self.domain_confusion:
            dw = max(len("domain"), *(len(d) for d in self.domain_confusion)) + 2
            lines += ["", f"{'domain':<{dw}}{'mIoU %':>9}{'OA %':>9}{'pixels':>14}"]
            for d, cm in self.domain_confusion.items():
                ds = Scores.from_confusion(cm, self.class_names, self.exclude)
                lines.append(
                    f"{d:<{dw}}{_pct(ds.miou):>9}{_pct(ds.overall_accuracy):>9}{int(cm.sum()):>14,}"
                )
        return "\n".join(lines)


def _pct(x: float, unit: str = "") -> str:
    """A fraction as a percentage with 2 decimals (``unit`` appended after a space), or n/a."""
    if math.isnan(x):
        return "n/a"
    return f"{100 * x:.2f} {unit}" if unit else f"{100 * x:.2f}"


def _csv_bytes(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")
