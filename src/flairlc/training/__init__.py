"""Training: the LightningModule and data module, augmentation, prediction writing, checkpoints."""

from flairlc.inference.scaling import InputScaler
from flairlc.training.augment import augment_batch
from flairlc.training.checkpoint import CheckpointError, load_task, read_checkpoint
from flairlc.training.datamodule import FlairDataModule, draw_val_domains
from flairlc.training.hub_datamodule import FlairHubDataModule
from flairlc.training.task import SegmentationTask, check_data_fits
from flairlc.training.writer import PredictionWriter, write_prediction

__all__ = [
    "CheckpointError",
    "FlairDataModule",
    "FlairHubDataModule",
    "InputScaler",
    "PredictionWriter",
    "SegmentationTask",
    "augment_batch",
    "check_data_fits",
    "draw_val_domains",
    "load_task",
    "read_checkpoint",
    "write_prediction",
]
