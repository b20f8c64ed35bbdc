"""FLAIR-HUB's Sentinel-2 series with FLAIR #2's preprocessing: cloud/snow filter, monthly means."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import rasterio
import torch

from flairlc.cli import main
from flairlc.data.synthetic.hub import HubSummary, generate_hub_dataset
from flairlc.evaluation.runner import evaluate_checkpoint
from flairlc.inference.model import TrainedModel
from flairlc.training import FlairHubDataModule, SegmentationTask, check_data_fits, load_task
from flairlc.training.checkpoint import read_checkpoint

CONFIG = Path(__file__).parents[1] / "configs" / "cpu" / "hub_multimodal_filter_monthly.yaml"
#: Date of the covered patch whose whole window is more than half under cloud.
CLOUDY_DATE = 1
#: Date of the covered patch under snow and cloud on the same 30 % of its pixels: kept (counted once).
SNOWY_DATE = 2
#: A U-TAE small enough for seconds on a CPU; 2 levels for 10 px windows.
SMALL_UTAE = {"encoder_widths": [16, 32], "decoder_widths": [16, 32], "n_head": 4, "d_model": 32}


def _patch_file(root: Path, modality: str, patch_id: str) -> Path:
    domain, roi, cell = patch_id.split("_")
    return root / f"{domain}_{modality}" / roi / f"{domain}_{modality}_{roi}_{cell}.tif"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> HubSummary:
    """A tiny FLAIR-HUB root (4 patches a split, 15 dates each, some months with two) whose
    snow/cloud masks are all 0 but on the first test patch's dates 1 and 2."""
    root = tmp_path_factory.mktemp("hubseries") / "hub"
    summary = generate_hub_dataset(root, domains=1, rois_per_domain=3, patches_per_side=2, patch_size=32, dates=16, seed=5)
    for patch_id in summary.patch_ids:
        with rasterio.open(_patch_file(root, "SENTINEL2_MSK-SC", patch_id), "r+") as dst:
            masks = np.zeros((dst.count // 2, 2, dst.height, dst.width), dtype=np.uint8)
            if patch_id == _covered(summary):
                masks[CLOUDY_DATE, 1].flat[:60] = 100  # 60 % under cloud: dropped
                masks[SNOWY_DATE, :, :3] = 100  # snow and cloud on the same 30 px: 30 % covered, kept
                masks[SNOWY_DATE + 1, 1] = 59  # below the 60 % probability threshold everywhere: kept
            dst.write(masks.reshape(-1, dst.height, dst.width))
    return summary


def _covered(summary: HubSummary) -> str:
    return sorted(p for p, split in summary.splits.items() if split == "test")[0]


def _raw_series(summary: HubSummary, patch_id: str) -> tuple[np.ndarray, list[dt.date]]:
    with rasterio.open(_patch_file(summary.out, "SENTINEL2_TS", patch_id)) as src:
        raw = src.read().astype(np.float64)
    dates = [dt.datetime.strptime(d, "%Y%m%d").date() for d in summary.dates[patch_id]]
    return raw.reshape(len(dates), 10, *raw.shape[1:]), dates


def _days_from_15_may(dates: list[dt.date]) -> list[int]:
    return [(d - dt.date(d.year, 5, 15)).days for d in dates]


def _expected_monthly(summary: HubSummary, patch_id: str, dropped: tuple[int, ...] = ()) -> tuple[np.ndarray, list[int]]:
    """Monthly means of the dates not dropped (float64 numpy), and their days (the 15th of each month)."""
    raw, dates = _raw_series(summary, patch_id)
    kept = [t for t in range(len(dates)) if t not in dropped]
    months = sorted({(dates[t].year, dates[t].month) for t in kept})
    means = np.stack([raw[[t for t in kept if (dates[t].year, dates[t].month) == month]].mean(axis=0) for month in months])
    return means, _days_from_15_may([dt.date(year, month, 15) for year, month in months])


def test_a_date_covered_by_cloud_is_dropped_with_its_day(hub: HubSummary) -> None:
    data = FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"], batch_size=4, filter_clouds=True)
    data.setup("test")
    sample = data.datasets["test"][0]
    assert sample["id"] == _covered(hub)
    raw, dates = _raw_series(hub, sample["id"])
    kept = [t for t in range(len(dates)) if t != CLOUDY_DATE]
    assert sample["sentinel"].dtype == torch.float32 and torch.equal(sample["sentinel"], torch.from_numpy(raw[kept]).float())
    assert sample["dates_days"].tolist() == _days_from_15_may([dates[t] for t in kept])
    # In a batch the 14 kept dates are padded to the other patches' 15.
    batch = next(iter(data.test_dataloader()))
    assert batch["sentinel"].shape[:2] == (4, 15) and batch["sentinel_pad_mask"][0].tolist() == [False] * 14 + [True]
    assert not batch["sentinel_pad_mask"][1:].any()


def test_monthly_means_equal_numpy_and_dates_follow(hub: HubSummary) -> None:
    data = FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"], filter_clouds=True, average_monthly=True)
    data.setup("test")
    for index, patch_id in enumerate(sorted(p for p, split in hub.splits.items() if split == "test")):
        sample = data.datasets["test"][index]
        means, days = _expected_monthly(hub, patch_id, (CLOUDY_DATE,) if patch_id == _covered(hub) else ())
        assert sample["id"] == patch_id and sample["dates_days"].tolist() == days
        np.testing.assert_allclose(sample["sentinel"].numpy(), means, rtol=1e-6)
    # Days count from 15 May of the date's own year (FLAIR-HUB), not of FLAIR #2's 2021: 15 Jan 2020 is -121.
    assert sample["dates_days"][0] == -121
    # Averaging alone keeps every date, and reads no mask.
    averaged = FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"], average_monthly=True)
    averaged.setup("test")
    means, days = _expected_monthly(hub, _covered(hub))
    sample = averaged.datasets["test"][0]
    assert sample["dates_days"].tolist() == days and np.allclose(sample["sentinel"].numpy(), means, rtol=1e-6)
    assert "SENTINEL2_MSK-SC" not in [m.name for m in averaged.datasets["test"].modalities]


def test_the_masks_are_read_for_the_filter_without_being_listed(hub: HubSummary) -> None:
    data = FlairHubDataModule(str(hub.out), modalities=["aerial", "sentinel", "mask"], filter_clouds=True)
    assert data.hparams["modalities"] == ["aerial", "sentinel", "mask"]
    data.setup("test")
    assert [m.name for m in data.datasets["test"].modalities][-1] == "SENTINEL2_MSK-SC"
    assert "sentinel_masks" not in next(iter(data.test_dataloader()))
    with pytest.raises(ValueError, match=r"^with filter_clouds or average_monthly, the snow/cloud masks are read for the "
                                         r"filter and the series' dates change: drop 'sentinel_masks' from the modalities$"):
        FlairHubDataModule(str(hub.out), modalities=["sentinel", "sentinel_masks", "mask"], filter_clouds=True)
    with pytest.raises(ValueError, match=r"^profile 'paper' counts Sentinel-2 days as reference - date \(the official FLAIR-2 "
                                         r"code\) but FLAIR-HUB's dates_days are date - reference: use profile 'flairlc'$"):
        FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"], profile="paper")
    FlairHubDataModule(str(hub.out), modalities=["aerial", "mask"], profile="paper")  # no series: nothing it changes


def test_a_model_that_filters_does_not_fit_data_that_does_not(hub: HubSummary) -> None:
    task = SegmentationTask(model="utae", model_kwargs=SMALL_UTAE, nomenclature="cosia", sat_patch_size=10, filter_clouds=True)
    with pytest.raises(ValueError, match=r"the model was set up with filter_clouds=True, the data uses False"):
        check_data_fits(task, dict(FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"]).hparams))
    check_data_fits(task, dict(FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"], filter_clouds=True).hparams))


@pytest.fixture(scope="module")
def filtering_checkpoint(hub: HubSummary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small U-TAE trained one step on the root's series, filtered and averaged per month."""
    L.seed_everything(0)
    settings = dict(filter_clouds=True, average_monthly=True)
    data = FlairHubDataModule(str(hub.out), modalities=["sentinel", "mask"], batch_size=4, **settings)
    task = SegmentationTask(model="utae", model_kwargs=SMALL_UTAE, nomenclature="cosia", sat_patch_size=10,
                            sentinel_resolution_m=0.64, **settings)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, max_steps=1, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(task, data)
    path = tmp_path_factory.mktemp("hubseries_ckpt") / "filtering.ckpt"
    trainer.save_checkpoint(path)
    return path


def _spy_on_dates(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The unpadded ``dates_days`` of each patch :class:`TrainedModel` is given, in order."""
    seen: list[list[int]] = []
    predict_classes = TrainedModel.predict_classes

    def spy(model: TrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seen.extend(days[~pad].tolist() for days, pad in zip(batch["dates_days"], batch["sentinel_pad_mask"]))
        return predict_classes(model, batch)

    monkeypatch.setattr(TrainedModel, "predict_classes", spy)
    return seen


def _expected_days(hub: HubSummary) -> list[list[int]]:
    test_ids = sorted(p for p, split in hub.splits.items() if split == "test")
    return [_expected_monthly(hub, p, (CLOUDY_DATE,) if p == _covered(hub) else ())[1] for p in test_ids]


def test_evaluate_a_checkpoint_feeds_the_series_it_was_trained_on(
    hub: HubSummary, filtering_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _spy_on_dates(monkeypatch)
    result = evaluate_checkpoint(filtering_checkpoint, hub.out, accelerator="cpu")
    assert seen == _expected_days(hub) and result.metadata["num_patches"] == 4
    # A checkpoint whose days run reference - date cannot be served FLAIR-HUB's: one line, naming it.
    checkpoint = read_checkpoint(filtering_checkpoint)
    checkpoint["hyper_parameters"]["profile"] = "paper"
    paper = tmp_path / "paper.ckpt"
    torch.save(checkpoint, paper)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(paper))}: profile 'paper' counts Sentinel-2 days as reference - "
                                         r"date .* use profile 'flairlc'$"):
        evaluate_checkpoint(paper, hub.out, accelerator="cpu")


@pytest.mark.slow
def test_fit_test_and_evaluate_feed_the_model_the_series_it_was_trained_on(
    hub: HubSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    common = ["--config", str(CONFIG), "--data.root", str(hub.out), "--run_dir", "run", "--trainer.enable_progress_bar", "false"]
    # 32 px patches: the series' 10 px cover 6.4 m, 0.64 m each (test builds the model from the config too).
    common += ["--model.sentinel_resolution_m", "0.64"]
    main(["fit", *common, "--trainer.max_epochs", "1"])
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    series = load_task(checkpoint).series_preprocessing
    assert (series.filter_clouds, series.average_monthly) == (True, True)
    main(["test", *common, "--ckpt_path", "last"])
    tested = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())

    # evaluate --checkpoint (no data module: the checkpoint's settings) reads the same series.
    seen = _spy_on_dates(monkeypatch)
    assert main(["evaluate", "--root", str(hub.out), "--checkpoint", str(checkpoint), "--out", "ev"]) == 0
    assert seen == _expected_days(hub)
    evaluated = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert evaluated["confusion_matrix"] == tested["confusion_matrix"]
