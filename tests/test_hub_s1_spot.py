"""FLAIR-HUB's SPOT and Sentinel-1 modalities: the generator writes them (and nothing new by
default), the data module delivers them, the multimodal network and the trained model read them,
``check`` validates them, and ``map`` refuses a model that reads them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from flairlc.cli import main
from flairlc.data.hub import FlairHubDataset
from flairlc.data.hub.check import check_hub
from flairlc.data.hub.layout import read_dates_gpkg
from flairlc.data.hub.modalities import GLOBAL_MTD_DIR, HUB_MODALITIES
from flairlc.data.synthetic.crops import _LPIS, crop_greenness
from flairlc.data.synthetic.hub import HUB_SYNTH_MODALITIES, generate_hub_dataset
from flairlc.data.synthetic.scene import AGRICULTURAL, N_TABLE
from flairlc.data.synthetic.sentinel1 import S1_FLOOR_DB, render_backscatter
from flairlc.inference import TrainedModel, load_trained_model
from flairlc.inference.scaling import SENTINEL1_DB_MEAN, SENTINEL1_DB_STD, SPOT_MEAN, SPOT_STD
from flairlc.models import create_model
from flairlc.training import FlairHubDataModule, augment_batch, check_data_fits
from flairlc.training.checkpoint import save_task
from flairlc.training.task import SegmentationTask

CONFIGS = Path(__file__).parents[1] / "configs" / "cpu"
NEW = ("SPOT_RGBI", "SENTINEL1-ASC_TS", "SENTINEL1-DESC_TS")
ALL = (*HUB_SYNTH_MODALITIES, "spot", "sentinel1_asc", "sentinel1_desc")
GENERATOR = dict(domains=1, rois_per_domain=3, patches_per_side=2, patch_size=32, dates=4, seed=5)
K = 7
#: A small network: ResNet18 encoders (depth 3), 2-level U-TAEs for 10 x 10 px series.
SMALL = {"encoder_name": "resnet18", "encoder_depth": 3, "encoder_widths": (16, 32), "decoder_widths": (16, 32),
         "n_head": 4, "d_model": 32}
EVERY = ("aerial", "dem", "spot", "sentinel", "sentinel1_asc", "sentinel1_desc")


@pytest.fixture(autouse=True)
def _one_thread():
    # the test machine is shared: one thread per test
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def hub_all(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FLAIR-HUB root holding every modality the generator writes."""
    return generate_hub_dataset(tmp_path_factory.mktemp("huball") / "hub", **GENERATOR, modalities=ALL).out


def _file(root: Path, name: str) -> Path:
    return sorted(root.glob(f"*_{name}/*/*.tif"))[0]


def _patch_id(path: Path) -> str:
    """``D033-2020_AA-S1-1_5-6`` of ``D033-2020_{MODALITY}/AA-S1-1/D033-2020_{MODALITY}_AA-S1-1_5-6.tif``."""
    return f"{path.name.split('_')[0]}_{path.parent.name}_{path.stem.rsplit('_', 1)[1]}"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the generator --------------------------------------------------------------------------------


def test_spot_is_uint16_on_64_px_over_the_footprint_in_a_realistic_range(hub_all: Path) -> None:
    with rasterio.open(_file(hub_all, "SPOT_RGBI")) as spot, rasterio.open(_file(hub_all, "AERIAL_RGBI")) as aerial:
        values = spot.read()
        assert spot.dtypes == ("uint16",) * 4 and values.shape == (4, 64, 64)
        assert spot.bounds == aerial.bounds and spot.crs == aerial.crs
    every = np.stack([rasterio.open(p).read() for p in sorted(hub_all.glob("*_SPOT_RGBI/*/*.tif"))])
    assert every.min() >= 1 and every.max() <= 4000
    means = every.mean(axis=(0, 2, 3))
    assert np.all((np.array(SPOT_MEAN) / 3 < means) & (means < np.array(SPOT_MEAN) * 3)), means
    # one SPOT scene per ROI, in the patches' year, as IGN's file: patch_id and date YYYYMMDD
    import fiona

    with fiona.open(hub_all / GLOBAL_MTD_DIR / "GLOBAL_SPOT_MTD_DATES.gpkg") as src:
        dates = {f["properties"]["patch_id"]: f["properties"]["date"] for f in src}
    assert len(dates) == 12 and all(d[:4] == p.split("_")[0][-4:] for p, d in dates.items())
    assert len({d for p, d in dates.items()}) == 3


def test_sentinel1_has_vv_vh_per_date_of_its_own_dates_file(hub_all: Path) -> None:
    s2_dates = read_dates_gpkg(hub_all / GLOBAL_MTD_DIR / HUB_MODALITIES["SENTINEL2_TS"].dates_file)
    for name in ("SENTINEL1-ASC_TS", "SENTINEL1-DESC_TS"):
        table = read_dates_gpkg(hub_all / GLOBAL_MTD_DIR / HUB_MODALITIES[name].dates_file)
        assert len(table) == 12
        for path in sorted(hub_all.glob(f"*_{name}/*/*.tif")):
            patch_id = _patch_id(path)
            with rasterio.open(path) as src:
                values = src.read()
                assert src.dtypes[0] == "float32" and src.shape == (10, 10)
            dates = table[patch_id]
            assert values.shape[0] == 2 * len(dates) and len(dates) in (29, 30, 31)
            assert len(dates) != len(s2_dates[patch_id])
            gaps = {(b - a).days for a, b in zip(dates, dates[1:], strict=False)}
            assert gaps <= {12, 24}  # every 12 days, a patch missing at most one of them
            vv, vh = values[0::2], values[1::2]
            assert S1_FLOOR_DB <= values.min() and values.max() < 5.0
            assert vh.mean() < vv.mean() - 3.0  # cross-polarized backscatter is the weaker


def test_sentinel1_follows_each_crops_season() -> None:
    """Barley peaks in early May and is cut in June, sunflower peaks in July: VH follows."""
    fractions = np.zeros((N_TABLE, 10, 10), dtype=np.float32)
    fractions[AGRICULTURAL] = 1.0
    dates = [dt.date(2021, 1, 1) + dt.timedelta(days=d) for d in (30, 120, 192, 300)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=np.float32)[:, None, None] * np.ones((1, 10, 10))
    vh = {}
    for crop in ("barley", "sunflower"):
        profile = {AGRICULTURAL: crop_greenness(_LPIS.index_of(crop), doy).astype(np.float32)}
        series = render_backscatter(fractions, np.zeros((10, 10), np.float32), dates, np.random.default_rng(0), profile)
        assert series.shape == (4, 2, 10, 10) and series.dtype == np.float32
        vh[crop] = series[:, 1].mean(axis=(1, 2))
    assert vh["barley"][1] > vh["sunflower"][1] + 2.0  # day 121: barley green, sunflower bare
    assert vh["sunflower"][2] > vh["barley"][2] + 2.0  # day 193: barley cut, sunflower green
    assert abs(vh["barley"][0] - vh["sunflower"][0]) < abs(vh["barley"][1] - vh["sunflower"][1])


def test_default_output_is_unchanged_and_holds_no_new_modality(hub_all: Path, tmp_path: Path) -> None:
    default = generate_hub_dataset(tmp_path / "default", **GENERATOR).out
    folders = sorted(p.name for p in default.iterdir())
    assert not [f for f in folders if any(f.endswith(m) for m in NEW)]
    assert sorted(p.name for p in (default / GLOBAL_MTD_DIR).iterdir()) == [
        "GLOBAL_ALL_MTD_SPLIT.gpkg", "GLOBAL_SENTINEL2_MTD_DATES.gpkg"]
    header = (default / "csv" / "FLAIR-HUB_SYNTH_TRAIN.csv").read_text().splitlines()[0]
    assert header == ",".join(["patch_id", *HUB_SYNTH_MODALITIES])
    # the default modalities' files are the same with SPOT and Sentinel-1 written beside them
    files = sorted(p.relative_to(default) for p in default.glob("*_*/*/*.tif"))
    assert len(files) == 6 * 12
    assert all(_digest(default / f) == _digest(hub_all / f) for f in files)
    header = (hub_all / "csv" / "FLAIR-HUB_SYNTH_TRAIN.csv").read_text().splitlines()[0].split(",")
    assert header[1:] == ["AERIAL_RGBI", "DEM_ELEV", "SPOT_RGBI", "SENTINEL2_TS", "SENTINEL2_MSK-SC",
                          "SENTINEL1-ASC_TS", "SENTINEL1-DESC_TS", "AERIAL_LABEL-COSIA", "ALL_LABEL-LPIS"]


def test_synth_command_writes_every_modality_on_request(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    common = ["--layout", "flair-hub", "--domains", "1", "--areas-per-domain", "1", "--patches-per-area", "1",
              "--patch-size", "32", "--dates", "3"]
    assert main(["synth", str(tmp_path / "all"), *common, "--modalities", "all"]) == 0
    out = capsys.readouterr().out
    assert "SPOT_RGBI" in out and "Sentinel-1 ascending dates per patch" in out
    assert {p.name.split("_", 1)[1] for p in (tmp_path / "all").glob("D*")} == set(HUB_SYNTH_MODALITIES) | set(NEW)
    assert main(["synth", str(tmp_path / "s1"), *common, "--modalities", "aerial", "sentinel1_desc", "mask"]) == 0
    assert {p.name.split("_", 1)[1] for p in (tmp_path / "s1").glob("D*")} == {
        "AERIAL_RGBI", "SENTINEL1-DESC_TS", "AERIAL_LABEL-COSIA"}
    assert main(["synth", str(tmp_path / "bad"), *common, "--modalities", "AERIAL-RLT_PAN"]) == 2
    assert "the generator does not write AERIAL-RLT_PAN" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["synth", str(tmp_path / "flair2"), "--modalities", "spot"]) == 2
    assert "--modalities applies to --layout flair-hub" in capsys.readouterr().err


# --- check and the data module --------------------------------------------------------------------


def test_check_is_clean_and_catches_a_bad_sentinel1_file(hub_all: Path, tmp_path: Path) -> None:
    assert check_hub(hub_all).issues == []
    root = Path(shutil.copytree(hub_all, tmp_path / "hub"))
    asc, desc = _file(root, "SENTINEL1-ASC_TS"), _file(root, "SENTINEL1-DESC_TS")
    for path, keep in ((asc, 3), (desc, -2)):  # VV, VH, VV: not whole dates; one date short
        with rasterio.open(path) as src:
            profile, values = src.profile, src.read()
        values = values[:keep]
        with rasterio.open(path, "w", **{**profile, "count": len(values)}) as dst:
            dst.write(values)
    issues = {(i.kind, i.path.name): i.message for i in check_hub(root).issues}
    assert issues[("bad-bands", asc.name)] == "3 bands, not a multiple of 2 (SENTINEL1-ASC_TS bands per date)"
    dates = read_dates_gpkg(root / GLOBAL_MTD_DIR / "GLOBAL_SENTINEL1-DESC_MTD_DATES.gpkg")
    with rasterio.open(desc) as src:
        length = src.count // 2
    patch_id = _patch_id(desc)
    assert issues[("series-length", desc.name)] == (
        f"SENTINEL1-DESC_TS has {length} dates but GLOBAL_SENTINEL1-DESC_MTD_DATES.gpkg lists "
        f"{len(dates[patch_id])} for patch {patch_id}")
    assert len(issues) == 2


def test_the_data_module_delivers_spot_and_sentinel1(hub_all: Path) -> None:
    data = FlairHubDataModule(str(hub_all), modalities=list(EVERY), batch_size=4)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["spot"].dtype == torch.float32 and batch["spot"].shape == (4, 4, 64, 64)
    for key in ("sentinel1_asc", "sentinel1_desc"):
        t = batch[f"{key}_dates_days"].shape[1]
        assert batch[key].dtype == torch.float32 and batch[key].shape == (4, t, 2, 10, 10)
        assert batch[f"{key}_dates_days"].dtype == torch.int64
        assert batch[f"{key}_pad_mask"].dtype == torch.bool and batch[f"{key}_pad_mask"].shape == (4, t)
        # padded dates hold 0
        lengths = (~batch[f"{key}_pad_mask"]).sum(1)
        assert t == int(lengths.max()) and bool((batch[key][batch[f"{key}_pad_mask"]] == 0).all())
    # values as stored: SPOT's digital numbers, Sentinel-1's dB
    dataset = FlairHubDataset.from_root(hub_all, modalities=["spot", "sentinel1_asc"])
    sample, files = dataset[0], dataset.patches[0].files
    with rasterio.open(files["SPOT_RGBI"]) as spot, rasterio.open(files["SENTINEL1-ASC_TS"]) as asc:
        assert torch.equal(sample["spot"], torch.from_numpy(spot.read().astype(np.float32)))
        assert torch.equal(sample["sentinel1_asc"], torch.from_numpy(asc.read().reshape(-1, 2, 10, 10)))


def test_augmentation_moves_spot_and_sentinel1_with_the_aerial_patch() -> None:
    g = torch.Generator().manual_seed(0)
    batch = {"aerial": torch.rand(2, 4, 8, 8, generator=g), "spot": torch.rand(2, 4, 16, 16, generator=g),
             "sentinel1_asc": torch.rand(2, 3, 2, 10, 10, generator=g)}
    flipped = augment_batch(batch, p_hflip=1.0, p_vflip=0.0, p_rot90=0.0)
    assert torch.equal(flipped["aerial"], batch["aerial"].flip(-1))
    assert torch.equal(flipped["spot"], batch["spot"].flip(-1))
    # about the pixel holding the patch centre, as Sentinel-2's window
    assert torch.equal(flipped["sentinel1_asc"], batch["sentinel1_asc"].flip(-1).roll(1, -1))


# --- the network and the trained model ------------------------------------------------------------


def _raw_batch(seed: int = 1) -> dict[str, torch.Tensor]:
    """A raw batch as FlairHubDataModule gives it, with SPOT and both Sentinel-1 orbits."""
    g = torch.Generator().manual_seed(seed)
    return {
        "aerial": torch.randint(0, 256, (2, 5, 32, 32), dtype=torch.uint8, generator=g),
        "spot": torch.randint(1, 3000, (2, 4, 64, 64), generator=g).float(),
        "sentinel": torch.randint(0, 10000, (2, 3, 10, 10, 10), generator=g).float(),
        "dates_days": torch.tensor([[10, 50, 90], [20, 60, 100]]),
        "sentinel_pad_mask": torch.tensor([[False, False, False], [False, False, True]]),
        "sentinel1_asc": -25 + 20 * torch.rand(2, 5, 2, 10, 10, generator=g),
        "sentinel1_asc_dates_days": torch.tensor([[-100, -88, -76, -64, -52], [-99, -87, -75, -63, 0]]),
        "sentinel1_asc_pad_mask": torch.tensor([[False] * 5, [False] * 4 + [True]]),
        "sentinel1_desc": -25 + 20 * torch.rand(2, 4, 2, 10, 10, generator=g),
        "sentinel1_desc_dates_days": torch.tensor([[-94, -82, -70, -58], [-93, -81, -69, -57]]),
        "sentinel1_desc_pad_mask": torch.zeros(2, 4, dtype=torch.bool),
    }


def _trained(modalities: tuple[str, ...]) -> TrainedModel:
    torch.manual_seed(0)
    bands = [b for m, group in (("aerial", ["R", "G", "B", "NIR"]), ("dem", ["elevation"])) if m in modalities for b in group]
    return TrainedModel("multimodal", {**SMALL, "modalities": list(modalities)}, nomenclature="cosia", bands=bands,
                        aerial_scaling="standardize", sentinel_scaling="reflectance", sentinel_resolution_m=0.64).eval()


@pytest.mark.parametrize("modalities", [("aerial", "spot"), ("dem", "sentinel1_asc"), ("aerial", "sentinel1_desc"), EVERY])
def test_network_shapes_with_each_new_modality(modalities: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    net = create_model("multimodal", num_classes=K, modalities=modalities, sentinel_resolution_m=0.64, **SMALL).eval()
    b = _raw_batch()
    with torch.no_grad():
        out = net(b["aerial"].float() / 255, b["sentinel"] / 10000, b["dates_days"], b["sentinel_pad_mask"],
                  spot=b["spot"] / 1000, **{k: v for k, v in b.items() if k.startswith("sentinel1_")})
    assert out.logits.shape == (2, K, 32, 32)
    assert (out.aux_logits is not None) == ("sentinel" in modalities)
    assert set(net.encoders) == {m for m in modalities if m in ("aerial", "dem", "spot")}
    assert set(net.sentinel1_encoders) == {m for m in modalities if m.startswith("sentinel1_")}
    # the fusion reads every modality's channels at each stage
    widths = {m: net.encoders[m].out_channels for m in net.encoders}
    series = (net.utae.out_channels if net.utae is not None else 0) + sum(
        e.out_channels for e in net.sentinel1_encoders.values())
    for level, conv in enumerate(net.fusion, start=1):
        assert conv.in_channels == sum(w[level] for w in widths.values()) + series


@pytest.mark.parametrize("key", ["spot", "sentinel1_asc", "sentinel1_desc"])
def test_spot_and_sentinel1_change_the_logits_only_when_selected(key: str) -> None:
    batch = _raw_batch()
    perturbed = dict(batch, **{key: batch[key] + 7.0})
    dropped = {k: v for k, v in batch.items() if not k.startswith(key)}
    with torch.inference_mode():
        reading = _trained(("aerial", key))
        assert not torch.allclose(reading.forward_batch(batch)[0], reading.forward_batch(perturbed)[0])
        other = _trained(("aerial", "sentinel"))
        expected = other.forward_batch(batch)[0]
        assert torch.equal(other.forward_batch(perturbed)[0], expected)
        assert torch.equal(other.forward_batch(dropped)[0], expected)
    missing = "'spot'" if key == "spot" else f"'{key}'"
    with pytest.raises(ValueError, match=rf"^this multimodal model reads '{key}': {missing} is missing from the batch "
                                          r"\(load the modality in the data module\)$"):
        reading.forward_batch(dropped)


def test_scaling_of_spot_and_sentinel1_is_documented_affine() -> None:
    model = _trained(EVERY)
    spot = torch.tensor(SPOT_MEAN).view(1, 4, 1, 1) + torch.tensor(SPOT_STD).view(1, 4, 1, 1) * torch.ones(1, 4, 2, 2)
    assert torch.allclose(model.spot_scaler(spot), torch.ones(1, 4, 2, 2))
    s1 = torch.tensor(SENTINEL1_DB_MEAN).view(1, 1, 2, 1, 1).expand(1, 3, 2, 2, 2)
    assert torch.equal(model.sentinel1_scaler(s1 - torch.tensor(SENTINEL1_DB_STD).view(1, 1, 2, 1, 1)),
                       -torch.ones(1, 3, 2, 2, 2))
    assert model.required_modalities == ("aerial", "spot", "sentinel", "sentinel1_asc", "sentinel1_desc")


def test_trained_model_round_trip_and_the_data_it_needs(hub_all: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = SegmentationTask(model="multimodal", model_kwargs={**SMALL, "modalities": list(EVERY)}, nomenclature="cosia",
                            bands=["R", "G", "B", "NIR", "elevation"], aerial_scaling="standardize",
                            sentinel_scaling="reflectance", sentinel_resolution_m=0.64)
    path = save_task(task.eval(), tmp_path / "all.ckpt")
    trained = load_trained_model(path)
    assert trained.required_modalities == ("aerial", "spot", "sentinel", "sentinel1_asc", "sentinel1_desc")
    batch = _raw_batch()
    with torch.inference_mode():
        assert torch.equal(trained.predict_proba(batch), task.predict_proba(batch))
    without = FlairHubDataModule(str(hub_all), modalities=["aerial", "dem", "sentinel", "sentinel1_asc"])
    with pytest.raises(ValueError, match=r"the model reads \['spot', 'sentinel1_desc'\] but the data module loads only"):
        check_data_fits(task, dict(without.hparams))


def test_fit_then_test_with_hub_all_through_the_cli(hub_all: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    common = ["--config", str(CONFIGS / "hub_all.yaml"), "--data.root", str(hub_all), "--run_dir", "run",
              "--trainer.enable_progress_bar", "false", "--model.sentinel_resolution_m", "0.64"]
    main(["fit", *common, "--trainer.max_epochs", "1", "--data.batch_size", "4"])
    trained = load_trained_model(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert trained.required_modalities == ("aerial", "spot", "sentinel", "sentinel1_asc", "sentinel1_desc")
    main(["test", *common, "--ckpt_path", "last"])
    evaluation = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["metadata"]["num_patches"] == 4
    assert sum(map(sum, evaluation["confusion_matrix"])) == 4 * 32 * 32


# --- mapping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["spot", "sentinel1_asc"])
def test_map_refuses_a_model_reading_spot_or_sentinel1(key: str, hub_all: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    task = SegmentationTask(model="multimodal", model_kwargs={**SMALL, "modalities": ["aerial", key]},
                            nomenclature="cosia", bands=["R", "G", "B", "NIR"], sentinel_resolution_m=0.64)
    checkpoint = save_task(task.eval(), tmp_path / "model.ckpt")
    aerial = _file(hub_all, "AERIAL_RGBI")
    expected = (f"{checkpoint} reads {key}, which mapping does not take (it feeds aerial imagery, elevation and "
                "Sentinel-2): map with a model that reads only those")
    assert main(["map", "--checkpoint", str(checkpoint), "--aerial", str(aerial), "--out", str(tmp_path / "map.tif")]) == 2
    assert capsys.readouterr().err == f"flairlc map: error: {expected}\n"
    assert not (tmp_path / "map.tif").exists()
    assert main(["map-area", "--checkpoint", str(checkpoint), "--aerial", str(aerial), "--out", str(tmp_path / "job")]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "job").exists()
