"""The training pipeline keeps a GPU fed: pinned batches on CUDA, no value read back per step."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.utils._python_dispatch import TorchDispatchMode

from flairlc.training import FlairDataModule, SegmentationTask


def _trainer_on(device: str) -> SimpleNamespace:
    """What the data module reads of a Trainer whose device is ``device`` (no GPU needed)."""
    return SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device(device)))


def test_loaders_pin_memory_when_the_trainer_runs_on_cuda(synthetic_root: Path) -> None:
    data = FlairDataModule(str(synthetic_root), batch_size=2, num_workers=1, val_fraction=0.25)
    data.setup("fit")
    data.trainer = _trainer_on("cuda")
    loader = data.val_dataloader()
    assert loader.pin_memory is True
    assert loader.persistent_workers is True
    data.trainer = _trainer_on("cpu")
    assert data.val_dataloader().pin_memory is False
    data.trainer = None
    assert data.val_dataloader().pin_memory is False


def test_an_explicit_pin_memory_is_kept_whatever_the_device(synthetic_root: Path) -> None:
    data = FlairDataModule(str(synthetic_root), batch_size=2, val_fraction=0.25, pin_memory=False)
    data.setup("fit")
    data.trainer = _trainer_on("cuda")
    assert data.val_dataloader().pin_memory is False
    data = FlairDataModule(str(synthetic_root), batch_size=2, val_fraction=0.25, pin_memory=True)
    data.setup("fit")
    data.trainer = _trainer_on("cpu")
    assert data.val_dataloader().pin_memory is True


class ScalarReads(TorchDispatchMode):
    """Counts the reads of a tensor's value into Python (``.item()``, ``float()``, ``bool()``…):
    on a GPU each one waits for all the work queued before it."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


class ReadsBetween(Callback):
    """The scalar reads made from the start of batch ``first`` to the end of batch ``last``."""

    def __init__(self, reads: ScalarReads, first: int, last: int) -> None:
        self.reads, self.first, self.last = reads, first, last
        self.at_start: int | None = None
        self.between: int | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:  # noqa: ANN001
        if batch_idx == self.first:
            self.at_start = self.reads.count

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int) -> None:  # noqa: ANN001
        if batch_idx == self.last:
            self.between = self.reads.count - self.at_start


def test_training_steps_read_no_value_back_to_the_host(synthetic_root: Path, tmp_path: Path) -> None:
    """With the progress bar and a logger, as ``flairlc fit`` runs, steps between two logging
    steps queue their work and return: nothing waits for the device."""
    L.seed_everything(0, verbose=False)
    data = FlairDataModule(str(synthetic_root), batch_size=1, val_fraction=0.25)
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18"})
    reads = ScalarReads()
    between = ReadsBetween(reads, first=2, last=5)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=7, limit_val_batches=0, enable_progress_bar=True,
        logger=CSVLogger(tmp_path), log_every_n_steps=50, enable_model_summary=False,
        default_root_dir=tmp_path, callbacks=[between],
    )
    with reads:
        trainer.fit(task, data)
    assert reads.count > 0  # the logging step and the epoch's end do read values back
    assert between.between == 0
    assert "train_loss_mean" in trainer.progress_bar_metrics
