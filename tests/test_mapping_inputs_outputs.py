"""Mapping inputs that do not fit and outputs that cannot be written (issue 13).

Every input of ``map`` is checked before any inference: coverage of the aerial image by the
elevation raster and each Sentinel-2 date (``coverage_policy``), resolution (``resolution_policy``),
the cloud masks a model needs; every output is checked writable before any inference. Sentinel-2
windows past the edge of the series repeat its edge pixels, as the dataset does, so a patch mapped
with a folder made from its own super-area gets the dataset's probabilities.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from conftest import flairlc_command, make_read_only
from raster_helpers import L93, ORIGIN_X, ORIGIN_Y, K
from raster_helpers import read_band as _read
from raster_helpers import write_raster as _write

from flairlc import nomenclature
from flairlc.cli import main
from flairlc.data import FlairDataset, discover_patches
from flairlc.data.collate import collate_flair
from flairlc.data.sentinel import SeriesPreprocessing, SuperAreaPaths, read_products, window_slice
from flairlc.mapping import (
    CoverageError,
    MapOptions,
    MappingInputError,
    SentinelSeries,
    compute_areas,
    compute_change,
    map_raster,
)
from flairlc.outputs import OutputError
from flairlc.training import SegmentationTask

pytestmark = pytest.mark.usefixtures("one_torch_thread")
NAMES = ["SENTINEL2A_20210415-105852-000_L2A_T31TFJ_C_V2-2", "SENTINEL2B_20210815-105852-000_L2A_T31TFJ_C_V2-2"]
SMALL_UTAE = {"encoder_widths": [16, 16, 32, 32], "decoder_widths": [16, 16, 32, 32], "n_head": 4, "d_model": 32}



class FakePredictor:
    """A deterministic per-pixel model; counts its calls (so a test can see no inference ran)."""

    num_classes = K
    aerial_channels = 5
    sat_patch_size = 8
    reference_date = datetime.date(2021, 5, 15)

    def __init__(self, uses_sentinel: bool = False, filter_clouds: bool = False) -> None:
        self.uses_sentinel = uses_sentinel
        self.series_preprocessing = SeriesPreprocessing(filter_clouds=filter_clouds)
        self.calls = 0

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        x = batch["aerial"].float() / 50.0
        logits = torch.stack([x[:, k % 5] * (1 + k % 3) - k / 4 for k in range(K)], dim=1)
        return torch.softmax(logits, dim=1)


def _aerial(path: Path, size: int = 128, bands: int = 5) -> Path:
    rng = np.random.default_rng(0)
    return _write(path, rng.integers(0, 256, (bands, size, size), dtype=np.uint8))


def _series(folder: Path, left: float, top: float, size: int = 60, masks: bool = True, pixel_m: float = 10.0) -> Path:
    """Two dates of a 10-band series whose pixel (r, c) holds r * 200 + c, with masks."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, cols = np.mgrid[0:size, 0:size]
    code = (rows * 200 + cols).astype(np.uint16)
    transform = Affine(pixel_m, 0, left, 0, -pixel_m, top)
    for name in NAMES:
        _write(folder / f"{name}.tif", np.repeat(code[None], 10, axis=0), transform)
        if masks:
            _write(folder / f"{name}_masks.tif", np.zeros((2, size, size), np.uint8), transform)
    return folder


def _covering_series(folder: Path, **kwargs) -> Path:
    """A series around the aerial image (300 m of margin)."""
    return _series(folder, ORIGIN_X - 300.0, ORIGIN_Y + 300.0, **kwargs)


# --- coverage ------------------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["error", "warn"])
def test_sentinel_series_far_from_the_aerial_image_is_refused(tmp_path: Path, policy: str) -> None:
    far = _series(tmp_path / "far", ORIGIN_X + 400_000.0, ORIGIN_Y + 300.0)  # 400 km east
    pred = FakePredictor(uses_sentinel=True)
    with pytest.raises(CoverageError) as info:
        map_raster(pred, _aerial(tmp_path / "a.tif"), tmp_path / "m.tif", sentinel_dir=far,
                   options=MapOptions(coverage_policy=policy), progress=False)
    message = str(info.value)
    assert "does not overlap" in message and NAMES[0] in message and "EPSG:2154" in message
    assert "1050000.0" in message and "650000.0" in message  # both extents
    assert pred.calls == 0 and not (tmp_path / "m.tif").exists()


def test_partial_sentinel_coverage_is_refused_or_mapped_where_covered(tmp_path: Path) -> None:
    aerial = _aerial(tmp_path / "a.tif")  # 25.6 m wide
    # The series ends 10 m east of the aerial image's west edge: about 40 % of it is covered.
    half = _series(tmp_path / "half", ORIGIN_X - 590.0, ORIGIN_Y + 300.0)
    with pytest.raises(CoverageError, match=r"covers only \d+ % of the aerial image.*--coverage-policy warn"):
        map_raster(FakePredictor(uses_sentinel=True), aerial, tmp_path / "m.tif", sentinel_dir=half, progress=False)
    with pytest.warns(UserWarning, match="covers only .* nodata outside"):
        res = map_raster(FakePredictor(uses_sentinel=True), aerial, tmp_path / "m.tif", sentinel_dir=half,
                         options=MapOptions(window=64, overlap=16, coverage_policy="warn"), progress=False)
    classes = _read(res.map_path)
    assert (classes[:, :45] < K).all() and (classes[:, 55:] == nomenclature.NODATA_VALUE).all()


def test_partial_elevation_coverage_follows_the_policy(tmp_path: Path) -> None:
    four = _aerial(tmp_path / "four.tif", bands=4)
    west = _write(tmp_path / "elev.tif", np.full((1, 128, 64), 7, np.uint8))  # the west half only
    with pytest.raises(CoverageError, match="elev.tif.*covers only 50 %.*EPSG:2154"):
        map_raster(FakePredictor(), four, tmp_path / "m.tif", elevation_path=west, progress=False)
    with pytest.warns(UserWarning, match="elev.tif.*covers only 50 %"):
        res = map_raster(FakePredictor(), four, tmp_path / "m.tif", elevation_path=west,
                         options=MapOptions(window=64, overlap=16, coverage_policy="warn"), progress=False)
    classes = _read(res.map_path)
    assert (classes[:, :64] < K).all() and (classes[:, 64:] == nomenclature.NODATA_VALUE).all()


def test_cloud_filter_model_without_masks_is_refused_or_warned(tmp_path: Path) -> None:
    aerial = _aerial(tmp_path / "a.tif")
    bare = _covering_series(tmp_path / "s2", masks=False)
    with pytest.raises(MappingInputError, match="cloud filter.*2 of the 2 dates.*_masks.tif"):
        map_raster(FakePredictor(uses_sentinel=True, filter_clouds=True), aerial, tmp_path / "m.tif",
                   sentinel_dir=bare, progress=False)
    with pytest.warns(UserWarning, match="without the cloud filter"):
        map_raster(FakePredictor(uses_sentinel=True, filter_clouds=True), aerial, tmp_path / "m.tif",
                   sentinel_dir=bare, options=MapOptions(coverage_policy="warn"), progress=False)
    # A model trained without the filter needs no masks.
    map_raster(FakePredictor(uses_sentinel=True), aerial, tmp_path / "n.tif", sentinel_dir=bare, progress=False)


# --- resolution ----------------------------------------------------------------------------------

def test_elevation_and_sentinel_resolution_follow_the_resolution_policy(tmp_path: Path) -> None:
    four = _aerial(tmp_path / "four.tif", bands=4)
    elev_1m = _write(tmp_path / "elev_1m.tif", np.full((1, 26, 26), 9, np.uint8),
                     Affine(1.0, 0, ORIGIN_X, 0, -1.0, ORIGIN_Y))
    with pytest.raises(MappingInputError, match="elev_1m.tif has 1 x 1 m pixels.*--resolution-policy resample"):
        map_raster(FakePredictor(), four, tmp_path / "m.tif", elevation_path=elev_1m,
                   options=MapOptions(resolution_policy="error"), progress=False)
    with pytest.warns(UserWarning, match="elev_1m.tif has 1 x 1 m pixels: resampling"):
        map_raster(FakePredictor(), four, tmp_path / "m.tif", elevation_path=elev_1m, progress=False)
    s2_20m = _series(tmp_path / "s2_20m", ORIGIN_X - 300.0, ORIGIN_Y + 300.0, size=30, pixel_m=20.0)
    with pytest.raises(MappingInputError, match="Sentinel-2 file .* 20 x 20 m pixels"):
        map_raster(FakePredictor(uses_sentinel=True), _aerial(tmp_path / "a.tif"), tmp_path / "m.tif",
                   sentinel_dir=s2_20m, options=MapOptions(resolution_policy="error"), progress=False)


def test_resolution_hint_names_the_command_line_flag(tmp_path: Path) -> None:
    coarse = _write(tmp_path / "coarse.tif", np.zeros((5, 40, 40), np.uint8) + 9,
                    Affine(0.5, 0, ORIGIN_X, 0, -0.5, ORIGIN_Y))
    with pytest.raises(MappingInputError) as info:
        map_raster(FakePredictor(), coarse, tmp_path / "m.tif",
                   options=MapOptions(resolution_policy="error"), progress=False)
    assert "--resolution-policy resample" in str(info.value)
    assert "resolution_policy=" not in str(info.value)


# --- Sentinel-2 windows past the edge: as the dataset --------------------------------------------

@pytest.mark.parametrize("centre", [(2, 3), (0, 0), (57, 58), (59, 1), (30, 59), (-3, 20), (62, 64)])
def test_window_past_the_series_edge_repeats_edge_pixels_as_the_dataset(tmp_path: Path, centre) -> None:
    folder = tmp_path / "s2"
    _series(folder, ORIGIN_X, ORIGIN_Y)
    rows, cols = np.mgrid[0:60, 0:60]
    code = np.repeat((rows * 200 + cols).astype(np.uint16)[None, None], 2, axis=0).repeat(10, axis=1)
    row, col = centre
    series = SentinelSeries(folder, L93, datetime.date(2021, 5, 15))
    try:
        x, y = ORIGIN_X + (col + 0.5) * 10, ORIGIN_Y - (row + 0.5) * 10
        got = series.read_window(x, y, 16)
        masks = series.read_masks_window(x, y, 16)
    finally:
        series.close()
    clipped = (min(max(row, 0), 59), min(max(col, 0), 59))  # the dataset needs the centre inside
    expected = window_slice(code, *clipped, 16) if clipped == centre else None
    if expected is not None:
        np.testing.assert_array_equal(got, expected)
    # Everywhere: each pixel is the nearest pixel of the raster (edge repetition, never zeros).
    r = np.clip(np.arange(row - 8, row + 8), 0, 59)
    c = np.clip(np.arange(col - 8, col + 8), 0, 59)
    np.testing.assert_array_equal(got[0, 0], r[:, None] * 200 + c[None, :])
    assert masks.shape == (2, 2, 16, 16)


def _series_folder_from_super_area(folder: Path, data: np.ndarray, masks: np.ndarray, products: list[str],
                                   centre_xy: tuple[float, float], centroid: tuple[int, int]) -> Path:
    """GeoTIFFs of a super-area placed so that the point ``centre_xy`` falls in pixel ``centroid``."""
    folder.mkdir(parents=True)
    (cx, cy), (row, col) = centre_xy, centroid
    transform = Affine(10.0, 0, cx - (col + 0.5) * 10.0, 0, -10.0, cy + (row + 0.5) * 10.0)
    for t, name in enumerate(products):
        _write(folder / f"{name}.tif", np.ascontiguousarray(data[t]), transform)
        _write(folder / f"{name}_masks.tif", np.ascontiguousarray(masks[t]), transform)
    return folder


class _Recording:
    """A predictor that keeps the probabilities it returns."""

    def __init__(self, task: SegmentationTask) -> None:
        self.task, self.outputs = task, []

    def __getattr__(self, name: str):
        return getattr(self.task, name)

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        proba = self.task.predict_proba(batch)
        self.outputs.append(proba.clone())
        return proba


@pytest.mark.parametrize("crop", [False, True], ids=["inside", "past_the_edge"])
def test_mapped_patch_gets_the_dataset_probabilities(synthetic_root: Path, tmp_path: Path, crop: bool) -> None:
    """A patch mapped with a folder made from its super-area: the dataset path's probabilities.

    ``past_the_edge`` crops the super-area so that the 16-pixel window runs past every edge:
    the dataset repeats edge pixels there, and so must the mapper.
    """
    record = discover_patches(synthetic_root, splits=("train",))[0]
    data, masks = np.load(record.sentinel.data), np.load(record.sentinel.masks)
    row, col = record.centroid
    if crop:  # 7 x 9 pixels around the centroid: the window of 16 leaves them on every side
        data, masks = data[..., row - 3 : row + 4, col - 4 : col + 5], masks[..., row - 3 : row + 4, col - 4 : col + 5]
        row, col = 3, 4
        paths = SuperAreaPaths(tmp_path / "data.npy", tmp_path / "masks.npy", record.sentinel.products)
        np.save(paths.data, data)
        np.save(paths.masks, masks)
        files = dict(record.files, sentinel=paths.data, sentinel_masks=paths.masks)
        record = dataclasses.replace(record, files=files, centroid=(row, col))
    settings = dict(sat_patch_size=16, filter_clouds=True, average_monthly=True)
    torch.manual_seed(0)
    task = SegmentationTask(model="utae", model_kwargs=SMALL_UTAE, **settings).eval()
    dataset = FlairDataset([record], modalities=("aerial", "sentinel"), **settings)
    with torch.inference_mode():
        expected = task.predict_proba(collate_flair([dataset[0]]))
    with rasterio.open(record.aerial_path) as ds:
        left, bottom, right, top = ds.bounds
        size = ds.width
    folder = _series_folder_from_super_area(
        tmp_path / "s2", data, masks, read_products(record.sentinel.products),
        ((left + right) / 2, (bottom + top) / 2), (row, col),
    )
    predictor = _Recording(task)
    map_raster(predictor, record.aerial_path, tmp_path / "m.tif", sentinel_dir=folder,
               options=MapOptions(window=size, overlap=0), progress=False)
    (got,) = predictor.outputs
    difference = (got - expected).abs().max().item()
    assert difference <= 1e-6, difference  # 0 measured; float32 leeway for other summation orders


# --- outputs -------------------------------------------------------------------------------------

def test_outputs_are_checked_before_any_inference(tmp_path: Path) -> None:
    aerial = _aerial(tmp_path / "a.tif")
    (tmp_path / "afile").write_text("not a folder")
    pred = FakePredictor()
    with pytest.raises(OutputError, match="afile.*is a file, not a folder"):
        map_raster(pred, aerial, tmp_path / "m.tif", probabilities_path=tmp_path / "afile" / "p.tif", progress=False)
    assert pred.calls == 0 and not list(tmp_path.glob("m.tif*"))
    with pytest.raises(MappingInputError, match="is an input"):
        map_raster(pred, aerial, aerial, progress=False)
    # A folder that does not exist is created, for the map and the probabilities alike.
    res = map_raster(pred, aerial, tmp_path / "new" / "m.tif", probabilities_path=tmp_path / "other" / "p.tif",
                     options=MapOptions(window=64, overlap=16), progress=False)
    assert res.map_path.exists() and res.probabilities_path.exists()


def test_map_command_checks_vector_output_before_inference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    pred = FakePredictor()
    monkeypatch.setattr("flairlc.inference.load_trained_model", lambda path, map_location="cpu": pred)
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"stand-in: load_trained_model is replaced")
    (tmp_path / "afile").write_text("not a folder")
    aerial = _aerial(tmp_path / "a.tif")
    common = ["map", "--checkpoint", str(checkpoint), "--aerial", str(aerial), "--out", str(tmp_path / "m.tif")]
    for bad in (["--vector", str(tmp_path / "afile" / "v.gpkg")], ["--probabilities", str(tmp_path / "afile" / "p.tif")]):
        assert main([*common, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("flairlc map: error:") and "afile" in err and "\n" not in err
    assert pred.calls == 0 and not list(tmp_path.glob("m.tif*"))
    assert main([*common, "--vector", str(tmp_path / "vec" / "v.gpkg"), "--window", "64",
                 "--overlap", "16"]) == 0
    assert (tmp_path / "vec" / "v.gpkg").is_file() and (tmp_path / "m.tif").is_file()


def _class_map(path: Path, data: np.ndarray) -> Path:
    _write(path, data[None].astype(np.uint8), nodata=255)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(FLAIRLC_NOMENCLATURE="baseline")
    return path


def test_change_into_a_missing_folder_and_areas_without_float_noise(tmp_path: Path) -> None:
    a = np.full((100, 100), 10, np.uint8)  # agricultural land
    b = a.copy()
    b.ravel()[:3797] = 0  # 3 797 pixels become building: 0.015188 ha
    ma, mb = _class_map(tmp_path / "a.tif", a), _class_map(tmp_path / "b.tif", b)
    res = compute_change(ma, mb, tmp_path / "missing" / "deeper" / "change.tif")
    assert res.change_path.is_file()
    text = (tmp_path / "missing" / "deeper" / "change.json").read_text()
    summary = json.loads(text)["summary"]
    assert summary["newly_artificialized_ha"] == 0.015188 and "0.0151879999" not in text
    assert all(len(repr(v).split(".")[-1]) <= 6 for row in json.loads(text)["matrix_ha"] for v in row)
    areas = json.loads((compute_areas(mb, out_dir=tmp_path / "areas").paths["json"]).read_text())
    building = areas["overall"]["classes"][0]
    assert building["area_ha"] == 0.015188 and building["area_m2"] == 151.88
    with pytest.raises(MappingInputError, match="would replace the input map"):
        compute_change(ma, mb, ma)


def test_read_only_output_folder_is_one_line_not_a_traceback(tmp_path: Path, without_write_permission: list[str]) -> None:
    a = _class_map(tmp_path / "a.tif", np.full((64, 64), 3, np.uint8))
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    make_read_only(read_only)
    try:
        result = subprocess.run([*without_write_permission, *flairlc_command(), "change", str(a), str(a), "--out", str(read_only / "c.tif")],
                                capture_output=True, text=True, timeout=120)
    finally:
        read_only.chmod(0o755)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("flairlc change: error:")]
    assert len(lines) == 1 and "read_only" in lines[0] and "permission denied" in lines[0], result.stderr
