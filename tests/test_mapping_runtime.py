"""Mapping runtimes (torch.compile, ONNX Runtime): the same map as PyTorch, to float rounding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import torch

from flairlc.mapping import MapOptions, map_raster


def _needs_onnx() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")


def _task(model: str = "unet", **kw):
    from flairlc.training.task import SegmentationTask

    torch.manual_seed(0)
    return SegmentationTask(model=model, **kw).eval()


def _aerial_task():
    # Three bands in another order and inactive classes: the scaling, band selection and masking
    # stay the task's, around the network that the runtime runs.
    return _task(model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}, bands=["NIR", "R", "G"],
                 active_classes=list(range(10)))


def _maps(tmp_path, predictors: dict, batch_size: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Class map and probabilities x 255 of each predictor on one 384 px synthetic raster."""
    from flairlc.data.synthetic import generate_orthophoto

    year = generate_orthophoto(tmp_path / "territory", width=384, height=384, seed=1, years=(2022,), dates=1)[0]
    maps = {}
    for name, predictor in predictors.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            map_raster(predictor, year.aerial, tmp_path / f"{name}.tif", probabilities_path=tmp_path / f"{name}_p.tif",
                       options=MapOptions(window=256, overlap=64, batch_size=batch_size), progress=False)
        with rasterio.open(tmp_path / f"{name}.tif") as ds, rasterio.open(tmp_path / f"{name}_p.tif") as dp:
            maps[name] = ds.read(1), dp.read().astype(int)
    return maps


def _assert_same_map(reference: tuple[np.ndarray, np.ndarray], other: tuple[np.ndarray, np.ndarray]) -> None:
    (classes_ref, proba_ref), (classes, proba) = reference, other
    assert np.abs(proba_ref - proba).max() <= 2  # probabilities x 255
    assert (classes_ref == classes).mean() >= 0.999
    assert classes.max() < 10  # inactive classes never win


def test_onnx_map_equals_torch_map(tmp_path, one_torch_thread):
    _needs_onnx()
    from flairlc.mapping.runtime import OnnxPredictor

    task = _aerial_task()
    maps = _maps(tmp_path, {"torch": task, "onnx": OnnxPredictor(task)})
    _assert_same_map(maps["torch"], maps["onnx"])


def test_compiled_map_equals_torch_map(tmp_path):
    from flairlc.mapping.runtime import with_runtime

    task = _aerial_task()
    compiled = _aerial_task()
    compiled.load_state_dict(task.state_dict())
    assert with_runtime(compiled, "compile") is compiled
    # 2 x 2 windows in batches of 2, across window rows: one compilation.
    maps = _maps(tmp_path, {"torch": task, "compile": compiled}, batch_size=2)
    _assert_same_map(maps["torch"], maps["compile"])
    assert compiled.net._compiled_call_impl is not None


def test_onnx_runtime_refuses_what_it_cannot_run():
    _needs_onnx()
    from flairlc.mapping.runtime import OnnxPredictor, with_runtime

    with pytest.raises(ValueError, match="aerial-only U-Nets.*'utt'"):
        OnnxPredictor(_task("utt"))
    with pytest.raises(ValueError, match="runtime must be one of"):
        with_runtime(_task(model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}), "tensorrt")


def test_map_jobs_load_the_runtime_of_their_spec(tmp_path):
    _needs_onnx()
    from flairlc.mapping.job import load_predictor
    from flairlc.mapping.runtime import OnnxPredictor
    from flairlc.training.checkpoint import save_task

    path = save_task(_task(model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}), tmp_path / "m.ckpt")
    predictor = load_predictor(path, runtime="onnx")
    assert isinstance(predictor, OnnxPredictor) and predictor.num_classes == 13 and not predictor.uses_sentinel
    assert not isinstance(load_predictor(path), OnnxPredictor)
