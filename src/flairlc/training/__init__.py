"""Training: the LightningModule, augmentation, input scaling, prediction writing, checkpoints."""

from flairlc.inference.scaling import InputScaler
from flairlc.training.augment import augment_batch
from flairlc.training.checkpoint import CheckpointError, load_task, read_checkpoint
from flairlc.training.task import SegmentationTask, check_data_fits
from flairlc.training.writer import PredictionWriter, write_prediction

__all__ = [
    "CheckpointError",
    "InputScaler",
    "PredictionWriter",
    "SegmentationTask",
    "augment_batch",
    "check_data_fits",
    "load_task",
    "read_checkpoint",
    "write_prediction",
]
