"""ONNX Runtime for mapping: the same map as PyTorch, to float rounding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
import torch

from flairlc.mapping import map_raster

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def _task(model: str = "unet", **kw):
    from flairlc.training.task import SegmentationTask

    torch.manual_seed(0)
    return SegmentationTask(model=model, **kw).eval()


def test_onnx_map_equals_torch_map(tmp_path, one_torch_thread):
    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.mapping.runtime import OnnxPredictor

    year = generate_orthophoto(tmp_path / "territory", width=384, height=384, seed=1, years=(2022,), dates=1)[0]
    # Three bands in another order and inactive classes: the scaling, band selection and masking
    # stay the task's, around the exported network.
    task = _task(model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}, bands=["NIR", "R", "G"],
                 active_classes=list(range(10)))
    maps = {}
    for name, predictor in (("torch", task), ("onnx", OnnxPredictor(task))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            map_raster(predictor, year.aerial, tmp_path / f"{name}.tif", probabilities_path=tmp_path / f"{name}_p.tif",
                       window=256, overlap=64, progress=False)
        with rasterio.open(tmp_path / f"{name}.tif") as ds, rasterio.open(tmp_path / f"{name}_p.tif") as dp:
            maps[name] = ds.read(1), dp.read().astype(int)
    (classes_torch, proba_torch), (classes_onnx, proba_onnx) = maps["torch"], maps["onnx"]
    assert np.abs(proba_torch - proba_onnx).max() <= 2  # probabilities x 255
    assert (classes_torch == classes_onnx).mean() >= 0.999
    assert classes_onnx.max() < 10  # inactive classes never win


def test_onnx_runtime_refuses_what_it_cannot_run():
    from flairlc.mapping.runtime import OnnxPredictor, with_runtime

    with pytest.raises(ValueError, match="aerial-only U-Nets.*'utt'"):
        OnnxPredictor(_task("utt"))
    with pytest.raises(ValueError, match="runtime must be one of"):
        with_runtime(_task(model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}), "tensorrt")


def test_map_jobs_load_the_runtime_of_their_spec(tmp_path):
    from flairlc.mapping.job import load_predictor
    from flairlc.mapping.runtime import OnnxPredictor
    from flairlc.training.checkpoint import save_task

    path = save_task(_task(model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}), tmp_path / "m.ckpt")
    predictor = load_predictor(path, runtime="onnx")
    assert isinstance(predictor, OnnxPredictor) and predictor.num_classes == 13 and not predictor.uses_sentinel
    assert not isinstance(load_predictor(path), OnnxPredictor)
