"""``flairlc fit|validate|test|predict``: the Lightning command line (LightningCLI, jsonargparse).

Every argument of :class:`~flairlc.training.SegmentationTask` (``--model.*``),
:class:`~flairlc.training.FlairDataModule` (``--data.*``) and the Trainer (``--trainer.*``) can be set
in a YAML file given with ``--config`` and overridden on the command line. ``data`` is a FLAIR #2
data module unless it names another class: ``class_path: flairlc.training.FlairHubDataModule``
(``init_args:`` its arguments) reads a FLAIR-HUB root.

Each run has one fixed folder, ``--run_dir`` (``run_dir:`` in a config, e.g. ``runs/utt``), laid
out as described in :mod:`flairlc.training.run`. The CLI owns the paths in it: every
``ModelCheckpoint`` writes to ``<run>/checkpoints/``, the CSV logger to ``<run>/`` and the
TensorBoard logger to ``<run>/tensorboard/`` whatever a config says, and ``fit`` always adds
:class:`~flairlc.training.run.LastCheckpoint` (``<run>/checkpoints/last.ckpt``).

``--ckpt_path`` takes ``last``, ``best`` or a file. ``fit --ckpt_path last`` continues the run of
``--run_dir`` exactly where its last complete epoch left it, and is an error when there is nothing
to resume; ``fit`` without it is an error when the run folder already holds a run. ``test``,
``validate`` and ``predict`` write no logs: ``test`` writes ``<run>/evaluation/`` and ``predict``
``<run>/predictions/``, where ``<run>`` is the folder of the checkpoint when it lies in a
``<run>/checkpoints/`` folder, else ``--run_dir``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from flairlc import nomenclature as nomenclature_module
from flairlc.outputs import check_writable_dir
from flairlc.training.checkpoint import read_checkpoint
from flairlc.training.datamodule import FlairDataModule
from flairlc.training.run import (
    DEFAULT_RUN_DIR,
    LastCheckpoint,
    RunCSVLogger,
    RunFolder,
    RunFolderError,
)
from flairlc.training.task import SegmentationTask
from flairlc.training.writer import PredictionWriter

#: Seed of the paper's runs.
DEFAULT_SEED = 2022

#: The checkpoint callback of a config that names none: the best epoch by validation loss.
BEST_CHECKPOINT = {
    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
    "init_args": {
        "monitor": "val_loss", "mode": "min", "filename": "best-{epoch}-{val_loss:.4f}",
        # A resumed run saves the file of the epoch it redoes again: replace it, do not add -v1.
        "enable_version_counter": False,
    },
}


class FlairCLI(LightningCLI):
    """LightningCLI with the FLAIR links between data and model settings, and run folders."""

    run: RunFolder

    def _parse_ckpt_path(self) -> None:
        """Refuse an unreadable or unsafe ``--ckpt_path`` file in one line, before Lightning reads it.

        LightningCLI loads the file here for its hyper-parameters; a file that is not a safe
        flairlc checkpoint would end in an ``UnpicklingError`` traceback. ``last`` and ``best`` are
        resolved first (``validate``, ``test``, ``predict``), so that the model is the checkpoint's
        (its hyper-parameters over the config's) whichever way the checkpoint is named.
        """
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if subcommand not in (None, "fit") and ckpt_path in ("last", "best"):
            ckpt_path = str(RunFolder(Path(self.config[subcommand].run_dir)).resolve_checkpoint(ckpt_path))
            self.config[subcommand].ckpt_path = ckpt_path
        if ckpt_path and Path(ckpt_path).is_file():
            checkpoint = read_checkpoint(ckpt_path)
            # The model's classes are the checkpoint's: the data (linked to the model) reads its
            # masks with them (e.g. an imported 19-class model under a 13-class config).
            theirs = checkpoint["hyper_parameters"].get("nomenclature")
            data = self.config[subcommand].get("data")
            data = data.get("init_args") if data is not None else None
            if theirs is not None and data is not None and not nomenclature_module.same(data.get("nomenclature", "baseline"), theirs):
                if subcommand != "fit":
                    warnings.warn(f"{ckpt_path} predicts the {nomenclature_module.get(theirs).name!r} classes: "
                                  "the data uses them too", stacklevel=2)
                data.nomenclature = theirs
        super()._parse_ckpt_path()

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> LightningArgumentParser:
        """``test`` prints flairlc's table (scores in percent, labelled) without Lightning's
        table of the same scores in fractions: one unit on screen (``--verbose true`` adds it)."""
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "test":
            parser.set_defaults(verbose=False)
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # `data` is a FlairDataModule or a subclass (FlairHubDataModule): a link whose source the
        # chosen class lacks (FLAIR-HUB: reference_date, geo_enc_size) leaves the model's default.
        for key in ("nomenclature", "sat_patch_size", "reference_date", "geo_enc_size", "filter_clouds",
                    "cloud_max_cover", "cloud_prob_threshold", "average_monthly", "profile"):
            parser.link_arguments(f"data.init_args.{key}", f"model.{key}")
        parser.add_argument(
            "--run_dir", type=str, default=DEFAULT_RUN_DIR,
            help="run folder: checkpoints in RUN_DIR/checkpoints, logs and config.yaml in RUN_DIR, "
                 "test and predict outputs in RUN_DIR/evaluation and RUN_DIR/predictions",
        )
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.set_defaults({"prediction_writer.output_dir": None, "trainer.callbacks": [BEST_CHECKPOINT]})

    def before_instantiate_classes(self) -> None:
        """Resolve ``--ckpt_path`` in the run folder and point checkpoints and loggers at it."""
        config = self.config[self.subcommand]
        self.run = RunFolder(Path(config.run_dir))
        given = config.ckpt_path
        if self.subcommand == "fit":
            _prepare_fit(config, self.run)
            check_writable_dir(self.run.path, "run folder")
        else:
            self.run = _prepare_evaluation(config, self.run)
            if self.subcommand == "test":  # before the test epoch, not after it
                check_writable_dir(self.run.evaluation, "evaluation folder")
        if config.ckpt_path is not None and config.ckpt_path != given:
            read_checkpoint(config.ckpt_path)  # `last` or `best`, resolved: refuse a bad file in one line
        if config.prediction_writer.output_dir is None:
            config.prediction_writer.output_dir = str(self.run.predictions)

    def before_fit(self) -> None:
        """Record the validation domains in use in ``config.yaml`` (drawn when not given)."""
        data = self.config[self.subcommand].data.init_args
        if "val_domains" in data:  # FLAIR #2's (FLAIR-HUB's validation patches are the split file's)
            data.val_domains = self.datamodule.val_domains

    def before_test(self) -> None:
        """Have ``flairlc test`` write the full evaluation (JSON, CSV, PNG) in the run folder."""
        self.model.evaluation_dir = str(self.run.evaluation)

    def after_test(self) -> None:
        """Print the results table of ``flairlc test``."""
        result = self.model.test_result
        if result is not None and self.trainer.is_global_zero:
            print(result.summary_table())
            print(f"evaluation written to {self.model.evaluation_dir}")


class FitConfigCallback(SaveConfigCallback):
    """Save ``config.yaml`` in the run folder for ``fit`` only: ``test`` must not replace it."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            super().setup(trainer, pl_module, stage)


def _prepare_fit(config: Namespace, run: RunFolder) -> None:
    """Resolve the checkpoint to resume, refuse to mix two runs, set the run's paths."""
    if config.ckpt_path is not None:
        config.ckpt_path = str(run.resolve_checkpoint(config.ckpt_path))
    resuming = config.ckpt_path is not None and run.owns(config.ckpt_path)
    if not resuming and run.last_checkpoint.is_file():
        raise RunFolderError(
            f"{run.path} already holds a run ({run.last_checkpoint}): continue it with "
            f"--ckpt_path last, or start a new one with another --run_dir"
        )
    trainer = config.trainer
    trainer.default_root_dir = str(run.path)
    callbacks = [c for c in _as_list(trainer.callbacks) if not _is_class(c, LastCheckpoint)]
    for callback in callbacks:
        if _is_class(callback, ModelCheckpoint):
            callback.init_args.dirpath = str(run.checkpoints)
            # last.ckpt is LastCheckpoint's: ModelCheckpoint's would replace it at validation ends.
            callback.init_args.save_last = None
    if trainer.enable_checkpointing is not False:
        callbacks.append(_class_entry(LastCheckpoint, path=str(run.last_checkpoint)))
    trainer.callbacks = callbacks
    trainer.logger = _run_loggers(trainer.logger, run)
    state = f"continuing from {config.ckpt_path}" if resuming else "new run"
    rank_zero_info(f"run folder: {run.path} ({state})")


def _prepare_evaluation(config: Namespace, run: RunFolder) -> RunFolder:
    """Resolve the checkpoint to evaluate; return the run folder its outputs go to."""
    if config.ckpt_path is not None:
        config.ckpt_path = str(run.resolve_checkpoint(config.ckpt_path))
        run = RunFolder.of_checkpoint(config.ckpt_path) or run
    # Logs of test/validate/predict would replace the training logs of the run folder.
    config.trainer.logger = False
    config.trainer.default_root_dir = str(run.path)
    return run


def _run_loggers(configured: Any, run: RunFolder) -> Any:
    """The loggers of a fit: CSV in ``<run>/``, TensorBoard in ``<run>/tensorboard/``.

    ``None``/``True`` (no logger in the config) gives both; ``False`` none; a list keeps its other
    loggers as they are.
    """
    if configured is False:
        return False
    if configured is None or configured is True:
        configured = [_class_entry(CSVLogger), _class_entry(TensorBoardLogger)]
    loggers = []
    for logger in _as_list(configured):
        if _is_class(logger, CSVLogger):
            flush = getattr(logger.get("init_args") or Namespace(), "flush_logs_every_n_steps", 100)
            logger = _class_entry(RunCSVLogger, save_dir=str(run.path), flush_logs_every_n_steps=flush)
        elif _is_class(logger, TensorBoardLogger):
            logger.init_args = logger.get("init_args") or Namespace()
            logger.init_args.save_dir = str(run.path)
            logger.init_args.name = run.tensorboard.name
            logger.init_args.version = ""
        loggers.append(logger)
    return loggers


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _class_entry(cls: type, **init_args: Any) -> Namespace:
    return Namespace(class_path=f"{cls.__module__}.{cls.__qualname__}", init_args=Namespace(**init_args))


def _is_class(entry: Any, cls: type) -> bool:
    """Whether a ``class_path`` entry of a config names ``cls`` or a subclass of it."""
    if isinstance(entry, cls):
        return True
    class_path = entry.get("class_path") if isinstance(entry, Namespace | dict) else None
    if not class_path:
        return False
    module, _, name = class_path.rpartition(".")
    try:
        found = getattr(sys.modules.get(module) or __import__(module, fromlist=[name]), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type) and issubclass(found, cls)


def run_lightning_cli(args: list[str]) -> None:
    """Run ``fit``, ``validate``, ``test`` or ``predict`` with LightningCLI.

    Raises:
        SystemExit: code 2 with a one-line message when the run folder cannot do what was asked
            (nothing to resume, a run already there, a checkpoint missing).
    """
    try:
        FlairCLI(
            SegmentationTask,
            FlairDataModule,
            # `data: {root: …}` is a FlairDataModule, as before; `data: {class_path:
            # flairlc.training.FlairHubDataModule, init_args: {…}}` reads a FLAIR-HUB root.
            subclass_mode_data=True,
            seed_everything_default=DEFAULT_SEED,
            save_config_callback=FitConfigCallback,
            save_config_kwargs={"overwrite": True},
            trainer_defaults={"deterministic": "warn"},
            args=None if args == sys.argv[1:] else args,
            auto_configure_optimizers=False,
        )
    except RunFolderError as error:
        command = args[0] if args else "fit"
        print(f"flairlc {command}: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
