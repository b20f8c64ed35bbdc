"""Evaluation as the FLAIR #2 paper computes it: confusion matrices, scores, reports.

- :func:`confusion_matrix` / :func:`confusion_matrix_torch`: ``(K, K)`` counts, rows = truth,
  columns = prediction; :class:`ConfusionAccumulator` adds them up overall and per domain.
- :class:`Scores` / :func:`compute_scores`: per-class IoU, precision, recall, F1, overall accuracy,
  mIoU and mean F1 over the classes other than 'other', skipping undefined IoUs.
- :class:`EvaluationResult`: the matrices of an evaluation, written as JSON, CSV and PNG.
- :func:`evaluate_prediction_folder`: score ``PRED_{id}.tif`` files against ``MSK_{id}.tif``.
"""

from flairlc.evaluation.confusion import (
    DEFAULT_IGNORE_INDEX,
    ConfusionAccumulator,
    confusion_matrix,
    confusion_matrix_torch,
)
from flairlc.evaluation.predictions import (
    PredictionFolderError,
    evaluate_prediction_folder,
    find_predictions,
)
from flairlc.evaluation.report import EvaluationResult, atomic_write_bytes
from flairlc.evaluation.scores import (
    RAW_OTHER_INDEX,
    Scores,
    compute_scores,
    default_class_names,
    default_exclude,
)

__all__ = [
    "DEFAULT_IGNORE_INDEX",
    "RAW_OTHER_INDEX",
    "ConfusionAccumulator",
    "EvaluationResult",
    "PredictionFolderError",
    "Scores",
    "atomic_write_bytes",
    "compute_scores",
    "confusion_matrix",
    "confusion_matrix_torch",
    "default_class_names",
    "default_exclude",
    "evaluate_prediction_folder",
    "find_predictions",
]
