"""FLAIR-HUB's crop-type task: the 'lpis' nomenclature, the generator's ALL_LABEL-LPIS, the data
module's label switch, fit/test through the command line, and `evaluate` on FLAIR-HUB roots."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from flairlc import nomenclature
from flairlc.cli import main
from flairlc.data.errors import FlairDataError
from flairlc.data.hub import FlairHubDataset, discover_hub
from flairlc.data.hub.layout import read_dates_gpkg
from flairlc.training import FlairHubDataModule, SegmentationTask, load_task
from flairlc.training.checkpoint import save_task

CONFIGS = Path(__file__).parents[1] / "configs" / "cpu"
#: ALL_LABEL-LPIS's value_name in IGN's configs/train/config_supervision.yaml (github.com/IGNF/FLAIR-HUB),
#: values 0..22 in order; its value_weights has no default_exceptions: every class is trained.
IGN_LPIS_NAMES = [
    "grasses", "wheat", "barley", "maize", "other cereals", "rice", "flax/hemp/tobacco", "sunflower", "rapeseed",
    "other oilseed crops", "soy", "other protein crops", "fodder legumes", "beetroots", "potatoes",
    "other arable crops", "vineyard", "olive groves", "fruits orchards", "nut orchards", "other permanent crops",
    "mixed crops", "background",
]
COSIA_AGRICULTURAL, COSIA_VINEYARD = 9, 11
LPIS_VINEYARD, LPIS_BACKGROUND = 16, 22


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flairlc.data.synthetic.hub import generate_hub_dataset

    root = tmp_path_factory.mktemp("lpis") / "hub"
    return generate_hub_dataset(root, domains=2, rois_per_domain=3, patches_per_side=2, patch_size=32, dates=6, seed=4).out


def _band1(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_the_lpis_nomenclature_is_igns() -> None:
    lpis = nomenclature.get("lpis")
    assert lpis.num_classes == 23 and lpis.names == IGN_LPIS_NAMES
    assert lpis.mask_values == list(range(23)) and lpis.unlabeled == ()
    assert lpis.index_of("background") == nomenclature.LPIS_BACKGROUND == LPIS_BACKGROUND
    assert lpis.classes[0].color == "#92d050" and lpis.classes[LPIS_BACKGROUND].color == "#000000"


def test_the_generated_lpis_label_lies_on_agricultural_land(hub_root: Path) -> None:
    patches = discover_hub(hub_root)
    crops_seen: set[int] = set()
    for patch in patches:
        lpis_path, cosia_path = patch.files["ALL_LABEL-LPIS"], patch.files["AERIAL_LABEL-COSIA"]
        with rasterio.open(lpis_path) as lpis_file, rasterio.open(cosia_path) as cosia_file:
            assert (lpis_file.count, lpis_file.dtypes[0]) == (1, "uint8")
            assert lpis_file.transform == cosia_file.transform and lpis_file.shape == cosia_file.shape
            lpis, cosia = lpis_file.read(1), cosia_file.read(1)
        assert lpis.max() < 23
        crop = (lpis != LPIS_BACKGROUND) & (lpis != LPIS_VINEYARD)
        assert (cosia[crop] == COSIA_AGRICULTURAL).all()  # every crop pixel lies on agricultural land
        assert (lpis[cosia == COSIA_AGRICULTURAL] != LPIS_BACKGROUND).all()  # and every such pixel has a crop
        assert ((lpis == LPIS_VINEYARD) == (cosia == COSIA_VINEYARD)).all()
        crops_seen |= set(np.unique(lpis[crop]).tolist())
    assert len(crops_seen) >= 2
    with (hub_root / "csv" / "FLAIR-HUB_SYNTH_TRAIN.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all((hub_root / "csv" / row["ALL_LABEL-LPIS"]).resolve().is_file() for row in rows)


def test_crop_types_are_told_apart_by_their_series(tmp_path: Path) -> None:
    """Agricultural parcels look alike from the air: their crop's Sentinel-2 NDVI profile tells
    the crop types apart (nearest mean profile over two-month bins, pure 10 m pixels)."""
    from flairlc.data.synthetic.hub import generate_hub_dataset

    root = generate_hub_dataset(tmp_path / "hub", domains=4, rois_per_domain=6, patches_per_side=3, patch_size=100,
                                dates=12, seed=2).out
    dates = {"GLOBAL_SENTINEL2_MTD_DATES.gpkg": read_dates_gpkg(root / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg")}
    dataset = FlairHubDataset(discover_hub(root), ("sentinel", "lpis"), dates=dates)
    profiles: dict[int, list[np.ndarray]] = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        s2, days = sample["sentinel"].numpy(), sample["dates_days"].numpy()
        ndvi = (s2[:, 6] - s2[:, 2]) / np.maximum(s2[:, 6] + s2[:, 2], 1)  # B08, B04
        bins = np.clip(days // 61 + 2, 0, 5)  # two-month bins from mid-January
        if len(np.unique(bins)) < 6:
            continue
        cell = sample["lpis"].shape[0] // 10
        blocks = sample["lpis"].numpy().reshape(10, cell, 10, cell).transpose(0, 2, 1, 3).reshape(10, 10, -1)
        for crop in np.unique(blocks):
            if crop in (LPIS_BACKGROUND, LPIS_VINEYARD):
                continue
            for r, c in zip(*np.nonzero((blocks == crop).all(-1)), strict=True):
                profiles.setdefault(int(crop), []).append(np.array([ndvi[bins == b, r, c].mean() for b in range(6)]))
    crops = [c for c, p in profiles.items() if len(p) >= 20]
    assert len(crops) >= 3
    means = np.stack([np.mean(profiles[c], 0) for c in crops])
    right = total = 0
    for k, crop in enumerate(crops):
        found = np.argmin(((np.stack(profiles[crop])[:, None] - means[None]) ** 2).sum(-1), axis=1)
        right, total = right + int((found == k).sum()), total + len(found)
    assert right / total >= 0.8


def test_the_data_module_delivers_the_chosen_label_as_mask(hub_root: Path) -> None:
    batches = {}
    for label, nomen in (("mask", "cosia"), ("lpis", "lpis")):
        data = FlairHubDataModule(str(hub_root), modalities=["aerial"], label=label, nomenclature=nomen, batch_size=64)
        data.setup("test")
        assert data.hparams["modalities"] == ["aerial", label]
        batches[label] = next(iter(data.test_dataloader()))
    patches = data.datasets["test"].patches
    for label, modality in (("mask", "AERIAL_LABEL-COSIA"), ("lpis", "ALL_LABEL-LPIS")):
        batch = batches[label]
        assert "lpis" not in batch and batch["mask"].dtype == torch.int64
        expected = np.stack([_band1(p.files[modality]) for p in patches])
        np.testing.assert_array_equal(batch["mask"].numpy(), expected)
    assert not torch.equal(batches["mask"]["mask"], batches["lpis"]["mask"])


def test_a_label_and_a_nomenclature_that_do_not_match_are_refused(hub_root: Path) -> None:
    with pytest.raises(ValueError, match=r"^FLAIR-HUB's crop-type labels \(ALL_LABEL-LPIS\) are LPIS's: with label 'lpis', "
                                         r"nomenclature must be 'lpis', got 'cosia'$"):
        FlairHubDataModule(str(hub_root), label="lpis")
    with pytest.raises(ValueError, match=r"^FLAIR-HUB's land-cover labels are CoSIA's: with label 'mask', nomenclature "
                                         r"must be 'cosia', got 'lpis'$"):
        FlairHubDataModule(str(hub_root), nomenclature="lpis")
    with pytest.raises(ValueError, match=r"^modalities \['aerial', 'mask'\] list the 'mask' label but the batches' mask "
                                         r"holds the 'lpis' label: drop 'mask'$"):
        FlairHubDataModule(str(hub_root), modalities=["aerial", "mask"], label="lpis", nomenclature="lpis")
    with pytest.raises(ValueError, match=r"^unknown label 'crops': expected one of mask, lpis$"):
        FlairHubDataModule(str(hub_root), label="crops")


def test_lpis_values_outside_the_nomenclature_are_refused_naming_the_file(hub_root: Path, tmp_path: Path) -> None:
    (patch,) = discover_hub(hub_root)[:1]
    path = shutil.copy(patch.files["ALL_LABEL-LPIS"], tmp_path / "lpis.tif")
    with rasterio.open(path, "r+") as dst:
        dst.write(np.full(dst.shape, 23, dtype=np.uint8), 1)
    patch.files["ALL_LABEL-LPIS"] = Path(path)
    with pytest.raises(FlairDataError, match=r"lpis\.tif: label values \[23\] are no LPIS class \(values 0..22\)$"):
        FlairHubDataset([patch], ("lpis",))[0]


@pytest.mark.slow  # about 40 s on 2 busy cores: a U-T&T epoch, then its test, through Lightning
def test_fit_then_test_on_crop_types_through_the_cli(hub_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    common = ["--config", str(CONFIGS / "hub_lpis.yaml"), "--data.root", str(hub_root), "--run_dir", "run",
              "--trainer.enable_progress_bar", "false", "--data.batch_size", "16"]
    # 32 px patches: the series' 10 px cover 6.4 m, 0.64 m each.
    main(["fit", *common, "--trainer.max_epochs", "1", "--model.sentinel_resolution_m", "0.64"])
    task = load_task(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert task.nomenclature.name == "lpis" and task.ignored_classes == () and task.architecture == "utt"
    main(["test", *common, "--ckpt_path", "last"])
    evaluation = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["class_names"] == IGN_LPIS_NAMES and evaluation["exclude"] == []
    matrix = np.array(evaluation["confusion_matrix"], dtype=np.float64)
    test_patches = FlairHubDataset.from_root(hub_root, "test").patches
    truth = np.stack([_band1(p.files["ALL_LABEL-LPIS"]) for p in test_patches])
    np.testing.assert_array_equal(matrix.sum(1), np.bincount(truth.ravel(), minlength=23))
    # mIoU: the mean IoU over the classes present in the truth or the predictions, all 23 trained.
    union = matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    present = union > 0
    assert evaluation["scores"]["miou"] == pytest.approx(np.mean(np.diag(matrix)[present] / union[present]), abs=1e-12)
    assert set(evaluation["domain_scores"]) == {p.domain_year for p in test_patches}


def _unet(nomen: str, active: list[int] | None) -> SegmentationTask:
    return SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18", "encoder_weights": None},
                            nomenclature=nomen, active_classes=active, bands=["R", "G", "B", "NIR"],
                            aerial_scaling="standardize")


@pytest.mark.parametrize(("label", "nomen", "active"), [("mask", "cosia", list(range(15))), ("lpis", "lpis", None)])
def test_evaluate_scores_predictions_as_the_checkpoint_on_a_hub_root(
    label: str, nomen: str, active: list[int] | None, hub_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Untrained weights suffice: the property is that both ways give the same numbers.
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    save_task(_unet(nomen, active), tmp_path / "model.ckpt")
    assert main(["predict", "--config", str(CONFIGS / "hub_unet.yaml"), "--data.root", str(hub_root),
                 "--data.modalities", "[aerial]", "--data.label", label, "--run_dir", "run", "--trainer.enable_progress_bar", "false",
                 "--ckpt_path", str(tmp_path / "model.ckpt")]) == 0
    common = ["evaluate", "--root", str(hub_root), "--accelerator", "cpu"]
    assert main([*common, "--predictions", "run/predictions", "--out", "from_predictions"]) == 0
    assert main([*common, "--checkpoint", "model.ckpt", "--out", "from_checkpoint"]) == 0
    by_predictions = json.loads((tmp_path / "from_predictions" / "evaluation.json").read_text())
    by_checkpoint = json.loads((tmp_path / "from_checkpoint" / "evaluation.json").read_text())
    for key in ("class_names", "exclude", "confusion_matrix", "domain_confusion_matrices", "scores", "domain_scores"):
        assert by_predictions[key] == by_checkpoint[key], key
    # Against the label's own files: rows are the truth of the test patches, per domain-year.
    test_patches = FlairHubDataset.from_root(hub_root, "test").patches
    modality = {"mask": "AERIAL_LABEL-COSIA", "lpis": "ALL_LABEL-LPIS"}[label]
    truth = np.stack([_band1(p.files[modality]) for p in test_patches])
    k = nomenclature.num_classes(nomen)
    np.testing.assert_array_equal(np.array(by_checkpoint["confusion_matrix"]).sum(1), np.bincount(truth.ravel(), minlength=k))
    assert set(by_checkpoint["domain_confusion_matrices"]) == {p.domain_year for p in test_patches}
    assert by_checkpoint["metadata"]["label"] == label and by_predictions["metadata"]["nomenclature"] == nomen


def test_evaluate_refuses_a_label_other_than_the_models_and_hub_options_on_flair2(
    hub_root: Path, synthetic_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
) -> None:
    save_task(_unet("lpis", None), tmp_path / "model.ckpt")
    common = ["evaluate", "--accelerator", "cpu", "--checkpoint", str(tmp_path / "model.ckpt")]
    assert main([*common, "--root", str(hub_root), "--label", "mask", "--out", str(tmp_path / "a")]) == 2
    assert main([*common, "--root", str(synthetic_root), "--label", "lpis", "--out", str(tmp_path / "b")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[-2] == (f"flairlc evaluate: error: {tmp_path / 'model.ckpt'} predicts the 'lpis' classes, but FLAIR-HUB's "
                          "'mask' labels are 'cosia''s: score it against the label of its classes (--label)")
    assert errors[-1] == (f"flairlc evaluate: error: --label lpis: {synthetic_root} is a FLAIR #2 root (one mask, fixed "
                          "splits); --label goes with a FLAIR-HUB root")
