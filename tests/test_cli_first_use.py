"""First use of the commands (issue 13): bad checkpoints, what synth/predict print, a territory to map.

A checkpoint that is not one is named for what it is not, in one line, by every command that
reads checkpoints (``map``, ``evaluate``, ``fit``, ``validate``, ``test``, ``predict``). ``synth``
and ``predict`` say what they wrote. ``synth-territory`` makes the inputs of ``map``, so that the
README's mapping commands run as written.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
import torch

from flairlc import nomenclature
from flairlc.cli import main
from flairlc.data import discover_patches
from flairlc.data.sentinel import SeriesPreprocessing
from flairlc.outputs import OutputError
from flairlc.training.checkpoint import CheckpointError, read_checkpoint
from flairlc.training.writer import PredictionWriter

REPO = Path(__file__).parents[1]
K = nomenclature.NUM_BASELINE_CLASSES


class _RunsCode:
    """Unpickling this would create a file: a checkpoint crafted to run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bad_checkpoints(folder: Path) -> dict[str, Path]:
    files = {
        "random bytes": np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes(),
        "text": b"hello\n",
        "empty pickle list": b"\x80\x02]q\x00.",
        "zeros": bytes(100),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = folder / f"{name.replace(' ', '_')}.ckpt"
        paths[name].write_bytes(data)
    paths["state dict"] = folder / "state_dict.pt"
    torch.save({"weight": torch.zeros(2), "bias": torch.zeros(1)}, paths["state dict"])
    paths["crafted"] = folder / "crafted.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "x": _RunsCode(folder / "code_ran")}, paths["crafted"])
    return paths


def test_a_file_that_is_no_checkpoint_is_named_for_what_it_is_not(tmp_path: Path) -> None:
    paths = _bad_checkpoints(tmp_path)
    for name, path in paths.items():
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        message = str(info.value)
        assert message.startswith(str(path)) and "\n" not in message, (name, message)
        assert "not a flairlc/Lightning checkpoint" in message, (name, message)
        if name == "crafted":
            assert "refused" in message and "system" in message
        elif name == "state dict":
            assert "bare state dict (2 tensors" in message
        else:
            assert "nor a PyTorch state dict" in message, (name, message)
    assert not (tmp_path / "code_ran").exists()


@pytest.mark.parametrize("command", ["test", "validate", "predict"])
def test_lightning_commands_refuse_a_crafted_checkpoint_in_one_line_like_map(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    crafted = _bad_checkpoints(tmp_path)["crafted"]
    config = REPO / "configs" / "cpu" / "unet.yaml"
    code = main([command, "--config", str(config), "--data.root", str(tmp_path), "--run_dir", str(tmp_path / "run"),
                 "--ckpt_path", str(crafted)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"flairlc {command}: error:")]
    assert len(lines) == 1 and "refused" in lines[0], err[-2000:]
    assert main(["map", "--checkpoint", str(crafted), "--aerial", str(tmp_path / "a.tif"), "--out", str(tmp_path / "m.tif")]) == 2
    map_line = capsys.readouterr().err.strip()
    assert map_line.split("error: ", 1)[1] == lines[0].split("error: ", 1)[1]  # the same words
    assert not (tmp_path / "code_ran").exists()


def test_synth_prints_what_a_person_reads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", str(tmp_path / "flair"), "--domains", "3", "--areas-per-domain", "1",
                 "--patches-per-area", "2", "--patch-size", "32", "--dates", "3", "--test-domains", "1"]) == 0
    out = capsys.readouterr().out
    assert "SyntheticSummary(" not in out and "PosixPath" not in out
    assert f"written to {tmp_path / 'flair'}" in out and "6 patches" in out
    assert re.search(r"train: 4 patches, 2 domains \(D\d{3}_\d{4}, D\d{3}_\d{4}\)", out), out
    assert re.search(r"test: +2 patches, 1 domains \(D\d{3}_\d{4}\)", out), out


def test_predict_says_where_and_how_many(synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    records = discover_patches(synthetic_root, splits=("test",))[:2]
    writer = PredictionWriter(output_dir=str(tmp_path / "new" / "preds"))
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(reduce=lambda value, reduce_op: value), is_global_zero=True,
        datamodule=SimpleNamespace(hparams={"predict_split": "test"}),
        predict_dataloaders=SimpleNamespace(dataset=SimpleNamespace(records=records)),
    )
    module = SimpleNamespace(hparams=SimpleNamespace(nomenclature="baseline"))
    writer.setup(trainer, module, "predict")
    assert (tmp_path / "new" / "preds").is_dir()  # created before the first batch
    prediction = {"probabilities": torch.rand(2, K, 64, 64), "index": torch.tensor([0, 1])}
    writer.write_on_batch_end(trainer, module, prediction, None, {}, 0, 0)
    writer.on_predict_end(trainer, module)
    out = capsys.readouterr().out
    assert f"2 patches of the test split written to {tmp_path / 'new' / 'preds'}" in out
    assert len(list((tmp_path / "new" / "preds").glob("PRED_*.tif"))) == 2
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputError, match="afile"):
        PredictionWriter(output_dir=str(tmp_path / "afile" / "preds")).setup(trainer, module, "predict")


class _FakeModel:
    """Stands for a trained U-T&T with the cloud filter (a deterministic per-pixel model)."""

    num_classes = K
    aerial_channels = 5
    uses_sentinel = True
    sat_patch_size = 8
    reference_date = datetime.date(2021, 5, 15)
    series_preprocessing = SeriesPreprocessing(filter_clouds=True)

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["aerial"].float() / 50.0 + batch["sentinel"].mean() / 1e4
        return torch.softmax(torch.stack([x[:, k % 5] * (1 + k % 3) for k in range(K)], dim=1), dim=1)


def test_synth_territory_then_the_readme_mapping_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["synth-territory", "territory", "--size", "160", "--years", "2019", "2022", "--dates", "4"]) == 0
    out = capsys.readouterr().out
    assert "territory" in out and "zones.gpkg" in out and "flairlc map" in out
    for year in (2019, 2022):
        folder = Path("territory") / str(year)
        assert {p.name for p in folder.iterdir()} >= {"aerial.tif", "elevation.tif", "sentinel"}
        assert len(list((folder / "sentinel").glob("*_masks.tif"))) == 4
    # The README's commands, with a stand-in for the trained model.
    monkeypatch.setattr("flairlc.inference.load_trained_model", lambda path, map_location="cpu": _FakeModel())
    Path("last.ckpt").write_bytes(b"stand-in")
    for year in (2019, 2022):
        assert main(["map", "--checkpoint", "last.ckpt", "--aerial", f"territory/{year}/aerial.tif",
                     "--elevation", f"territory/{year}/elevation.tif", "--sentinel", f"territory/{year}/sentinel",
                     "--out", f"maps/map_{year}.tif", "--window", "128", "--overlap", "32"]) == 0
    assert main(["areas", "maps/map_2022.tif", "--zones", "territory/zones.gpkg", "--zone-field", "name",
                 "--out", "areas_2022"]) == 0
    assert {z["name"] for z in json.loads(Path("areas_2022/areas.json").read_text())["zones"]} == {
        "north-west", "north-east", "south-west", "south-east"}
    capsys.readouterr()
    assert main(["change", "maps/map_2019.tif", "maps/map_2022.tif", "--out", "change/change.tif"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{"):])
    assert all(len(repr(v).split(".")[-1]) <= 6 for v in summary.values()), summary
    with rasterio.open("change/change.tif") as ds:
        assert ds.shape == (160, 160)


@pytest.mark.parametrize("missing", ["--root", "--predictions", "--checkpoint"])
def test_evaluate_refuses_a_missing_input_before_making_its_output_folder(
        tmp_path: Path, capsys, missing: str) -> None:
    """A missing dataset root, prediction folder or checkpoint: one line, and no --out folder left."""
    root, predictions = tmp_path / "root", tmp_path / "predictions"
    root.mkdir()
    predictions.mkdir()
    source = ["--checkpoint", str(tmp_path / "no.ckpt")] if missing == "--checkpoint" else \
        ["--predictions", str(tmp_path / "absent" if missing == "--predictions" else predictions)]
    given_root = tmp_path / "absent" if missing == "--root" else root
    out = tmp_path / "evaluation"
    assert main(["evaluate", "--root", str(given_root), *source, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("flairlc evaluate: error: ") and "does not exist" in err
    assert not out.exists()
