"""Scores from a confusion matrix: per-class IoU, precision, recall, F1; OA; mIoU; mean F1.

Definitions (``cm`` rows = truth, columns = prediction; for class ``k``: ``TP = cm[k, k]``,
``FP = column sum − TP``, ``FN = row sum − TP``):

- IoU = TP / (TP + FP + FN); precision = TP / (TP + FP); recall = TP / (TP + FN);
  F1 = 2 TP / (2 TP + FP + FN).
- A score whose denominator is 0 is *undefined*: NaN in :class:`Scores`, ``None`` in dictionaries
  and JSON, never 0 or 1. A class absent from both truth and prediction has an undefined IoU and
  F1; a class present in the truth but never predicted has IoU 0.
- mIoU (and mean F1) = mean over the classes that are not excluded ('other' by default, as in the
  FLAIR #2 paper) and whose IoU is defined.
- Overall accuracy = trace / total, over every counted pixel (excluded classes included).
- Row-normalized matrix = each row divided by its sum (the recall view); a row with no pixels is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flairlc.nomenclature import (
    NUM_BASELINE_CLASSES,
    NUM_RAW_CLASSES,
    OTHER_INDEX,
    class_names,
)

#: Index of 'other' in the 19-class raw nomenclature.
RAW_OTHER_INDEX = NUM_RAW_CLASSES - 1


def default_class_names(num_classes: int) -> list[str]:
    """Nomenclature names for 13 (baseline) or 19 (raw) classes, else ``class_0 .. class_{K-1}``."""
    if num_classes == NUM_BASELINE_CLASSES:
        return class_names("baseline")
    if num_classes == NUM_RAW_CLASSES:
        return class_names("raw")
    return [f"class_{k}" for k in range(num_classes)]


def default_exclude(num_classes: int) -> tuple[int, ...]:
    """Indices left out of mIoU by default: 'other' (12 of 13, or 18 of 19), else none."""
    if num_classes == NUM_BASELINE_CLASSES:
        return (OTHER_INDEX,)
    if num_classes == NUM_RAW_CLASSES:
        return (RAW_OTHER_INDEX,)
    return ()


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` as float64, NaN where ``den == 0``."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass(frozen=True)
class Scores:
    """Scores of one confusion matrix; undefined values are NaN.

    Attributes:
        class_names: ``K`` names in index order.
        exclude: indices left out of ``miou`` and ``mean_f1``.
        confusion: int64 ``(K, K)``, rows = truth, columns = prediction.
        iou, precision, recall, f1: float64 ``(K,)``, NaN where undefined.
        support: int64 ``(K,)``, truth pixels per class (row sums).
        predicted: int64 ``(K,)``, predicted pixels per class (column sums).
        overall_accuracy: fraction of counted pixels predicted right (NaN if none counted).
        miou: mean IoU over the classes not excluded with a defined IoU (NaN if none).
        mean_f1: mean F1 over the same classes.
        normalized_confusion: float64 ``(K, K)``, rows divided by their sums (NaN rows if empty).
    """

    class_names: list[str]
    exclude: tuple[int, ...]
    confusion: np.ndarray
    iou: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    overall_accuracy: float
    miou: float
    mean_f1: float
    normalized_confusion: np.ndarray

    @classmethod
    def from_confusion(
        cls,
        cm: np.ndarray,
        class_names: Sequence[str] | None = None,
        exclude: Sequence[int] | None = None,
    ) -> Scores:
        """Compute every score of a ``(K, K)`` confusion matrix.

        Args:
            cm: integer ``(K, K)``, rows = truth, columns = prediction.
            class_names: ``K`` names; default :func:`default_class_names`.
            exclude: indices left out of the means; default :func:`default_exclude`.
        """
        cm = np.asarray(cm)
        if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
            raise ValueError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
        cm = cm.astype(np.int64)
        k = cm.shape[0]
        names = list(class_names) if class_names is not None else default_class_names(k)
        if len(names) != k:
            raise ValueError(f"{len(names)} class names for a {k}×{k} confusion matrix")
        excl = tuple(sorted(set(exclude))) if exclude is not None else default_exclude(k)
        if any(not 0 <= i < k for i in excl):
            raise ValueError(f"excluded indices {excl} outside 0..{k - 1}")

        tp = np.diag(cm)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        fp = predicted - tp
        fn = support - tp
        iou = _ratio(tp, tp + fp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        kept = np.ones(k, dtype=bool)
        kept[list(excl)] = False
        kept &= ~np.isnan(iou)
        total = int(cm.sum())
        return cls(
            class_names=names,
            exclude=excl,
            confusion=cm,
            iou=iou,
            precision=_ratio(tp, predicted),
            recall=_ratio(tp, support),
            f1=f1,
            support=support,
            predicted=predicted,
            overall_accuracy=float(tp.sum() / total) if total else math.nan,
            miou=float(iou[kept].mean()) if kept.any() else math.nan,
            mean_f1=float(f1[kept].mean()) if kept.any() else math.nan,
            normalized_confusion=_ratio(cm, support[:, None].repeat(k, axis=1)),
        )

    @property
    def mean_classes(self) -> list[str]:
        """Names of the classes the means are taken over (not excluded, IoU defined)."""
        return [
            n
            for i, n in enumerate(self.class_names)
            if i not in self.exclude and not math.isnan(self.iou[i])
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; undefined values are ``None``.

        Keys: ``num_classes``, ``class_names``, ``excluded`` (names), ``excluded_indices``,
        ``mean_classes``, ``num_pixels``, ``overall_accuracy``, ``miou``, ``mean_f1``,
        ``per_class`` (name → ``index``, ``iou``, ``precision``, ``recall``, ``f1``, ``support``,
        ``predicted``, ``excluded``), ``normalized_confusion`` (``K`` lists of ``K``).
        """
        per_class = {
            name: {
                "index": i,
                "iou": _none_if_nan(self.iou[i]),
                "precision": _none_if_nan(self.precision[i]),
                "recall": _none_if_nan(self.recall[i]),
                "f1": _none_if_nan(self.f1[i]),
                "support": int(self.support[i]),
                "predicted": int(self.predicted[i]),
                "excluded": i in self.exclude,
            }
            for i, name in enumerate(self.class_names)
        }
        return {
            "num_classes": len(self.class_names),
            "class_names": list(self.class_names),
            "excluded": [self.class_names[i] for i in self.exclude],
            "excluded_indices": list(self.exclude),
            "mean_classes": self.mean_classes,
            "num_pixels": int(self.confusion.sum()),
            "overall_accuracy": _none_if_nan(self.overall_accuracy),
            "miou": _none_if_nan(self.miou),
            "mean_f1": _none_if_nan(self.mean_f1),
            "per_class": per_class,
            "normalized_confusion": [
                [_none_if_nan(v) for v in row] for row in self.normalized_confusion.tolist()
            ],
        }


def compute_scores(
    cm: np.ndarray,
    class_names: Sequence[str] | None = None,
    exclude: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Scores of a ``(K, K)`` confusion matrix as a JSON-ready dictionary (see :class:`Scores`).

    Args:
        cm: integer ``(K, K)``, rows = truth, columns = prediction.
        class_names: ``K`` names; default: the nomenclature's for K = 13 or 19.
        exclude: indices left out of mIoU and mean F1; default ``(OTHER_INDEX,)`` for 13 classes,
            ``(18,)`` for 19. Pass ``()`` to average over every class.

    Returns:
        :meth:`Scores.to_dict`: ``miou``, ``mean_f1``, ``overall_accuracy``, ``per_class`` …,
        with ``None`` for undefined values.
    """
    return Scores.from_confusion(cm, class_names, exclude).to_dict()
