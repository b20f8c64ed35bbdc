"""The run folder: one fixed folder per training run, and what makes resuming it exact.

A run folder ``<run>`` (``flairlc fit --run_dir``, e.g. ``runs/utt``) holds everything of one run::

    <run>/config.yaml                    full configuration of the last `flairlc fit` call
    <run>/hparams.yaml                   model and data hyper-parameters in use (drawn validation domains included)
    <run>/metrics.csv                    logged metrics, one row per logging step
    <run>/tensorboard/                   TensorBoard events
    <run>/checkpoints/last.ckpt          state at the last training epoch end: what `--ckpt_path last` resumes
    <run>/checkpoints/best-epoch={E}-val_loss={L}.ckpt   best epoch by validation loss
    <run>/evaluation/                    `flairlc test` outputs
    <run>/predictions/                   `flairlc predict` outputs (PRED_{id}.tif)

A run killed at any time continues from ``last.ckpt`` and ends with the same weights and the same
``metrics.csv`` as an uninterrupted run of the same seed: :class:`LastCheckpoint` writes the
checkpoint at training epoch ends only, atomically, with the global random states and the logging
step reached; :class:`RunCSVLogger` keeps the rows logged before that step when the run continues.
The data loaders draw nothing from the global random generators (see
:class:`~flairlc.training.FlairDataModule`), so restoring those states is enough.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

#: Run folder of ``flairlc fit`` when neither the config nor the command line sets ``run_dir``.
DEFAULT_RUN_DIR = "runs/flairlc"
#: File name of the checkpoint that ``--ckpt_path last`` resumes.
LAST_CHECKPOINT = "last.ckpt"


class RunFolderError(ValueError):
    """A run folder cannot do what was asked (nothing to resume, a run already there, …)."""


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (see the module docstring for the layout).

    Args:
        path: the run folder, e.g. ``runs/utt``.
    """

    path: Path

    @property
    def checkpoints(self) -> Path:
        """``<run>/checkpoints``: every checkpoint of the run."""
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        """``<run>/checkpoints/last.ckpt``: the state at the last training epoch end."""
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def tensorboard(self) -> Path:
        """``<run>/tensorboard``: TensorBoard events."""
        return self.path / "tensorboard"

    @property
    def evaluation(self) -> Path:
        """``<run>/evaluation``: what ``flairlc test`` writes."""
        return self.path / "evaluation"

    @property
    def predictions(self) -> Path:
        """``<run>/predictions``: what ``flairlc predict`` writes."""
        return self.path / "predictions"

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunFolder | None:
        """The run folder a checkpoint file belongs to (``<run>/checkpoints/*.ckpt``), or None."""
        parent = Path(checkpoint).parent
        return cls(parent.parent) if parent.name == "checkpoints" else None

    def owns(self, checkpoint: str | Path) -> bool:
        """Whether a checkpoint file lies in this run's ``checkpoints/`` folder."""
        return Path(checkpoint).resolve().parent == self.checkpoints.resolve()

    def resolve_checkpoint(self, spec: str) -> Path:
        """The checkpoint file meant by ``--ckpt_path``: ``last``, ``best`` or a path.

        ``best`` is the best checkpoint recorded in ``last.ckpt`` by the ``ModelCheckpoint`` that
        monitors a metric.

        Raises:
            RunFolderError: the file is missing, saying where it was looked for.
        """
        if spec == "last":
            if not self.last_checkpoint.is_file():
                raise RunFolderError(
                    f"--ckpt_path last: no checkpoint to resume, {self.last_checkpoint} does not exist "
                    f"(check --run_dir, or leave out --ckpt_path to start a new run)"
                )
            return self.last_checkpoint
        if spec == "best":
            return self._best_checkpoint()
        path = Path(spec)
        if not path.is_file():
            raise RunFolderError(f"--ckpt_path {spec}: checkpoint not found")
        return path

    def _best_checkpoint(self) -> Path:
        if not self.last_checkpoint.is_file():
            raise RunFolderError(f"--ckpt_path best: {self.last_checkpoint} does not exist, so no best checkpoint is known")
        checkpoint = torch.load(self.last_checkpoint, map_location="cpu", weights_only=True, mmap=True)
        recorded = {
            state["best_model_path"]
            for key, state in checkpoint.get("callbacks", {}).items()
            if key.startswith("ModelCheckpoint") and state.get("monitor") and state.get("best_model_path")
        }
        if len(recorded) != 1:
            raise RunFolderError(
                f"--ckpt_path best: {self.last_checkpoint} records {len(recorded)} best checkpoints "
                f"({sorted(recorded)}); give the checkpoint's path instead"
            )
        # The path recorded is absolute: look for the file in this folder first, so that a run
        # folder that was moved or copied still finds its own best checkpoint.
        recorded_path = Path(recorded.pop())
        for path in (self.checkpoints / recorded_path.name, recorded_path):
            if path.is_file():
                return path
        raise RunFolderError(f"--ckpt_path best: {recorded_path.name} is not in {self.checkpoints}")


# ---------------------------------------------------------------------------------- random states
def rng_states() -> dict[str, Any]:
    """The global random states (torch CPU and CUDA, numpy, random) as plain tensors and lists.

    The result is readable by ``torch.load(weights_only=True)``, as every flairlc checkpoint is.
    """
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gaussian],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore the global random states saved by :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    name, keys, position, has_gauss, cached_gaussian = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached_gaussian))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


# ---------------------------------------------------------------------------------------- metrics
class _RunMetricsWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing ``metrics.csv`` instead of deleting it.

    On the first save, the rows of an existing file logged at a step below ``resume_step`` are
    kept and the others dropped; with ``resume_step`` None the file is started afresh.
    """

    def __init__(self, log_dir: str, resume_step: int | None) -> None:
        self.resume_step = resume_step
        self._started = False
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        # Lightning deletes metrics.csv here. The cut waits for the first save instead: the step
        # to resume from is known only once the checkpoint is read, after this writer is made.
        pass

    def _start(self) -> None:
        path = Path(self.metrics_file_path)
        kept: list[dict[str, str]] = []
        fields: list[str] = []
        if path.is_file() and self.resume_step is not None:
            with path.open(newline="") as file:
                reader = csv.DictReader(file)
                fields = list(reader.fieldnames or [])
                kept = [row for row in reader if int(row["step"]) < self.resume_step]
        path.unlink(missing_ok=True)
        if kept:
            with path.open("w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept)
            self.metrics_keys = sorted(fields)
        self._started = True

    def save(self) -> None:
        if not self._started:
            self._start()
        super().save()


class RunCSVLogger(CSVLogger):
    """CSV metrics of a run in ``<run>/metrics.csv`` (and ``<run>/hparams.yaml``), kept on resume.

    Lightning's ``CSVLogger`` deletes ``metrics.csv`` when its folder is not empty. This one keeps
    the rows that the checkpoint a run continues from covers, those logged at a step below
    :attr:`resume_step` (set by :class:`LastCheckpoint` when the run resumes), and drops the rest,
    which the resumed run logs again.

    Args:
        save_dir: the run folder.
        flush_logs_every_n_steps: write pending rows every this many logging steps (and at every
            :class:`LastCheckpoint`).
    """

    def __init__(self, save_dir: str, flush_logs_every_n_steps: int = 100) -> None:
        super().__init__(save_dir, name="", version="", flush_logs_every_n_steps=flush_logs_every_n_steps)
        self._resume_step: int | None = None

    @property
    def resume_step(self) -> int | None:
        """Keep the rows of an existing ``metrics.csv`` logged below this step (None: keep none)."""
        return self._resume_step

    @resume_step.setter
    def resume_step(self, step: int | None) -> None:
        # Lightning creates the writer before the checkpoint is read: hand it the step too.
        self._resume_step = step
        if isinstance(self._experiment, _RunMetricsWriter):
            self._experiment.resume_step = step

    @property
    @rank_zero_experiment
    def experiment(self) -> _RunMetricsWriter:
        """The writer of ``metrics.csv`` and ``hparams.yaml``."""
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _RunMetricsWriter(self.log_dir, self._resume_step)
        return self._experiment


# ------------------------------------------------------------------------------------ checkpoints
class LastCheckpoint(Checkpoint):
    """Write ``<run>/checkpoints/last.ckpt`` at the end of every training epoch, for exact resumes.

    The file is written where Lightning's ``ModelCheckpoint(save_on_train_epoch_end=True)`` would
    (after the module's ``on_train_epoch_end``), under a temporary name then renamed, so a run killed
    at any moment leaves the previous complete checkpoint. Besides Lightning's state (weights,
    optimizer, schedulers, loops, callbacks) it holds the global random states and the logging
    step reached; pending metric rows are written to disk first. Resuming from it restores the
    random states and has :class:`RunCSVLogger` keep the rows logged before that step: a run killed
    during an epoch redoes that epoch exactly as an uninterrupted run does it.

    Args:
        path: the checkpoint file, ``<run>/checkpoints/last.ckpt``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._csv_loggers: list[RunCSVLogger] = []
        self._resuming_here = False
        self._trainer: L.Trainer | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer
        self._csv_loggers = [logger for logger in trainer.loggers if isinstance(logger, RunCSVLogger)]

    def state_dict(self) -> dict[str, Any]:
        # The step the loggers write (batches that stepped the optimizers), which differs from
        # trainer.global_step with several optimizers.
        trainer = self._trainer
        log_step = trainer.fit_loop.epoch_loop._batches_that_stepped if trainer is not None else None
        return {"rng": rng_states(), "log_step": log_step}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # Called just before load_state_dict. Metric rows are kept only when the run continues
        # from one of its own checkpoints, not from another run's.
        ckpt_path = trainer.ckpt_path
        self._resuming_here = ckpt_path is not None and Path(ckpt_path).resolve().parent == self.path.parent.resolve()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_rng_states(state_dict["rng"])
        if self._resuming_here and state_dict.get("log_step") is not None:
            for logger in self._csv_loggers:
                logger.resume_step = int(state_dict["log_step"])

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Rows of the previous epoch logged after its checkpoint (epoch-level training metrics):
        # on disk now, so that a run killed in this epoch keeps them.
        self._flush()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run:
            return
        self._flush()
        temporary = self.path.with_name(self.path.name + ".tmp")
        trainer.save_checkpoint(temporary, weights_only=False)
        if trainer.is_global_zero:
            os.replace(temporary, self.path)
        trainer.strategy.barrier("LastCheckpoint")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush()

    def _flush(self) -> None:
        for logger in self._csv_loggers:
            logger.save()
