"""Confusion matrices: counted with numpy (offline scoring) or torch (on GPU, inside training).

A confusion matrix ``cm`` of shape ``(K, K)`` counts pixels with rows = truth and columns =
prediction: ``cm[t, p]`` is the number of pixels of true class ``t`` predicted as ``p``. Pixels whose
truth equals ``ignore_index`` are not counted. Because matrices are plain counts, matrices of
disjoint sets of pixels add up: summing per-batch (or per-process, with an all-reduce) matrices gives
exactly the matrix of the whole set, whatever the order, which is what makes evaluation
reproducible and identical under DDP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from flairlc.evaluation.report import EvaluationResult
from flairlc.evaluation.scores import default_class_names, default_exclude
from flairlc.nomenclature import NODATA_VALUE

#: Default truth value that is not counted (the nodata value of folded masks).
DEFAULT_IGNORE_INDEX = NODATA_VALUE


def _to_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().cpu().numpy()
    return np.asarray(array)


def confusion_matrix(
    truth: np.ndarray | torch.Tensor,
    pred: np.ndarray | torch.Tensor,
    num_classes: int,
    ignore_index: int | None = DEFAULT_IGNORE_INDEX,
) -> np.ndarray:
    """Count a confusion matrix with numpy (rows = truth, columns = prediction).

    Args:
        truth: integer class indices, any shape, e.g. ``(H, W)`` or ``(B, H, W)``; numpy array or
            torch tensor (copied to the CPU).
        pred: integer class indices, same shape as ``truth``.
        num_classes: ``K``, the number of classes; valid indices are ``0..K-1``.
        ignore_index: truth value whose pixels are not counted (``None``: count every pixel).

    Returns:
        int64 array ``(K, K)``.

    Raises:
        ValueError: shapes differ, or a counted truth or prediction value is outside ``0..K-1``.
    """
    t = _to_numpy(truth)
    p = _to_numpy(pred)
    if t.shape != p.shape:
        raise ValueError(f"truth shape {t.shape} and prediction shape {p.shape} differ")
    t = t.reshape(-1).astype(np.int64, copy=False)
    p = p.reshape(-1).astype(np.int64, copy=False)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    _check_range_numpy(t, "truth", num_classes)
    _check_range_numpy(p, "prediction", num_classes)
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64, copy=False)


def _check_range_numpy(values: np.ndarray, what: str, num_classes: int) -> None:
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        bad = np.unique(values[(values < 0) | (values >= num_classes)])[:10].tolist()
        raise ValueError(f"{what} values {bad} are outside 0..{num_classes - 1}")


def confusion_matrix_torch(
    truth: torch.Tensor,
    pred: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = DEFAULT_IGNORE_INDEX,
) -> torch.Tensor:
    """Count a confusion matrix with torch, on the inputs' device (rows = truth, cols = prediction).

    Meant for a LightningModule's validation/test step: keep a ``(K, K)`` int64 buffer, add this
    to it, and all-reduce with ``sum`` across processes; the result equals :func:`confusion_matrix`.

    Args:
        truth: integer tensor of class indices, any shape, e.g. ``(B, H, W)``.
        pred: integer tensor, same shape and device (e.g. ``logits.argmax(1)``).
        num_classes: ``K``.
        ignore_index: truth value whose pixels are not counted (``None``: count every pixel).

    Returns:
        int64 tensor ``(K, K)`` on ``truth.device``.

    Raises:
        ValueError: shapes differ, or a counted value is outside ``0..K-1``.
    """
    if truth.shape != pred.shape:
        raise ValueError(
            f"truth shape {tuple(truth.shape)} and prediction shape {tuple(pred.shape)} differ"
        )
    t = truth.reshape(-1).long()
    p = pred.reshape(-1).to(device=t.device, dtype=torch.long)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    # One host sync for the whole check; out-of-range values would silently land in other cells.
    bad = (t < 0) | (t >= num_classes) | (p < 0) | (p >= num_classes)
    if bool(bad.any()):
        raise ValueError(
            f"truth/prediction values outside 0..{num_classes - 1}: "
            f"truth {torch.unique(t[bad]).tolist()[:10]}, prediction {torch.unique(p[bad]).tolist()[:10]}"
        )
    counts = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).long()


class ConfusionAccumulator:
    """Adds up confusion matrices over batches or patches, overall and per domain.

    Args:
        num_classes: ``K``.
        ignore_index: truth value that is not counted.
        class_names: names in index order; default: the nomenclature's names when ``K`` is 13
            (baseline) or 19 (raw), else ``class_0 ..``.
        exclude: indices left out of mean scores; default: 'other' (index 12 for 13 classes,
            18 for 19 classes), nothing otherwise.

    Example:
        >>> acc = ConfusionAccumulator(13)
        >>> acc.update(mask, pred, domain="D004_2021")  # doctest: +SKIP
        >>> result = acc.result()  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = DEFAULT_IGNORE_INDEX,
        class_names: Sequence[str] | None = None,
        exclude: Sequence[int] | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names else default_class_names(num_classes)
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.exclude = tuple(exclude) if exclude is not None else default_exclude(num_classes)
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.domain_confusion: dict[str, np.ndarray] = {}

    def update(
        self,
        truth: np.ndarray | torch.Tensor,
        pred: np.ndarray | torch.Tensor,
        domain: str | Sequence[str] | None = None,
    ) -> np.ndarray:
        """Add the pixels of one patch or one batch.

        Args:
            truth: class indices ``(H, W)`` or ``(B, H, W)``.
            pred: class indices, same shape.
            domain: the domain of the pixels (``"D004_2021"``), or one domain per sample of a
                ``(B, H, W)`` batch, or ``None`` to count them in the overall matrix only.

        Returns:
            the ``(K, K)`` matrix of these pixels.
        """
        if domain is None or isinstance(domain, str):
            cm = confusion_matrix(truth, pred, self.num_classes, self.ignore_index)
            self.add(cm, domain)
            return cm
        t, p = _to_numpy(truth), _to_numpy(pred)
        if t.ndim < 1 or len(domain) != t.shape[0]:
            raise ValueError(
                f"{len(domain)} domains for a batch of shape {t.shape}: expected one per sample"
            )
        total = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        for t_i, p_i, d_i in zip(t, p, domain, strict=True):
            cm = confusion_matrix(t_i, p_i, self.num_classes, self.ignore_index)
            self.add(cm, d_i)
            total += cm
        return total

    def add(self, cm: np.ndarray | torch.Tensor, domain: str | None = None) -> None:
        """Add an already counted ``(K, K)`` matrix (e.g. from :func:`confusion_matrix_torch`)."""
        cm = _to_numpy(cm).astype(np.int64)
        if cm.shape != (self.num_classes, self.num_classes):
            raise ValueError(f"matrix shape {cm.shape}, expected {(self.num_classes,) * 2}")
        self.confusion += cm
        if domain is not None:
            if domain not in self.domain_confusion:
                self.domain_confusion[domain] = np.zeros_like(self.confusion)
            self.domain_confusion[domain] += cm

    def result(self, metadata: dict[str, Any] | None = None) -> EvaluationResult:
        """The accumulated matrices as an :class:`~flairlc.evaluation.EvaluationResult` (copies)."""
        return EvaluationResult(
            confusion=self.confusion.copy(),
            domain_confusion={d: cm.copy() for d, cm in sorted(self.domain_confusion.items())},
            class_names=list(self.class_names),
            exclude=self.exclude,
            metadata=dict(metadata or {}),
        )
