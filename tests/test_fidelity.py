"""Fidelity to the official FLAIR-2 code: the ``"paper"`` profile reproduces it, ``"flairlc"`` fixes it.

Every case is built by hand (masks, series, metadata) so that the expected outcome can be read off
the official rules written out in ``docs/fidelity.md``; each row of that table names its test here.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import rasterio
import torch
import yaml
from affine import Affine

from flairlc.data import FlairDataError, FlairDataset, discover_patches, read_mask
from flairlc.data.metadata import GEO_MAX_WAVELENGTH_M, encode_metadata, encode_position
from flairlc.data.sentinel import (
    CLOUD_CHANNEL,
    PROFILES,
    REFERENCE_DATE,
    SNOW_CHANNEL,
    SeriesPreprocessing,
    SuperArea,
    cloud_cover,
    dates_to_days,
    filter_cloudy_dates,
    get_profile,
)
from flairlc.data.synthetic import generate_dataset
from flairlc.data.synthetic.scene import HERBACEOUS, Grid
from flairlc.data.synthetic.sentinel import N_TABLE, render_series
from flairlc.evaluation import evaluate_prediction_folder, runner
from flairlc.inference.scaling import UINT16_MAX, InputScaler
from flairlc.mapping import MapOptions, map_raster
from flairlc.mapping.inputs import SentinelSeries
from flairlc.models import create_model
from flairlc.training import (
    CheckpointError,
    FlairDataModule,
    SegmentationTask,
    load_task,
    read_checkpoint,
)
from flairlc.training.task import check_data_fits

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMALL_UTAE = {"encoder_widths": [16, 16, 32, 32], "decoder_widths": [16, 16, 32, 32], "n_head": 4, "d_model": 32}
L93 = rasterio.crs.CRS.from_epsg(2154)
METADATA = {
    "patch_centroid_x": 951000.5, "patch_centroid_y": 6342000.25, "patch_centroid_z": 632.7,
    "date": "2021-07-16", "time": "10h35", "camera": "UCE-M3-f120",
}


def _masks(snow: np.ndarray | None = None, cloud: np.ndarray | None = None, size: int = 10) -> np.ndarray:
    """One date's uint8 ``(1, 2, size, size)`` snow and cloud probabilities from boolean maps (→ 100)."""
    masks = np.zeros((1, 2, size, size), dtype=np.uint8)
    if snow is not None:
        masks[0, SNOW_CHANNEL][snow] = 100
    if cloud is not None:
        masks[0, CLOUD_CHANNEL][cloud] = 100
    return masks


def _rows(fraction: float, size: int = 10) -> np.ndarray:
    """Boolean ``(size, size)`` map with the first ``fraction`` of rows True."""
    covered = np.zeros((size, size), dtype=bool)
    covered[: round(fraction * size)] = True
    return covered


# --- cloud filter ---------------------------------------------------------------------------------

def test_snow_and_cloud_on_the_same_pixels_count_twice_in_the_paper_profile() -> None:
    # 40 % snow and 40 % cloud on the same pixels: official cover 0.8 (drop), flairlc 0.4 (keep).
    masks = _masks(snow=_rows(0.4), cloud=_rows(0.4))
    assert cloud_cover(masks, 60, "sum").tolist() == [0.8]
    assert cloud_cover(masks, 60, "union").tolist() == [0.4]
    both = np.concatenate([_masks(), masks])  # date 0 clear, date 1 the case
    paper, flairlc = get_profile("paper"), get_profile("flairlc")
    assert filter_cloudy_dates(both, 0.5, 60, paper.cover_count, paper.cover_strict).tolist() == [0]
    assert filter_cloudy_dates(both, 0.5, 60, flairlc.cover_count, flairlc.cover_strict).tolist() == [0, 1]


def test_exactly_half_covered_is_dropped_by_the_paper_profile_kept_by_flairlc() -> None:
    for case in (_masks(cloud=_rows(0.5)), _masks(snow=_rows(0.5)), _masks(snow=_rows(0.3), cloud=~_rows(0.8))):
        both = np.concatenate([_masks(), case])
        assert cloud_cover(case, 60, "sum").tolist() == cloud_cover(case, 60, "union").tolist() == [0.5]
        assert filter_cloudy_dates(both, 0.5, 60, "sum", strict=True).tolist() == [0]
        assert filter_cloudy_dates(both, 0.5, 60, "union", strict=False).tolist() == [0, 1]


def test_probability_threshold_is_inclusive_at_60_in_both_profiles() -> None:
    # The official filter counts a pixel when its probability is >= 60 (proba_threshold=60).
    at = np.full((1, 2, 4, 4), 0, dtype=np.uint8)
    at[0, CLOUD_CHANNEL] = 60
    below = at.copy()
    below[0, CLOUD_CHANNEL] = 59
    for count in ("sum", "union"):
        assert cloud_cover(at, 60, count).tolist() == [1.0]
        assert cloud_cover(below, 60, count).tolist() == [0.0]


def test_series_preprocessing_applies_each_profile_rule() -> None:
    dates = [dt.date(2021, 4, 15), dt.date(2021, 6, 10), dt.date(2021, 8, 15)]
    masks = np.concatenate([_masks(), _masks(snow=_rows(0.4), cloud=_rows(0.4)), _masks(cloud=_rows(0.5))])
    data = np.arange(3, dtype=np.uint16)[:, None, None, None] * np.ones((3, 10, 10, 10), dtype=np.uint16)
    paper = SeriesPreprocessing(filter_clouds=True, profile="paper")
    flairlc = SeriesPreprocessing(filter_clouds=True, profile="flairlc")
    series, days = paper.apply(data, masks, dates)
    assert series[:, 0, 0, 0].tolist() == [0.0] and days.tolist() == [30]  # reference - date
    series, days = flairlc.apply(data, masks, dates)
    assert series[:, 0, 0, 0].tolist() == [0.0, 1.0, 2.0] and days.tolist() == [-30, 26, 92]


def test_paper_profile_never_drops_every_date() -> None:
    # The official code fails on an empty series; both profiles keep the least covered date.
    masks = np.concatenate([_masks(snow=_rows(0.5), cloud=_rows(0.5)), _masks(cloud=_rows(0.6))])
    assert cloud_cover(masks, 60, "sum").tolist() == [1.0, 0.6]
    assert filter_cloudy_dates(masks, 0.5, 60, "sum", strict=True).tolist() == [1]


# --- channel order of the masks ----------------------------------------------------------------

def test_generator_writes_snow_in_channel_0_and_cloud_in_channel_1() -> None:
    """Read by spectrum: snow is dark in SWIR (B11 ≪ B2), clouds are not (real ``_masks.npy`` order)."""
    size = 40
    grid = Grid(700_000.0, 6_603_000.0, size, size, 10.0)
    fractions = np.zeros((N_TABLE, size, size), dtype=np.float32)
    fractions[HERBACEOUS] = 1.0
    winter = [dt.date(2021, 1, day) for day in range(1, 31)]
    summer = [dt.date(2021, 7, day) for day in range(1, 31)]
    data, masks = render_series(
        fractions, np.zeros((size, size), np.float32), winter + summer, grid, np.random.default_rng(0), seed=0
    )
    snow, cloud = masks[:, SNOW_CHANNEL] >= 90, masks[:, CLOUD_CHANNEL] >= 90
    assert snow.any() and cloud.any()
    assert not snow[len(winter):].any()  # the generator puts snow in deep winter only
    swir_over_blue = data[:, 8].astype(np.float64) / np.maximum(data[:, 0], 1)
    assert swir_over_blue[snow].mean() < 0.3 < 0.6 < swir_over_blue[cloud].mean()


def test_synthetic_dataset_and_reader_agree_on_the_channel_order(fidelity_root: Path) -> None:
    record = discover_patches(fidelity_root, splits=("train",))[0]
    super_area = SuperArea(record.sentinel)
    masks = np.asarray(super_area.masks)
    np.testing.assert_array_equal(masks, np.load(record.sentinel.masks))
    deep_winter = np.array([d.timetuple().tm_yday < 60 or d.timetuple().tm_yday > 340 for d in super_area.dates])
    assert not masks[~deep_winter, SNOW_CHANNEL].any()  # snow channel: winter only
    assert masks[:, CLOUD_CHANNEL].any()


def test_mapping_reads_snow_from_band_1_and_cloud_from_band_2(tmp_path: Path) -> None:
    name = "SENTINEL2A_20210415-105852-000_L2A_T31TFJ_C_V2-2"
    transform = Affine(10, 0, 650_000.0, 0, -10, 6_860_000.0)
    _write(tmp_path / f"{name}.tif", np.ones((10, 20, 20), np.uint16), transform)
    masks = np.stack([np.full((20, 20), 11, np.uint8), np.full((20, 20), 22, np.uint8)])
    _write(tmp_path / f"{name}_masks.tif", masks, transform)
    series = SentinelSeries(tmp_path, L93, REFERENCE_DATE)
    try:
        window = series.read_masks_window(650_100.0, 6_859_900.0, 8)
    finally:
        series.close()
    assert (window[:, SNOW_CHANNEL] == 11).all() and (window[:, CLOUD_CHANNEL] == 22).all()


# --- Sentinel-2 scaling -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("profile", "monthly", "explicit", "mode"),
    [
        ("paper", True, None, "raw"),  # row 4: float64 monthly means pass img_as_float unchanged
        ("paper", False, None, "unit"),  # rows without averaging: uint16 / 65 535
        ("flairlc", True, None, "unit"),
        ("flairlc", False, None, "unit"),
        ("paper", True, "reflectance", "reflectance"),  # an explicit choice wins
    ],
)
def test_sentinel_scaling_follows_the_profile_per_row(profile, monthly, explicit, mode) -> None:
    task = SegmentationTask(model="utae", model_kwargs=SMALL_UTAE, profile=profile, average_monthly=monthly,
                            sentinel_scaling=explicit)
    assert task.sentinel_scaler.mode == mode


def test_raw_scaling_feeds_monthly_means_as_reflectance_x10000() -> None:
    data = np.array([1000, 3000], dtype=np.uint16)[:, None, None, None] * np.ones((2, 10, 2, 2), np.uint16)
    dates = [dt.date(2021, 4, 3), dt.date(2021, 4, 20)]
    series, days = SeriesPreprocessing(average_monthly=True, profile="paper").apply(data, None, dates)
    assert days.tolist() == [30]  # reference - 15 April
    raw = InputScaler("raw", 10)(torch.from_numpy(series))
    unit = InputScaler("unit", 10, UINT16_MAX)(torch.from_numpy(series))
    assert raw.unique().tolist() == [2000.0]
    assert unit.unique().tolist() == pytest.approx([2000.0 / 65535.0])


# --- dates -----------------------------------------------------------------------------------------

def test_date_offsets_are_reference_minus_date_in_the_paper_profile() -> None:
    dates = [dt.date(2021, 4, 15), dt.date(2021, 8, 15), dt.date(2019, 5, 16)]
    assert dates_to_days(dates, REFERENCE_DATE, sign=-1).tolist() == [30, -92, -1]
    assert dates_to_days(dates, REFERENCE_DATE).tolist() == [-30, 92, 1]
    assert get_profile("paper").date_sign == -1 and get_profile("flairlc").date_sign == 1
    with pytest.raises(ValueError, match="sign"):
        dates_to_days(dates, REFERENCE_DATE, sign=0)


def test_dataset_dates_and_metadata_follow_the_profile(fidelity_root: Path) -> None:
    records = discover_patches(fidelity_root, splits=("train",))[:1]
    kwargs = dict(modalities=("sentinel", "metadata"), sat_patch_size=16)
    paper = FlairDataset(records, profile="paper", **kwargs)[0]
    flairlc = FlairDataset(records, **kwargs)[0]
    np.testing.assert_array_equal(paper["dates_days"], -flairlc["dates_days"])
    np.testing.assert_array_equal(paper["sentinel"], flairlc["sentinel"])  # no filter, no average
    entry = records[0].metadata
    np.testing.assert_array_equal(paper["metadata"], encode_metadata(entry, 32, "official"))
    np.testing.assert_array_equal(flairlc["metadata"], encode_metadata(entry, 32, "log"))
    with pytest.raises(ValueError, match="unknown preprocessing profile"):
        FlairDataset(records, profile="official", **kwargs)


# --- metadata: centroid encoding ----------------------------------------------------------------

def _xy(x: float, y: float) -> np.ndarray:
    return encode_metadata({**METADATA, "patch_centroid_x": x, "patch_centroid_y": y})[:32].astype(np.float64)


def test_log_encoding_separates_patches_1_km_and_100_km_apart() -> None:
    x, y = 700_000.0, 6_600_000.0
    for dx, dy in ((1_000.0, 0.0), (0.0, 1_000.0), (100_000.0, 0.0), (0.0, 100_000.0), (700.0, 700.0)):
        assert np.linalg.norm(_xy(x + dx, y + dy) - _xy(x, y)) > 1.0, (dx, dy)


def test_log_encoding_is_unambiguous_across_france() -> None:
    # Any two points of a 1 km grid over France's x range (and y range) get distinct vectors.
    for values in (np.arange(135_000.0, 1_081_000.0, 1_000.0), np.arange(6_157_000.0, 7_111_000.0, 1_000.0)):
        vectors = np.stack([encode_position(v, 16) for v in values])
        distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
        np.fill_diagonal(distances, np.inf)
        assert distances.min() > 1.0
        assert np.ptp(values) < GEO_MAX_WAVELENGTH_M  # one turn of the longest wavelength spans France


def test_log_encoding_varies_smoothly_within_a_patch() -> None:
    x, y = 812_345.0, 6_543_210.0
    assert np.abs(_xy(x + 1.0, y) - _xy(x, y)).max() < 0.01  # 1 m apart: nearly equal
    steps = np.stack([_xy(x + d, y + d) for d in np.arange(-51.2, 51.3, 0.8)])  # across a 102.4 m patch
    assert np.abs(np.diff(steps, axis=0)).max() < 0.01


def test_official_encoding_reproduces_the_official_formula() -> None:
    # Official: d = 16 values per coordinate, angles (v / 1e8) * 1 / (1e8 ** (2 i / d)), i = 0..7,
    # sines at even positions, cosines at odd ones; x first, then y.
    x, y = METADATA["patch_centroid_x"], METADATA["patch_centroid_y"]
    expected = np.zeros(32)
    for offset, value in ((0, x), (16, y)):
        for i in range(8):
            angle = (value / 1e8) * (1.0 / (1e8 ** (2 * i / 16)))
            expected[offset + 2 * i] = math.sin(angle)
            expected[offset + 2 * i + 1] = math.cos(angle)
    vector = encode_metadata(METADATA, 32, "official")
    np.testing.assert_allclose(vector[:32], expected, rtol=1e-6)
    np.testing.assert_array_equal(vector[32:], encode_metadata(METADATA, 32, "log")[32:])  # rest shared
    # Nearly constant over France: two patches 100 km apart differ by about 1e-3.
    far = encode_metadata({**METADATA, "patch_centroid_x": x + 100_000.0}, 32, "official")
    assert np.abs(far[:32] - vector[:32]).max() < 2e-3
    assert SeriesPreprocessing(profile="paper").geo_encoding == "official"
    assert SeriesPreprocessing().geo_encoding == "log"


# --- differences that stay in both profiles (fixes) ---------------------------------------------

def test_metadata_differences_that_stay() -> None:
    vector = encode_metadata({**METADATA, "date": "2021-07-01", "time": "12h00"})
    assert vector[41:43].tolist() == [0.0, 1.0]  # day angle 2π (day - 1) / 31 (official: 2π day / 31)
    np.testing.assert_allclose(vector[43:45], [0.0, -1.0], atol=1e-6)  # in [-1, 1] (official: (v + 1) / 2)
    assert vector[32] == np.float32(632.7 / 3164.9)  # official divisor 3164.9099121094
    assert encode_metadata({**METADATA, "camera": "uce-m3"})[33:35].tolist() == [1.0, 0.0]  # prefix, any case
    assert encode_metadata({**METADATA, "camera": "CAM-UCE"})[33:35].tolist() == [0.0, 1.0]  # official: 'UCE' in
    assert encode_metadata({**METADATA, "date": "2017-07-16"})[35:39].tolist() == [0.0] * 4  # official: fails


def test_monthly_average_keeps_the_same_month_of_two_years_apart() -> None:
    # The official code moves dates to the reference year first, so it would average these two.
    data = np.array([100, 300], dtype=np.uint16)[:, None, None, None] * np.ones((2, 10, 1, 1), np.uint16)
    series, days = SeriesPreprocessing(average_monthly=True).apply(data, None, [dt.date(2020, 1, 9), dt.date(2021, 1, 9)])
    assert series[:, 0, 0, 0].tolist() == [100.0, 300.0] and days.tolist() == [-120, -120]


def test_raw_mask_value_0_is_refused_for_training_and_ignored_when_scoring(tmp_path: Path) -> None:
    # The official metric folds it into 'other' (uint8 0 - 1 = 255 > 12 → 12).
    raw = np.array([[0, 1], [2, 13]], dtype=np.uint8)
    transform = Affine(0.2, 0, 800_000.0, 0, -0.2, 6_500_000.0)
    mask = _write(tmp_path / "MSK_000001.tif", raw[None], transform)
    with pytest.raises(FlairDataError, match=r"\(mask values 1\.\.19\)"):
        read_mask(mask)
    _write(tmp_path / "pred" / "PRED_000001.tif", np.zeros((1, 2, 2), np.uint8), transform)
    result = evaluate_prediction_folder(tmp_path / "pred", {"000001": mask})
    assert result.confusion.sum() == 3 and result.confusion[12, 0] == 1  # the 0 pixel is not counted


def test_utae_logits_have_no_batch_norm_and_relu() -> None:
    # The official U-TAE ends in conv → BN → ReLU: its logits are never negative.
    torch.manual_seed(0)
    model = create_model("utae", **SMALL_UTAE).eval()
    assert isinstance(model.head[-1], torch.nn.Conv2d)
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 10, 16, 16), torch.tensor([[0, 30, 60], [0, 10, 20]]))
    assert (logits < 0).any()


# --- profiles in checkpoints, evaluation and mapping -------------------------------------------

def test_profiles_hold_what_docs_fidelity_md_says() -> None:
    assert sorted(PROFILES) == ["flairlc", "paper"]
    assert get_profile("paper") == PROFILES["paper"]
    paper, flairlc = PROFILES["paper"], PROFILES["flairlc"]
    assert (paper.cover_count, paper.cover_strict, paper.date_sign, paper.geo_encoding) == ("sum", True, -1, "official")
    assert (flairlc.cover_count, flairlc.cover_strict, flairlc.date_sign, flairlc.geo_encoding) == ("union", False, 1, "log")
    assert (paper.sentinel_scaling(True), paper.sentinel_scaling(False)) == ("raw", "unit")
    assert (flairlc.sentinel_scaling(True), flairlc.sentinel_scaling(False)) == ("unit", "unit")
    with pytest.raises(ValueError, match="expected one of"):
        SeriesPreprocessing(profile="Paper")


def test_paper_configs_use_the_paper_profile_cpu_configs_flairlc() -> None:
    for name in ("unet", "unet_metadata_aug", "utt", "utt_filter_monthly_aug", "utae"):
        config = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
        assert config["data"]["profile"] == "paper", name
        # The official training: torch.optim.SGD(lr=0.001) without momentum, early stopping patience 30.
        assert (config["model"]["optimizer"], config["model"]["lr"], config["model"]["momentum"]) == ("sgd", 0.001, 0.0)
        stopping = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("EarlyStopping")]
        assert [c["init_args"]["patience"] for c in stopping] == [30], name
    row4 = yaml.safe_load((CONFIGS / "utt_filter_monthly_aug.yaml").read_text())
    assert row4["data"]["average_monthly"] and row4["model"]["sentinel_scaling"] == "raw"
    for path in sorted((CONFIGS / "cpu").glob("*.yaml")):
        assert yaml.safe_load(path.read_text())["data"].get("profile", "flairlc") == "flairlc", path


def test_model_and_data_of_different_profiles_do_not_fit() -> None:
    task = SegmentationTask(model="utae", model_kwargs=SMALL_UTAE, profile="paper")
    with pytest.raises(ValueError, match="profile='paper'"):
        check_data_fits(task, {"modalities": ["sentinel", "mask"], "profile": "flairlc"})
    check_data_fits(task, {"modalities": ["sentinel", "mask"], "profile": "paper"})
    aerial_only = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18"}, profile="paper")
    check_data_fits(aerial_only, {"modalities": ["aerial", "mask"], "profile": "flairlc"})  # nothing it changes


@pytest.fixture(scope="module")
def paper_checkpoint(fidelity_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A U-TAE trained one step with the paper profile (filter + monthly average), saved."""
    L.seed_everything(0)
    settings = dict(sat_patch_size=16, filter_clouds=True, average_monthly=True, profile="paper")
    data = FlairDataModule(str(fidelity_root), modalities=["sentinel", "mask"], batch_size=2, **settings)
    task = SegmentationTask(model="utae", model_kwargs=SMALL_UTAE, **settings)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, max_steps=1,
                        limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(task, data)
    path = tmp_path_factory.mktemp("paper_ckpt") / "paper.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_checkpoint_records_the_profile_and_loads_it(paper_checkpoint: Path) -> None:
    checkpoint = read_checkpoint(paper_checkpoint)
    assert checkpoint["hyper_parameters"]["profile"] == "paper"
    assert checkpoint["datamodule_hyper_parameters"]["profile"] == "paper"
    assert checkpoint["flairlc"]["profile"] == "paper" and checkpoint["flairlc"]["sentinel_scaling"] == "raw"
    task = load_task(paper_checkpoint)
    assert task.series_preprocessing == SeriesPreprocessing(True, 0.5, 60, True, REFERENCE_DATE, "paper")
    assert task.sentinel_scaler.mode == "raw"


def test_checkpoint_without_a_profile_loads_as_flairlc(paper_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = read_checkpoint(paper_checkpoint)
    del checkpoint["hyper_parameters"]["profile"]
    checkpoint["hyper_parameters"]["sentinel_scaling"] = "unit"  # the explicit default of that time
    old = tmp_path / "old.ckpt"
    torch.save(checkpoint, old)
    task = load_task(old)
    assert task.series_preprocessing.profile == "flairlc" and task.sentinel_scaler.mode == "unit"


def test_metadata_checkpoint_from_before_the_profiles_is_refused(paper_checkpoint: Path, tmp_path: Path) -> None:
    checkpoint = read_checkpoint(paper_checkpoint)
    hparams = dict(checkpoint["hyper_parameters"], model="unet", use_metadata=True, model_kwargs={})
    del hparams["profile"]
    old = tmp_path / "old_metadata.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, old)
    with pytest.raises(CheckpointError, match="before preprocessing profiles.*retrain"):
        load_task(old)


def test_evaluation_of_a_checkpoint_applies_its_profile(paper_checkpoint: Path, fidelity_root: Path, monkeypatch) -> None:
    built: list[FlairDataset] = []

    class RecordingDataset(FlairDataset):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(runner, "FlairDataset", RecordingDataset)
    runner.evaluate_checkpoint(paper_checkpoint, fidelity_root, split="test", batch_size=2, accelerator="cpu", devices=1)
    assert [d.preprocessing for d in built] == [load_task(paper_checkpoint).series_preprocessing]


class RecordingPredictor:
    """A predictor with a task's input settings that records the batches the mapper feeds it."""

    aerial_channels = 5
    uses_sentinel = True

    def __init__(self, task: SegmentationTask, preprocessing: SeriesPreprocessing) -> None:
        self.num_classes = task.num_classes
        self.sat_patch_size = task.sat_patch_size
        self.reference_date = task.reference_date
        self.series_preprocessing = preprocessing
        self.batches: list[dict[str, torch.Tensor]] = []

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.batches.append({k: v.clone() for k, v in batch.items()})
        b, _, h, w = batch["aerial"].shape
        return torch.full((b, self.num_classes, h, w), 1.0 / self.num_classes)


def test_mapping_with_a_paper_checkpoint_applies_its_profile(paper_checkpoint: Path, tmp_path: Path) -> None:
    x0, y0 = 650_000.0, 6_860_000.0
    aerial = _write(tmp_path / "aerial.tif", np.full((5, 64, 64), 100, np.uint8), Affine(0.2, 0, x0, 0, -0.2, y0))
    s2 = tmp_path / "s2"
    s2.mkdir()
    transform = Affine(10, 0, x0 - 200.0, 0, -10, y0 + 200.0)
    checkerboard = (np.indices((60, 60)).sum(axis=0) % 2 == 0).astype(np.uint8) * 100
    for month, covered in ((4, False), (8, True)):  # August: snow and cloud on the same half
        name = f"SENTINEL2A_2021{month:02d}15-105852-000_L2A_T31TFJ_C_V2-2"
        _write(s2 / f"{name}.tif", np.full((10, 60, 60), 1000 * month, np.uint16), transform)
        masks = np.stack([checkerboard, checkerboard]) if covered else np.zeros((2, 60, 60), np.uint8)
        _write(s2 / f"{name}_masks.tif", masks, transform)
    task = load_task(paper_checkpoint)
    fed = {}
    for profile in ("paper", "flairlc"):
        settings = task.series_preprocessing if profile == "paper" else SeriesPreprocessing(True, 0.5, 60, True)
        predictor = RecordingPredictor(task, settings)
        map_raster(predictor, aerial, tmp_path / f"{profile}.tif", sentinel_dir=s2,
                   options=MapOptions(window=64, overlap=0), progress=False)
        (batch,) = predictor.batches
        fed[profile] = (batch["dates_days"][0].tolist(), batch["sentinel"][0, :, 0, 0, 0].tolist())
    assert fed["paper"] == ([30], [4000.0])  # August dropped (cover 0.5 + 0.5), reference - date
    assert fed["flairlc"] == ([-30, 92], [4000.0, 8000.0])  # union 0.5 kept, date - reference


# --- helpers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fidelity_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fidelity") / "flair"
    generate_dataset(root, domains=2, areas_per_domain=1, patches_per_area=2, patch_size=64, dates=24,
                     test_domains=1, seed=2)
    return root


def _write(path: Path, data: np.ndarray, transform: Affine) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count, dtype=data.dtype,
                       crs=L93, transform=transform) as dataset:
        dataset.write(data)
    return path
