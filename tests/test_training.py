"""Training, testing, checkpoints, DDP exactness and prediction writing, on synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import rasterio
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from flairlc.data import FlairDataset, collate_flair, discover_patches
from flairlc.data.synthetic import generate_dataset
from flairlc.evaluation import EvaluationResult, confusion_matrix, evaluate_prediction_folder
from flairlc.training import (
    CheckpointError,
    FlairDataModule,
    PredictionWriter,
    SegmentationTask,
    load_task,
    read_checkpoint,
)

SMALL_UNET = {"encoder_name": "resnet18"}
SMALL_UTAE = {"encoder_widths": [16, 16, 32, 32], "decoder_widths": [16, 16, 32, 32], "n_head": 4, "d_model": 32}


def _trainer(tmp_path: Path, **kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, deterministic=True,
    )
    return L.Trainer(**{**defaults, **kwargs})


def _unet_task(**kwargs) -> SegmentationTask:
    return SegmentationTask(model="unet", model_kwargs=SMALL_UNET, optimizer="adamw", lr=0.003,
                            aerial_scaling="standardize", **kwargs)


EPOCHS = 8


@pytest.fixture(scope="module")
def training_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic root with enough areas to learn from: 6 domains × 6 areas × 3 patches of 64 px."""
    root = tmp_path_factory.mktemp("training") / "flair"
    generate_dataset(root, domains=6, areas_per_domain=6, patches_per_area=3, patch_size=64, dates=6,
                     test_domains=1, seed=2)
    return root


@pytest.fixture(scope="module")
def trained_unet(training_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FlairDataModule, dict]:
    """A U-Net trained for a few epochs; its checkpoint and the validation mIoU before/after."""
    L.seed_everything(0)
    directory = tmp_path_factory.mktemp("unet")
    data = FlairDataModule(str(training_root), batch_size=8, val_fraction=0.2, split_seed=1)
    task = _unet_task()
    checkpoint = ModelCheckpoint(dirpath=directory, save_last=True, monitor="val_loss")
    trainer = _trainer(directory, max_epochs=EPOCHS, callbacks=[checkpoint], num_sanity_val_steps=0)
    before = trainer.validate(task, data, verbose=False)[0]["val_miou"]
    trainer.fit(task, data)
    after = trainer.callback_metrics["val_miou"].item()
    return Path(checkpoint.last_model_path), data, {"before": before, "after": after, "steps": trainer.global_step}


def test_short_training_raises_validation_miou_far_above_chance(trained_unet) -> None:
    _, _, scores = trained_unet
    assert scores["after"] > 0.3
    assert scores["after"] > 4 * scores["before"]


def test_checkpoint_is_safe_and_carries_the_input_spec(trained_unet) -> None:
    path, data, _ = trained_unet
    checkpoint = read_checkpoint(path)  # torch.load(weights_only=True) under the hood
    spec = checkpoint["flairlc"]
    assert spec["inputs"] == ["aerial"] and spec["aerial_channels"] == 5
    assert spec["nomenclature"] == "baseline" and len(spec["class_names"]) == 13
    assert checkpoint["datamodule_hyper_parameters"]["val_domains"] == data.val_domains
    task = load_task(path)
    assert not task.training and task.num_classes == 13


def test_test_metrics_equal_an_independent_numpy_computation(trained_unet, training_root: Path, tmp_path: Path) -> None:
    path, _, _ = trained_unet
    task = load_task(path)
    records = discover_patches(training_root, splits=("test",))
    dataset = FlairDataset(records)
    _trainer(tmp_path).test(task, DataLoader(dataset, batch_size=4, collate_fn=collate_flair), verbose=False)
    result: EvaluationResult = task.test_result
    expected = np.zeros((13, 13), dtype=np.int64)
    with torch.no_grad():
        for i in range(len(dataset)):
            sample = dataset[i]
            batch = {"aerial": sample["aerial"][None]}
            prediction = task.predict_proba(batch).argmax(1)[0].numpy()
            expected += confusion_matrix(sample["mask"].numpy(), prediction, 13)
    np.testing.assert_array_equal(result.confusion, expected)
    assert set(result.domain_confusion) == {r.domain for r in records}
    iou = np.diag(expected) / (expected.sum(0) + expected.sum(1) - np.diag(expected))
    real = [k for k in range(12) if expected[k].sum() + expected[:, k].sum() > 0]
    assert result.overall().miou == pytest.approx(np.mean(iou[real]))


def test_resume_continues_from_the_saved_step(trained_unet, training_root: Path, tmp_path: Path) -> None:
    path, _, scores = trained_unet
    data = FlairDataModule(str(training_root), batch_size=8, val_fraction=0.2, split_seed=1)
    steps_per_epoch = scores["steps"] // EPOCHS
    trainer = _trainer(tmp_path, max_epochs=EPOCHS + 1, num_sanity_val_steps=0, enable_checkpointing=False)
    task = _unet_task()
    trainer.fit(task, data, ckpt_path=str(path))
    assert trainer.global_step == scores["steps"] + steps_per_epoch
    assert trainer.current_epoch == EPOCHS + 1


def test_checkpoint_that_does_not_fit_the_data_fails_clearly(trained_unet, training_root: Path, tmp_path: Path) -> None:
    path, _, _ = trained_unet
    raw = FlairDataModule(str(training_root), nomenclature="raw", val_fraction=0.2, split_seed=1)
    with pytest.raises(ValueError, match="nomenclature"):
        _trainer(tmp_path).test(load_task(path), raw, verbose=False)
    no_sentinel = FlairDataModule(str(training_root), modalities=["aerial", "mask"])
    fusion = SegmentationTask(model="utt", model_kwargs={**SMALL_UNET, **SMALL_UTAE}, sat_patch_size=16)
    with pytest.raises(ValueError, match="sentinel"):
        _trainer(tmp_path).test(fusion, no_sentinel, verbose=False)
    # Weights that do not fit the architecture stored beside them.
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["hyper_parameters"]["nomenclature"] = "raw"
    torch.save(checkpoint, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_task(tmp_path / "bad.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        load_task(tmp_path / "junk.ckpt")


def test_predictions_are_written_on_the_image_grid_and_score_like_test(trained_unet, training_root: Path, tmp_path: Path) -> None:
    path, _, _ = trained_unet
    task = load_task(path)
    records = discover_patches(training_root, splits=("test",))
    loader = DataLoader(FlairDataset(records, modalities=("aerial",)), batch_size=4, collate_fn=collate_flair)
    out = tmp_path / "predictions"
    _trainer(tmp_path, callbacks=[PredictionWriter(str(out), probabilities=True)]).predict(task, loader, return_predictions=False)
    for record in records:
        with rasterio.open(out / f"PRED_{record.id}.tif") as pred, rasterio.open(record.aerial_path) as image:
            assert pred.crs == image.crs and pred.transform == image.transform and pred.shape == image.shape
            assert pred.dtypes[0] == "uint8" and pred.colormap(1)[0][:3] == (219, 14, 154)
        with rasterio.open(out / f"PROBA_{record.id}.tif") as proba:
            assert proba.count == 13
    scored = evaluate_prediction_folder(out, {r.id: r.mask_path for r in records}, {r.id: r.domain for r in records})
    _trainer(tmp_path).test(task, DataLoader(FlairDataset(records), batch_size=4, collate_fn=collate_flair), verbose=False)
    np.testing.assert_array_equal(scored.confusion, task.test_result.confusion)


def test_ddp_with_two_processes_gives_the_single_process_metrics(trained_unet, training_root: Path, tmp_path: Path) -> None:
    """Five test patches on two gloo processes: the sampler repeats one, the metrics must not."""
    path, _, _ = trained_unet
    records = discover_patches(training_root, splits=("test",))[:5]
    loader = DataLoader(FlairDataset(records), batch_size=1, collate_fn=collate_flair)
    single = load_task(path)
    _trainer(tmp_path).test(single, loader, verbose=False)
    ddp = load_task(path)
    ddp.evaluation_dir = str(tmp_path / "ddp")
    _trainer(tmp_path, devices=2, strategy="ddp_spawn").test(ddp, loader, verbose=False)
    written = json.loads((tmp_path / "ddp" / "evaluation.json").read_text())
    assert written["metadata"]["num_patches"] == 5
    np.testing.assert_array_equal(np.asarray(written["confusion_matrix"]), single.test_result.confusion)


def test_channels_last_training_follows_the_eager_one(synthetic_root: Path, tmp_path: Path) -> None:
    """An optimizer step in channels-last moves the weights as the eager step does.

    Not bit for bit: each layout sums in another order, and gradients that are sums of many
    nearly cancelling terms (batch-norm weights and biases) differ by up to 1-2 % of themselves.
    Measured over seeds 0-5 at 1 and 2 threads: the two steps differ by 0.0008-0.8 % of the step.
    Over more steps training amplifies such differences (up to 19 % after two steps), so one step
    is compared.
    """
    weights, start = {}, None
    for name, options in (("eager", {}), ("channels_last", {"channels_last": True})):
        L.seed_everything(0)
        # SGD: its step is linear in the gradients (Adam's first step is their sign, which float
        # rounding flips where a gradient is nearly 0).
        task = SegmentationTask(model="unet", model_kwargs=SMALL_UNET, optimizer="sgd", lr=0.05,
                                aerial_scaling="standardize", **options)
        start = start or {key: value.detach().clone() for key, value in task.net.named_parameters()}
        data = FlairDataModule(str(synthetic_root), modalities=["aerial", "mask"], batch_size=4, val_fraction=0.0,
                               num_workers=0)
        trainer = _trainer(tmp_path / name, max_steps=1, limit_val_batches=0, enable_checkpointing=False,
                           deterministic=False)
        trainer.fit(task, data)
        weights[name] = {key: value.detach().clone() for key, value in task.net.named_parameters()}
    assert task.net.net.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)

    def distance(a: dict, b: dict) -> float:
        return sum(((a[k].double() - b[k].double()) ** 2).sum().item() for k in start) ** 0.5

    moved = distance(weights["eager"], start)
    assert moved > 1e-2  # the step changed the weights, so the comparison means something
    assert distance(weights["channels_last"], weights["eager"]) < 0.05 * moved


def test_compile_network_compiles_once_when_a_trainer_starts_and_keeps_the_keys() -> None:
    task = _unet_task(compile_network=True)
    keys = list(task.state_dict())
    assert getattr(task.net, "_compiled_call_impl", None) is None  # not when loaded for mapping
    task.configure_model()  # what a Trainer calls first in fit, validate, test and predict
    compiled = task.net._compiled_call_impl
    assert compiled is not None
    task.configure_model()
    assert task.net._compiled_call_impl is compiled  # compiled once
    assert list(task.state_dict()) == keys  # checkpoints keep their keys
    assert getattr(_unet_task().net, "_compiled_call_impl", None) is None
