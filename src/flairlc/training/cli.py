"""``flairlc fit|validate|test|predict``: the Lightning command line (LightningCLI, jsonargparse).

Every argument of :class:`~flairlc.training.SegmentationTask` (``--model.*``),
:class:`~flairlc.data.FlairDataModule` (``--data.*``) and the Trainer (``--trainer.*``) can be set
in a YAML file given with ``--config`` and overridden on the command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from flairlc.data.datamodule import FlairDataModule
from flairlc.training.task import SegmentationTask
from flairlc.training.writer import PredictionWriter

#: Seed of the paper's runs.
DEFAULT_SEED = 2022


class FlairCLI(LightningCLI):
    """LightningCLI with the FLAIR links between data and model settings."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.nomenclature", "model.nomenclature")
        parser.link_arguments("data.sat_patch_size", "model.sat_patch_size")
        parser.link_arguments("data.reference_date", "model.reference_date")
        parser.link_arguments("data.geo_enc_size", "model.geo_enc_size")
        for key in ("filter_clouds", "cloud_max_cover", "cloud_prob_threshold", "average_monthly"):
            parser.link_arguments(f"data.{key}", f"model.{key}")
        parser.add_lightning_class_args(PredictionWriter, "prediction_writer")
        parser.set_defaults(
            {
                "trainer.callbacks": [
                    {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                     "init_args": {"monitor": "val_loss", "save_last": True, "filename": "best-{epoch}-{val_loss:.4f}"}},
                ],
                "trainer.logger": [
                    {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs", "name": "flairlc"}},
                    {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": "runs", "name": "flairlc_tensorboard"}},
                ],
            }
        )

    def before_test(self) -> None:
        """Have ``flairlc test`` write the full evaluation (JSON, CSV, PNG) beside the logs."""
        log_dir = self.trainer.log_dir or self.trainer.default_root_dir
        self.model.evaluation_dir = str(Path(log_dir) / "evaluation")

    def after_test(self) -> None:
        """Print the results table of ``flairlc test``."""
        result = self.model.test_result
        if result is not None and self.trainer.is_global_zero:
            print(result.summary_table())
            print(f"evaluation written to {self.model.evaluation_dir}")


def run_lightning_cli(args: list[str]) -> None:
    """Run ``fit``, ``validate``, ``test`` or ``predict`` with LightningCLI."""
    FlairCLI(
        SegmentationTask,
        FlairDataModule,
        seed_everything_default=DEFAULT_SEED,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"deterministic": "warn"},
        args=None if args == sys.argv[1:] else args,
        auto_configure_optimizers=False,
    )
