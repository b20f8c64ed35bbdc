"""Predictions carry their model's nomenclature: ``evaluate --predictions`` scores them as
``evaluate --checkpoint`` scores the model (same classes, same excluded classes, same mIoU), and
refuses folders it cannot score that way, in one line naming a file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from flairlc import nomenclature
from flairlc.cli import main
from flairlc.evaluation import PredictionFolderError, confusion_matrix, evaluate_prediction_folder
from flairlc.training import SegmentationTask, write_prediction
from flairlc.training.checkpoint import save_task

#: The README's 3 classes for fine-tuning (FLAIR raw mask values).
THREE = nomenclature.get({
    "name": "three",
    "classes": [
        {"name": "built", "color": "#db0e9a", "mask_values": [1, 2, 3, 4, 13, 18, 19]},
        {"name": "woody", "color": "#194a26", "mask_values": [6, 7, 8, 9, 15, 16, 17]},
        {"name": "open", "color": "#55ff00", "mask_values": [5, 10, 11, 12, 14]},
    ],
})
CPU_CONFIG = Path(__file__).parents[1] / "configs" / "cpu" / "unet.yaml"


def _tif(path: Path, array: np.ndarray, tags: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=array.shape[1], height=array.shape[0], count=1, dtype="uint8",
                   crs="EPSG:2154", transform=Affine(0.2, 0.0, 800000.0, 0.0, -0.2, 6500000.0))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype(np.uint8), 1)
        if tags:
            dst.update_tags(**tags)
    return path


@pytest.fixture()
def masks(tmp_path: Path) -> dict[str, Path]:
    """Three 16×16 FLAIR masks holding every raw value 1..19."""
    rng = np.random.default_rng(3)
    return {pid: _tif(tmp_path / "labels" / f"MSK_{pid}.tif", rng.integers(1, 20, size=(16, 16)))
            for pid in ("000011", "000012", "000103")}


def _one_hot(indices: np.ndarray, k: int) -> np.ndarray:
    """float ``(K, H, W)`` probabilities that put 1 on ``indices``."""
    return (np.arange(k)[:, None, None] == indices[None]).astype(np.float32)


def _predict(folder: Path, masks: dict[str, Path], nomen: nomenclature.Nomenclature, seed: int = 0,
             excluded: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Write random predictions of ``nomen`` as ``flairlc predict`` does; patch id → indices."""
    rng = np.random.default_rng(seed)
    predicted = {}
    for pid, mask in masks.items():
        predicted[pid] = rng.integers(0, nomen.num_classes, size=(16, 16))
        write_prediction(folder, pid, mask, _one_hot(predicted[pid], nomen.num_classes), nomen, excluded=excluded)
    return predicted


def _expected_confusion(masks: dict[str, Path], predicted: dict[str, np.ndarray], nomen) -> np.ndarray:
    total = 0
    for pid, mask in masks.items():
        with rasterio.open(mask) as src:
            truth = nomenclature.raw_to_index(src.read(1), nomen)
        total = total + confusion_matrix(truth, predicted[pid], nomen.num_classes, ignore_index=255)
    return total


def test_three_class_predictions_are_scored_with_their_classes(tmp_path: Path, masks: dict[str, Path]) -> None:
    predicted = _predict(tmp_path / "pred", masks, THREE)
    with rasterio.open(tmp_path / "pred" / "PRED_000011.tif") as ds:  # the colour table, as maps
        assert ds.colormap(1)[1][:3] == THREE.classes[1].rgb
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tagged files: no warning
        result = evaluate_prediction_folder(tmp_path / "pred", masks)
    assert result.class_names == ["built", "woody", "open"] and tuple(result.exclude) == ()
    np.testing.assert_array_equal(result.confusion, _expected_confusion(masks, predicted, THREE))
    assert result.metadata["nomenclature"] == "three"


def test_nineteen_class_predictions_keep_their_excluded_classes(tmp_path: Path, masks: dict[str, Path]) -> None:
    # An imported FLAIR-INC model: 19 raw outputs, 15 predicted; its mIoU leaves out 'other' and
    # the 4 classes it never predicts (as evaluate --checkpoint does), which the file says.
    raw = nomenclature.get("raw")
    never = (14, 15, 16, 18)
    predicted = _predict(tmp_path / "pred", masks, raw, excluded=never)
    result = evaluate_prediction_folder(tmp_path / "pred", masks)
    assert result.class_names == raw.names and tuple(result.exclude) == never
    np.testing.assert_array_equal(result.confusion, _expected_confusion(masks, predicted, raw))
    # The same, given the nomenclature, is accepted; another one is refused.
    assert evaluate_prediction_folder(tmp_path / "pred", masks, nomenclature="raw").to_dict() == result.to_dict()


def test_files_without_tags_take_the_given_nomenclature_else_the_baseline_with_a_warning(
    tmp_path: Path, masks: dict[str, Path]
) -> None:
    rng = np.random.default_rng(1)
    predicted = {pid: rng.integers(0, 19, size=(16, 16)) for pid in masks}
    for pid, indices in predicted.items():
        _tif(tmp_path / "pred" / f"PRED_{pid}.tif", indices)  # another tool's: no tags
    result = evaluate_prediction_folder(tmp_path / "pred", masks, nomenclature="raw")
    assert result.class_names == nomenclature.class_names("raw") and tuple(result.exclude) == (18,)
    np.testing.assert_array_equal(result.confusion, _expected_confusion(masks, predicted, nomenclature.get("raw")))
    for pid, indices in predicted.items():
        _tif(tmp_path / "pred" / f"PRED_{pid}.tif", indices % 13)
    with pytest.warns(UserWarning, match=r"carry no nomenclature tags: scored with the baseline's 13 classes \(give --nomenclature"):
        result = evaluate_prediction_folder(tmp_path / "pred", masks)
    assert result.class_names == nomenclature.class_names("baseline")


def test_predictions_of_different_nomenclatures_are_refused_naming_a_file(tmp_path: Path, masks: dict[str, Path]) -> None:
    folder = tmp_path / "pred"
    _predict(folder, masks, THREE)
    baseline = nomenclature.get("baseline")
    write_prediction(folder, "000103", masks["000103"], _one_hot(np.zeros((16, 16), int), 13), baseline)
    with pytest.raises(PredictionFolderError) as error:
        evaluate_prediction_folder(folder, masks)
    assert str(error.value) == (
        f"{folder / 'PRED_000103.tif'} was written with the nomenclature 'baseline' (13 classes, left out of the "
        f"means: other), {folder / 'PRED_000011.tif'} with 'three' (3 classes, left out of the means: none): "
        "score each model's predictions in a folder of their own"
    )
    _tif(folder / "PRED_000103.tif", np.zeros((16, 16)))  # no tags among tagged files
    with pytest.raises(PredictionFolderError, match=r"^\S+PRED_000103.tif carries no nomenclature tags, but \S+PRED_000011.tif carries 'three'"):
        evaluate_prediction_folder(folder, masks)


def test_a_nomenclature_that_contradicts_the_tags_is_refused(tmp_path: Path, masks: dict[str, Path]) -> None:
    folder = tmp_path / "pred"
    _predict(folder, masks, THREE)
    with pytest.raises(PredictionFolderError) as error:
        evaluate_prediction_folder(folder, masks, nomenclature="baseline")
    assert str(error.value) == (
        f"{folder / 'PRED_000011.tif'} was written with the nomenclature 'three' (3 classes: built, woody, open), "
        "not the 'baseline' given (13 classes: " + ", ".join(nomenclature.class_names("baseline")) + ")"
    )


def test_values_outside_the_files_nomenclature_are_refused_naming_the_file(tmp_path: Path, masks: dict[str, Path]) -> None:
    folder = tmp_path / "pred"
    _predict(folder, masks, THREE)
    with rasterio.open(folder / "PRED_000012.tif", "r+") as ds:  # tags kept, a value of no class
        band = ds.read(1)
        band[3, 4] = 7
        ds.write(band, 1)
    with pytest.raises(PredictionFolderError) as error:
        evaluate_prediction_folder(folder, masks)
    assert f"{folder / 'PRED_000012.tif'}: values [7] outside 0..2, the classes of 'three'" in str(error.value)
    assert "PRED_000011" not in str(error.value) and "PRED_000103" not in str(error.value)


def _model(nomen: str | dict, active_classes: list[int] | None = None) -> SegmentationTask:
    return SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18", "encoder_weights": None},
                            nomenclature=nomen, active_classes=active_classes, aerial_scaling="standardize")


@pytest.mark.parametrize("nomen,active", [(THREE.to_dict(), None), ("raw", list(range(15)))], ids=["three", "raw-15"])
def test_evaluating_predictions_gives_the_checkpoints_scores(
    nomen: str | dict, active: list[int] | None, synthetic_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    # Untrained weights suffice: the property is that both ways give the same numbers.
    import torch

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    save_task(_model(nomen, active), tmp_path / "model.ckpt")
    run = ["--config", str(CPU_CONFIG), "--data.root", str(synthetic_root), "--run_dir", str(tmp_path / "run"),
           "--trainer.enable_progress_bar", "false", "--ckpt_path", str(tmp_path / "model.ckpt")]
    assert main(["predict", *run]) == 0
    common = ["evaluate", "--root", str(synthetic_root), "--accelerator", "cpu", "--devices", "1"]
    assert main([*common, "--predictions", str(tmp_path / "run" / "predictions"), "--out", "from_predictions"]) == 0
    assert main([*common, "--checkpoint", str(tmp_path / "model.ckpt"), "--out", "from_checkpoint"]) == 0
    printed = capsys.readouterr()
    assert "no nomenclature tags" not in printed.err
    by_predictions = json.loads((tmp_path / "from_predictions" / "evaluation.json").read_text())
    by_checkpoint = json.loads((tmp_path / "from_checkpoint" / "evaluation.json").read_text())
    assert by_predictions["class_names"] == nomenclature.get(nomen).names
    for key in ("class_names", "exclude", "confusion_matrix", "domain_confusion_matrices", "scores", "domain_scores"):
        assert by_predictions[key] == by_checkpoint[key], key
    assert np.asarray(by_predictions["confusion_matrix"]).sum() > 0


def test_the_nomenclature_option_is_checked_before_any_work(synthetic_root: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    common = ["evaluate", "--root", str(synthetic_root), "--out", str(tmp_path / "ev")]
    assert main([*common, "--predictions", str(tmp_path), "--nomenclature", "thirteen"]) == 2
    assert main([*common, "--checkpoint", str(tmp_path / "m.ckpt"), "--nomenclature", "raw"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[0].startswith("flairlc evaluate: error: unknown nomenclature 'thirteen': expected one of baseline, raw, cosia")
    assert errors[1] == "flairlc evaluate: error: --nomenclature goes with --predictions: a checkpoint carries its own classes"
    assert len(errors) == 2 and not (tmp_path / "ev").exists()
