"""Training on a FLAIR-HUB root: the data module, the bands it delivers, and fit then test via the CLI."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import rasterio
import torch

from flairlc import nomenclature
from flairlc.cli import main
from flairlc.data.bands import elevation_digital_numbers
from flairlc.data.hub import FlairHubDataset
from flairlc.training import FlairHubDataModule, SegmentationTask, check_data_fits, load_task

CONFIGS = Path(__file__).parents[1] / "configs" / "cpu"
#: CoSIA's classes that IGN does not train (clear cut, ligneous, mixed, undefined).
UNTRAINED = [15, 16, 17, 18]


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flairlc.data.synthetic.hub import generate_hub_dataset

    # 3 ROIs of 2 x 2 patches: one ROI in each of train, valid and test (split_1).
    root = tmp_path_factory.mktemp("hubfit") / "hub"
    return generate_hub_dataset(root, domains=1, rois_per_domain=3, patches_per_side=2, patch_size=32, dates=4, seed=5).out


def test_elevation_is_dsm_minus_dtm_in_digital_numbers() -> None:
    dsm = np.array([100.0, 100.04, 100.06, 101.23, 130.0, 99.0, np.nan])
    dtm = np.full(7, 100.0)
    assert elevation_digital_numbers(dsm, dtm).tolist() == [0, 0, 1, 12, 255, 0, 0]


def test_the_data_module_reads_the_split_column_and_derives_elevation(tiny_hub: Path) -> None:
    data = FlairHubDataModule(str(tiny_hub), modalities=["aerial", "dem", "sentinel", "mask"], batch_size=2)
    data.setup("fit")
    data.setup("test")
    sizes = {name: len(data.datasets[name]) for name in ("train", "val", "test")}
    assert sizes == {"train": 4, "val": 4, "test": 4}
    assert data.hparams["aerial_bands"] == ["R", "G", "B", "NIR", "elevation"]
    batch = next(iter(data.train_dataloader()))
    assert batch["aerial"].dtype == torch.uint8 and batch["aerial"].shape == (2, 5, 32, 32) and "dem" not in batch
    assert batch["sentinel"].shape[2:] == (10, 10, 10) and batch["dates_days"].shape == batch["sentinel_pad_mask"].shape
    # The fifth band is the DEM's DSM - DTM, in digital numbers; the first four the AERIAL_RGBI file.
    plain = FlairHubDataset(data.datasets["train"].patches, ("aerial", "dem"))
    index = int(batch["index"][0])
    sample = plain[index]
    expected = elevation_digital_numbers(sample["dem"][0].numpy(), sample["dem"][1].numpy())
    assert torch.equal(batch["aerial"][0, :4], sample["aerial"]) and np.array_equal(batch["aerial"][0, 4].numpy(), expected)
    # The first epoch's order is a function of the seed alone, as FLAIR #2's.
    again = FlairHubDataModule(str(tiny_hub), modalities=["aerial", "dem", "sentinel", "mask"], batch_size=2)
    again.shuffle_seed = data.shuffle_seed
    again.setup("fit")
    assert torch.equal(next(iter(again.train_dataloader()))["index"], batch["index"])


def test_a_model_reading_elevation_refuses_data_without_the_dem(tiny_hub: Path) -> None:
    data = FlairHubDataModule(str(tiny_hub))
    task = SegmentationTask(model="unet", nomenclature="cosia", model_kwargs={"encoder_name": "resnet18"})
    with pytest.raises(ValueError, match=r"reads aerial bands \['R', 'G', 'B', 'NIR', 'elevation'\] but the data delivers "
                                         r"\['R', 'G', 'B', 'NIR'\] \(elevation missing; FLAIR-HUB: load 'dem'"):
        check_data_fits(task, dict(data.hparams))
    with pytest.raises(ValueError, match="nomenclature must be 'cosia'"):
        FlairHubDataModule(str(tiny_hub), nomenclature="baseline")
    with pytest.raises(ValueError, match="unknown split column 'split_9'"):
        FlairHubDataModule(str(tiny_hub), split_column="split_9")


@pytest.mark.parametrize(("config", "bands"), [("hub_unet", 4), ("hub_utt", 5)])
def test_fit_then_test_through_the_cli(config: str, bands: int, tiny_hub: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    common = ["--config", str(CONFIGS / f"{config}.yaml"), "--data.root", str(tiny_hub), "--run_dir", "run",
              "--trainer.enable_progress_bar", "false"]
    # 32 px patches: the series' 10 px cover 6.4 m, 0.64 m each.
    main(["fit", *common, "--trainer.max_epochs", "1", *(["--model.sentinel_resolution_m", "0.64"] if bands == 5 else [])])
    task = load_task(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert task.nomenclature.name == "cosia" and len(task.bands) == bands
    assert list(task.ignored_classes) == UNTRAINED
    if bands == 5:  # the model tested is the checkpoint's (0.64 m), named `last` or by its file
        tested = []
        with monkeypatch.context() as patch:
            @functools.wraps(L.Trainer.test)  # the same signature: the CLI's parser reads it
            def record(self: L.Trainer, model: SegmentationTask, **kwargs: object) -> None:
                tested.append(model.hparams["sentinel_resolution_m"])

            patch.setattr(L.Trainer, "test", record)
            for ckpt_path in ("last", str(tmp_path / "run" / "checkpoints" / "last.ckpt")):
                main(["test", *common, "--ckpt_path", ckpt_path])
        assert tested == [0.64, 0.64]
    main(["test", *common, "--ckpt_path", "last"])
    evaluation = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["class_names"] == nomenclature.get("cosia").names and evaluation["exclude"] == UNTRAINED
    assert evaluation["metadata"]["num_patches"] == 4
    # mIoU: the mean IoU over the trained classes present in the truth or the predictions.
    matrix = np.array(evaluation["confusion_matrix"], dtype=np.float64)
    assert matrix.sum() == 4 * 32 * 32
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    trained = [k for k in range(19) if k not in UNTRAINED and union[k] > 0]
    assert evaluation["scores"]["miou"] == pytest.approx(np.mean(np.diag(matrix)[trained] / union[trained]), abs=1e-12)
    assert set(evaluation["domain_scores"]) == {next(iter(evaluation["domain_confusion_matrices"]))}
    if bands == 4:  # predict writes each test patch's classes on its AERIAL_RGBI grid
        main(["predict", *common, "--ckpt_path", "last"])
        written = sorted((tmp_path / "run" / "predictions").glob("PRED_*.tif"))
        test_patches = FlairHubDataset.from_root(tiny_hub, "test").patches
        assert [p.name for p in written] == [f"PRED_{p.id}.tif" for p in test_patches]
        with rasterio.open(written[0]) as pred, rasterio.open(test_patches[0].files["AERIAL_RGBI"]) as img:
            assert pred.transform == img.transform and pred.read(1).max() <= 14
