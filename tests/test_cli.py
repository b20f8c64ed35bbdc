"""The ``flairlc`` command line: configs, the LightningCLI round trip, check, stats, models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flairlc.cli import main
from flairlc.training import load_task

CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_every_shipped_config_parses(config: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "model:" in printed and "data:" in printed


def test_fit_then_evaluate_a_cli_checkpoint(synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).parents[1] / "configs" / "cpu" / "unet.yaml"
    main(["fit", "--config", str(config), "--data.root", str(synthetic_root), "--trainer.max_epochs", "1",
          "--trainer.enable_progress_bar", "false"])
    checkpoint = tmp_path / "runs" / "cpu_unet" / "checkpoints" / "last.ckpt"
    task = load_task(checkpoint)  # LightningCLI's extra hyper-parameter entries are ignored
    assert task.hparams["model"] == "unet" and task.hparams["model_kwargs"]["encoder_name"] == "resnet18"
    assert main(["evaluate", "--root", str(synthetic_root), "--checkpoint", str(checkpoint), "--out", "ev"]) == 0
    evaluation = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert evaluation["metadata"]["num_patches"] == 6


def test_check_stats_and_models_commands(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(synthetic_root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert main(["stats", str(synthetic_root), "--out", str(tmp_path / "stats")]) == 0
    assert (tmp_path / "stats" / "class_distribution.png").is_file()
    assert main(["models"]) == 0
    assert "24,444,381" in capsys.readouterr().out


def test_bad_root_gives_a_clear_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["stats", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["map", "map-area"])
def test_a_device_this_machine_lacks_is_one_line_before_any_work(command: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from flairlc.cli import main

    missing = tmp_path / "missing.ckpt"  # never read: the device is refused first
    for device, message in (("cuda:99", "--device cuda:99: "), ("gpu0", "--device gpu0: not a device")):
        assert main([command, "--checkpoint", str(missing), "--aerial", str(tmp_path / "a.tif"),
                     "--out", str(tmp_path / "out"), "--device", device]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"flairlc {command}: error: {message}") and "\n" not in err
    assert not (tmp_path / "out").exists()
