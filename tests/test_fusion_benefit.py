"""The fusion earns its place: with the same budget, U-T&T beats U-Net on the classes that differ
only in their Sentinel-2 seasonal profile (herbaceous vegetation, agricultural land, plowed land).

The synthetic generator draws these three classes from one aerial colour and texture law, so an
aerial-only model can only guess between them, while their NDVI profiles over the year differ.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
from torch.utils.data import DataLoader

from flairlc.data import FlairDataModule, FlairDataset, collate_flair, discover_patches
from flairlc.data.synthetic import generate_dataset
from flairlc.evaluation import Scores
from flairlc.training import SegmentationTask

#: Baseline indices of herbaceous vegetation, agricultural land and plowed land.
SEASONAL = [9, 10, 11]
SAT_PATCH_SIZE = 16
EPOCHS = 20


@pytest.fixture(scope="module")
def farmland_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("farmland") / "flair"
    # Many small areas: the satellite branch must learn per-pixel seasonal signatures, not the
    # look of a few super-areas.
    generate_dataset(root, domains=10, areas_per_domain=8, patches_per_area=3, patch_size=64, dates=12,
                     test_domains=2, seed=5, area_tags=("AA", "AN", "AU", "AF", "NA"))
    return root


def _train_and_score(model: str, root: Path, tmp_path: Path) -> Scores:
    L.seed_everything(0, verbose=False)
    modalities = ["aerial", "mask"] + (["sentinel"] if model == "utt" else [])
    # The paper's best recipe for the series: cloud filter and monthly average.
    data = FlairDataModule(str(root), modalities=modalities, batch_size=8, sat_patch_size=SAT_PATCH_SIZE,
                           val_domains=[], filter_clouds=True, average_monthly=True)
    model_kwargs = {"encoder_name": "resnet18"}
    if model == "utt":
        model_kwargs.update(encoder_widths=[32, 32, 64, 64], decoder_widths=[32, 32, 64, 64], n_head=8, d_model=128)
    task = SegmentationTask(model=model, model_kwargs=model_kwargs, optimizer="adamw", lr=0.001,
                            aerial_scaling="standardize", sentinel_scaling="reflectance", sat_patch_size=SAT_PATCH_SIZE,
                            filter_clouds=True, average_monthly=True)
    trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        default_root_dir=tmp_path, deterministic=True)
    trainer.fit(task, data)
    test = FlairDataset(discover_patches(root, splits=("test",)), **data.dataset_kwargs())
    trainer.test(task, DataLoader(test, batch_size=8, collate_fn=collate_flair), verbose=False)
    return task.test_result.overall()


@pytest.mark.slow
def test_utt_beats_unet_on_the_seasonal_classes(farmland_root: Path, tmp_path: Path) -> None:
    unet = _train_and_score("unet", farmland_root, tmp_path)
    utt = _train_and_score("utt", farmland_root, tmp_path)
    present = [k for k in SEASONAL if unet.support[k] > 0]
    assert len(present) >= 2, "the test domains should hold at least two of the seasonal classes"
    unet_iou = float(np.nanmean(unet.iou[present]))
    utt_iou = float(np.nanmean(utt.iou[present]))
    print(f"seasonal classes' mean IoU: U-Net {unet_iou:.3f}, U-T&T {utt_iou:.3f}; "
          f"mIoU: U-Net {unet.miou:.3f}, U-T&T {utt.miou:.3f}")
    assert utt_iou > unet_iou + 0.2
