"""A trained model's inference: a checkpoint read without Lightning, scaled inputs, probabilities.

- :class:`TrainedModel`: network + input scaling + bands + classes + the series preprocessing it
  was trained with; the :class:`~flairlc.mapping.predictor.Predictor` that mapping and evaluation
  use, and the base of :class:`~flairlc.training.SegmentationTask`.
- :func:`load_trained_model`: a checkpoint file as a ``TrainedModel`` (``torch.load`` alone).
- :func:`read_checkpoint` / :class:`CheckpointError`: the safe read, and what a file is not.
- :class:`InputScaler`: the paper's [0, 1] scaling, standardization, or none.

Like ``models/``, this layer imports neither Lightning nor torchmetrics.
"""

from flairlc.inference.checkpoint import CheckpointError, read_checkpoint
from flairlc.inference.model import MODEL_INPUTS, TrainedModel, load_trained_model
from flairlc.inference.scaling import InputScaler

__all__ = [
    "MODEL_INPUTS",
    "CheckpointError",
    "InputScaler",
    "TrainedModel",
    "load_trained_model",
    "read_checkpoint",
]
