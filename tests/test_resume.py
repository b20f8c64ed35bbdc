"""Run folders and resuming: `flairlc fit --ckpt_path last` continues a run exactly.

Every run here is the CPU U-Net config on the session's small synthetic root, in its own
``--run_dir``; a straight run of ``EPOCHS`` epochs is the reference the interrupted runs must equal
bit for bit (weights and ``metrics.csv``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import flairlc_command, make_read_only

from flairlc.cli import main
from flairlc.training import SegmentationTask, read_checkpoint
from flairlc.training.datamodule import draw_val_domains

CONFIG = Path(__file__).parents[1] / "configs" / "cpu" / "unet.yaml"
EPOCHS = 3
#: Seconds to wait for the first checkpoint of the run that is then killed.
FIRST_CHECKPOINT_TIMEOUT_S = 120


def fit_args(root: Path, run_dir: Path, *extra: str) -> list[str]:
    """``flairlc fit`` of the CPU U-Net config on ``root`` in ``run_dir``.

    With a constant learning rate: a stopped run continued to a higher ``max_epochs`` can only
    equal a straight run when the schedule does not depend on ``max_epochs`` (a cosine one does).
    """
    return [
        "fit", "--config", str(CONFIG), "--data.root", str(root), "--run_dir", str(run_dir),
        "--model.scheduler", "null",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.log_every_n_steps", "1", *extra,
    ]


@pytest.fixture(scope="module")
def straight_run(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of an uninterrupted run of ``EPOCHS`` epochs."""
    run = tmp_path_factory.mktemp("straight") / "run"
    assert main(fit_args(synthetic_root, run, "--trainer.max_epochs", str(EPOCHS))) == 0
    return run


def assert_same_run(expected: Path, actual: Path) -> None:
    """Same final weights (bit for bit), same training progress and the same ``metrics.csv``."""
    a = read_checkpoint(expected / "checkpoints" / "last.ckpt")
    b = read_checkpoint(actual / "checkpoints" / "last.ckpt")
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert a["state_dict"].keys() == b["state_dict"].keys()
    different = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not different, f"weights differ: {different[:5]}"
    assert (expected / "metrics.csv").read_text() == (actual / "metrics.csv").read_text()


def test_a_run_writes_one_fixed_folder(straight_run: Path) -> None:
    names = sorted(p.name for p in straight_run.iterdir())
    assert names == ["checkpoints", "config.yaml", "hparams.yaml", "metrics.csv", "tensorboard"]
    checkpoints = sorted(p.name for p in (straight_run / "checkpoints").iterdir())
    assert "last.ckpt" in checkpoints
    assert all(n == "last.ckpt" or (n.startswith("best-epoch=") and "-val_loss=" in n) for n in checkpoints)
    assert read_checkpoint(straight_run / "checkpoints" / "last.ckpt")["epoch"] == EPOCHS - 1
    assert list((straight_run / "tensorboard").glob("events.out.tfevents.*"))


def test_run_stopped_then_continued_equals_a_straight_run(
    straight_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    assert main(fit_args(synthetic_root, run, "--trainer.max_epochs", str(EPOCHS - 1))) == 0
    assert main(fit_args(synthetic_root, run, "--trainer.max_epochs", str(EPOCHS), "--ckpt_path", "last")) == 0
    assert_same_run(straight_run, run)


def test_run_killed_with_sigkill_resumes_to_the_same_weights_and_metrics(
    straight_run: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    # Two loader workers here, none in the straight run: the batches must not depend on them.
    args = fit_args(synthetic_root, run, "--trainer.max_epochs", str(EPOCHS), "--data.num_workers", "2")
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}  # same float sums as here
    process = subprocess.Popen([sys.executable, "-m", "flairlc.cli", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + FIRST_CHECKPOINT_TIMEOUT_S
        while not last.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert read_checkpoint(last)["epoch"] < EPOCHS - 1

    assert main([*args, "--ckpt_path", "last"]) == 0
    assert_same_run(straight_run, run)


def test_resume_with_nothing_to_resume_fails_with_a_clear_message(
    synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = tmp_path / "empty"
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args(synthetic_root, run, "--ckpt_path", "last"))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("flairlc fit: error: --ckpt_path last: no checkpoint to resume")
    assert str(run / "checkpoints" / "last.ckpt") in message
    assert not run.exists()  # nothing trained from scratch


def test_a_new_run_in_a_folder_that_holds_one_is_refused(
    straight_run: Path, synthetic_root: Path, capsys: pytest.CaptureFixture
) -> None:
    metrics = (straight_run / "metrics.csv").read_text()
    with pytest.raises(SystemExit) as exit_info:
        main(fit_args(synthetic_root, straight_run, "--trainer.max_epochs", "1"))
    assert exit_info.value.code == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (straight_run / "metrics.csv").read_text() == metrics


def test_hparams_and_config_list_the_drawn_validation_domains(straight_run: Path, synthetic_root: Path) -> None:
    drawn = draw_val_domains(synthetic_root, val_fraction=0.15, seed=2022)  # the config's draw
    assert drawn
    hparams = yaml.safe_load((straight_run / "hparams.yaml").read_text())
    config = yaml.safe_load((straight_run / "config.yaml").read_text())
    assert hparams["val_domains"] == drawn
    # `data` names its class (FLAIR #2's here), as LightningCLI writes a subclass-mode argument.
    assert config["data"]["class_path"].endswith(".FlairDataModule") and config["data"]["init_args"]["val_domains"] == drawn
    assert read_checkpoint(straight_run / "checkpoints" / "last.ckpt")["datamodule_hyper_parameters"]["val_domains"] == drawn


def test_test_and_predict_write_beside_the_training_logs(straight_run: Path, synthetic_root: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    before = {name: (straight_run / name).read_bytes() for name in ("config.yaml", "hparams.yaml", "metrics.csv")}
    common = ["--config", str(CONFIG), "--data.root", str(synthetic_root), "--run_dir", str(straight_run),
              "--trainer.enable_progress_bar", "false"]
    assert main(["test", *common, "--ckpt_path", "best"]) == 0
    # One table, its scores in percent and labelled so; not Lightning's table of fractions beside it.
    printed = capsys.readouterr().out
    evaluation = json.loads((straight_run / "evaluation" / "evaluation.json").read_text())
    miou = evaluation["scores"]["miou"]
    assert f"mIoU {100 * miou:.2f} %   mean F1 " in printed and "test_miou" not in printed
    assert (straight_run / "evaluation" / "evaluation.json").is_file()
    assert main(["predict", *common, "--ckpt_path", "last"]) == 0
    assert list((straight_run / "predictions").glob("PRED_*.tif"))
    # Neither replaced the training logs nor opened another folder.
    assert {name: (straight_run / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in straight_run.iterdir()) == [
        "checkpoints", "config.yaml", "evaluation", "hparams.yaml", "metrics.csv", "predictions", "tensorboard",
    ]


def _one_error_line(result: subprocess.CompletedProcess, command: str, path_part: str) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"flairlc {command}: error:")]
    assert len(lines) == 1 and path_part in lines[0] and "permission denied" in lines[0], result.stderr[-2000:]
    return lines[0]


def test_fit_into_a_read_only_place_is_one_line(
    synthetic_root: Path, tmp_path: Path, without_write_permission: list[str]
) -> None:
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    make_read_only(read_only)
    try:
        result = subprocess.run([*without_write_permission, *flairlc_command(),
                                 *fit_args(synthetic_root, read_only / "run", "--trainer.max_epochs", "1")],
                                capture_output=True, text=True, timeout=300)
    finally:
        read_only.chmod(0o755)
    _one_error_line(result, "fit", "read_only")
    assert not (read_only / "run").exists()


def test_test_with_an_unwritable_evaluation_folder_fails_before_the_test_epoch(
    straight_run: Path, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    run = tmp_path / "run"
    shutil.copytree(straight_run, run, ignore=shutil.ignore_patterns("evaluation", "predictions"))
    (run / "evaluation").write_text("a file where the evaluation folder should go")
    steps = []
    monkeypatch.setattr(SegmentationTask, "test_step", lambda self, batch, batch_idx: steps.append(batch_idx))
    command = ["test", "--config", str(CONFIG), "--data.root", str(synthetic_root), "--run_dir", str(run),
               "--trainer.enable_progress_bar", "false", "--ckpt_path", "last"]
    try:
        code = main(command)
    except SystemExit as stop:
        code = stop.code
    assert code == 2 and steps == []  # refused before the first test step
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("flairlc test: error:")]
    assert len(errors) == 1 and "evaluation" in errors[0], errors


def test_epoch_shuffle_depends_on_the_seed_and_epoch_only() -> None:
    from flairlc.training.datamodule import EpochShuffleSampler

    data = list(range(50))
    first, again, other_seed = EpochShuffleSampler(data, seed=7), EpochShuffleSampler(data, seed=7), EpochShuffleSampler(data, seed=8)
    torch.manual_seed(0)
    first.set_epoch(3)
    orders = list(first)
    torch.rand(100)  # draws from the global generator change nothing
    again.set_epoch(3)
    other_seed.set_epoch(3)
    assert list(again) == orders and sorted(orders) == data
    assert list(other_seed) != orders
    again.set_epoch(4)
    assert list(again) != orders
