"""IGN's published models: files in each published layout, built here with smp/timm (random
weights, the published key names and formats), imported by flairlc and compared with the
reference network; mapping with them; fine-tuning one to a user's 3 classes; refused files."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import rasterio
import segmentation_models_pytorch as smp
import torch
from conftest import flairlc_command
from raster_helpers import write_raster
from safetensors.torch import save_file

from flairlc import nomenclature
from flairlc.demo.recipe import SyntheticSize
from flairlc.mapping import MapOptions, compute_areas, map_raster
from flairlc.training import FlairDataModule, SegmentationTask
from flairlc.training.checkpoint import load_task
from flairlc.training.published import PublishedModelError, import_published_model

#: IGN's FLAIR statistics (R, G, B, NIR, elevation) and FLAIR-HUB's (R, G, B, NIR).
INC_MEAN, INC_STD = [105.08, 110.87, 101.82, 106.38, 53.26], [52.17, 45.38, 44.0, 39.69, 79.3]
HUB_MEAN = {"R": 105.66, "G": 111.35, "B": 102.18, "NIR": 106.59}
HUB_STD = {"R": 52.23, "G": 45.62, "B": 44.30, "NIR": 39.78}
FLAIR_ORDER = ["R", "G", "B", "NIR", "elevation"]


def _aerial(seed: int = 0, size: int = 64) -> torch.Tensor:
    """uint8 ``(2, 5, size, size)`` FLAIR-order aerial batch."""
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (2, 5, size, size), dtype=np.uint8))


def _standardize(aerial: torch.Tensor, bands: list[str], mean: list[float], std: list[float]) -> torch.Tensor:
    x = aerial[:, [FLAIR_ORDER.index(b) for b in bands]].double()
    return ((x - torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)) / torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1)).float()


def flair_inc_file(folder: Path, channels: int, lightning_ckpt: bool = False, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    """A FLAIR-INC file: ``smp.Unet`` ResNet34, 19 outputs, keys ``model.seg_model.*`` (+ criterion)."""
    torch.manual_seed(seed)
    reference = smp.Unet("resnet34", encoder_weights=None, in_channels=channels, classes=19).eval()
    state = {f"model.seg_model.{k}": v for k, v in reference.state_dict().items()}
    state["criterion.weight"] = torch.ones(19)
    path = folder / f"FLAIR-INC_{['', '', '', 'rgb', 'rgbi', 'rgbie'][channels]}_15cl_resnet34-unet.{'ckpt' if lightning_ckpt else 'pth'}"
    torch.save({"state_dict": state, "epoch": 7, "global_step": 1000} if lightning_ckpt else state, path)
    return path, reference


class HubReference(torch.nn.Module):
    """FLAIR-HUB's aerial land-cover network as its code builds it: the encoder of one smp model and
    the decoder and head of another built with 1 input channel (its encoder thrown away)."""

    def __init__(self, encoder: str, arch: str = "unet") -> None:
        super().__init__()
        full = smp.create_model(arch, encoder_name=f"tu-{encoder}", encoder_weights=None, in_channels=3, classes=19)
        decoder_model = smp.create_model(arch, encoder_name=f"tu-{encoder}", encoder_weights=None, in_channels=1, classes=19)
        self.encoder, self.decoder, self.head = full.encoder, decoder_model.decoder, decoder_model.segmentation_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))

    def published_state(self) -> dict[str, torch.Tensor]:
        state = {f"model.encoders.AERIAL_RGBI.seg_model.{k}": v for k, v in self.encoder.state_dict().items()}
        task = "model.main_decoders.AERIAL_LABEL-COSIA.seg_model"
        state.update({f"{task}.decoder.{k}": v for k, v in self.decoder.state_dict().items()})
        state.update({f"{task}.segmentation_head.{k}": v for k, v in self.head.state_dict().items()})
        # Entries an aerial-only prediction does not use.
        state["model.fusion_handler.conv_f.0.weight"] = torch.randn(8, 8, 1, 1)
        state["model.aux_decoders.SPOT_RGBI.seg_model.segmentation_head.0.weight"] = torch.randn(19, 64, 1, 1)
        state["criterion.weight"] = torch.ones(19)
        return {k: v.contiguous() for k, v in state.items()}


def flair_hub_file(folder: Path, variant: str = "IR", encoder: str = "convnextv2tiny", seed: int = 0) -> tuple[Path, HubReference]:
    """A FLAIR-HUB aerial ``.safetensors`` file of a ConvNeXt V2 U-Net, and its reference network."""
    torch.manual_seed(seed)
    reference = HubReference({"convnextv2tiny": "convnextv2_tiny", "convnextv2atto": "convnextv2_atto"}[encoder]).eval()
    path = folder / f"FLAIR-HUB_LC-A_{variant}_{encoder}-unet.safetensors"
    save_file(reference.published_state(), str(path))
    return path, reference


@pytest.mark.parametrize("channels,lightning_ckpt", [(3, False), (4, True), (5, False)])
def test_flair_inc_import_predicts_the_reference_probabilities(tmp_path: Path, channels: int, lightning_ckpt: bool) -> None:
    path, reference = flair_inc_file(tmp_path, channels, lightning_ckpt)
    bands = FLAIR_ORDER[:channels]
    aerial = _aerial()
    with torch.no_grad():
        logits = reference(_standardize(aerial, bands, INC_MEAN[:channels], INC_STD[:channels]))
    # Every output active: the reference's softmax.
    result = import_published_model(path, "flair-inc", tmp_path / "all.ckpt", classes="all")
    assert result.dropped == {"criterion": 1}
    task = load_task(tmp_path / "all.ckpt")
    assert list(task.bands) == bands and task.nomenclature.name == "raw"
    with torch.no_grad():
        assert torch.allclose(task.predict_proba({"aerial": aerial}), logits.softmax(1), atol=1e-5, rtol=0)
    # The published 15 classes (raw values 1..14 and 18): the softmax over those outputs only.
    import_published_model(path, "flair-inc", tmp_path / "15.ckpt")
    task = load_task(tmp_path / "15.ckpt")
    active = [v - 1 for v in (*range(1, 15), 18)]
    expected = torch.zeros_like(logits)
    expected[:, active] = logits[:, active].softmax(1)
    with torch.no_grad():
        proba = task.predict_proba({"aerial": aerial})
    assert torch.allclose(proba, expected, atol=1e-5, rtol=0)
    assert set(proba.argmax(1).unique().tolist()) <= set(active)


def test_flair_hub_convnextv2_unet_import_predicts_the_reference_probabilities(tmp_path: Path) -> None:
    path, reference = flair_hub_file(tmp_path, "IR")
    aerial = _aerial(1)
    bands = ["NIR", "R", "G"]
    with torch.no_grad():
        logits = reference(_standardize(aerial, bands, [HUB_MEAN[b] for b in bands], [HUB_STD[b] for b in bands]))
    result = import_published_model(path, "flair-hub-aerial", tmp_path / "hub.ckpt", classes="all")
    assert result.dropped == {"model.fusion_handler": 1, "model.aux_decoders": 1, "criterion": 1}
    assert result.hyper_parameters["model_kwargs"] == {"arch": "unet", "encoder_name": "tu-convnextv2_tiny"}
    task = load_task(tmp_path / "hub.ckpt")
    assert list(task.bands) == bands and task.class_names == nomenclature.class_names("cosia")
    with torch.no_grad():
        assert torch.allclose(task.predict_proba({"aerial": aerial}), logits.softmax(1), atol=1e-5, rtol=0)
    # Default: CoSIA's 15 trained classes; clear cut, ligneous, mixed and undefined never win.
    import_published_model(path, "flair-hub-aerial", tmp_path / "hub15.ckpt")
    with torch.no_grad():
        proba = load_task(tmp_path / "hub15.ckpt").predict_proba({"aerial": aerial})
    assert torch.allclose(proba[:, :15], logits[:, :15].softmax(1), atol=1e-5, rtol=0)
    assert proba[:, 15:].abs().max() == 0


#: A FLAIR-HUB UPerNet made by segmentation-models-pytorch 0.4.0 (the version FLAIR-HUB pins; its
#: UPerNet is gone from today's smp) and its probabilities: tests/data/make_upernet_v040_fixture.py.
UPERNET_FIXTURE = Path(__file__).parent / "data" / "FLAIR-HUB_LC-A_IR_testconvnext-upernet.safetensors"


def test_flair_hub_upernet_import_predicts_smp_0_4_0s_probabilities(tmp_path: Path) -> None:
    expected = torch.load(UPERNET_FIXTURE.with_name(UPERNET_FIXTURE.name.replace(".safetensors", ".expected.pt")), weights_only=True)
    result = import_published_model(UPERNET_FIXTURE, "flair-hub-aerial", tmp_path / "up.ckpt", encoder="test_convnext", classes="all")
    assert result.hyper_parameters["model_kwargs"] == {"arch": "upernet_v040", "encoder_name": "tu-test_convnext",
                                                       "pyramid_channels": 32, "segmentation_channels": 16}
    task = load_task(tmp_path / "up.ckpt")
    assert list(task.bands) == ["NIR", "R", "G"]
    with torch.no_grad():
        proba = task.predict_proba({"aerial": expected["aerial"]})
    assert torch.allclose(proba, expected["probabilities"], atol=1e-5, rtol=0)


def test_upernet_v040_keeps_smp_0_4_0s_layout() -> None:
    # FLAIR-HUB's decoder is built from a 1-channel model: one FPN stage more than the features
    # it uses, with a 1-channel skip (keys present in its files); 5 levels of 256 into the fuser.
    from flairlc.models.upernet_v040 import UPerNetV040

    net = UPerNetV040("tu-test_convnext", in_channels=3, classes=19).eval()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["decoder.fpn_stages.4.skip_conv.0.weight"] == (256, 1, 1, 1)
    assert "decoder.fpn_stages.3.skip_conv.0.weight" not in shapes  # the empty stride-2 level
    assert shapes["decoder.fpn_bottleneck.0.weight"] == (64, 5 * 256, 3, 3)
    assert shapes["decoder.psp.blocks.0.1.0.weight"] == (64 // 4, 64, 1, 1)  # deepest features / 4
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 19, 64, 64)


def test_provenance_and_info(tmp_path: Path) -> None:
    import hashlib
    import subprocess

    path, _ = flair_inc_file(tmp_path, 3)
    import_published_model(path, "flair-inc", tmp_path / "m.ckpt")
    out = subprocess.run([*flairlc_command(), "models", "--info", str(tmp_path / "m.ckpt"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    info = json.loads(out)
    assert info["provenance"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info["provenance"]["family"] == "flair-inc" and info["provenance"]["file"] == path.name
    assert info["bands"] == ["R", "G", "B"] and info["aerial_scaling"]["mean"] == INC_MEAN[:3]
    assert [c["name"] for c in info["classes"] if not c["active"]] == ["clear cut", "mixed", "ligneous", "other"]
    assert info["parameters"] == sum(p.numel() for p in smp.Unet("resnet34", encoder_weights=None, in_channels=3, classes=19).parameters())


def test_info_names_an_imported_upernet_by_its_architecture(tmp_path: Path) -> None:
    from flairlc.training.info import checkpoint_info, format_info

    import_published_model(UPERNET_FIXTURE, "flair-hub-aerial", tmp_path / "up.ckpt", encoder="test_convnext")
    info = checkpoint_info(tmp_path / "up.ckpt")
    assert info["architecture"] == "UPerNet (smp 0.4.0)"
    model_line = format_info(info).splitlines()[2]
    assert model_line.startswith("model        UPerNet (smp 0.4.0) (arch=upernet_v040, encoder_name=tu-test_convnext"), model_line
    path, _ = flair_inc_file(tmp_path, 3)
    import_published_model(path, "flair-inc", tmp_path / "inc.ckpt")
    assert checkpoint_info(tmp_path / "inc.ckpt")["architecture"] == "U-Net"


# --- refused files ---------------------------------------------------------------------------------

class _Opaque:
    """A Python object that a weights-only load refuses."""


def test_refused_files_get_one_line_naming_the_problem(tmp_path: Path) -> None:
    inc, _ = flair_inc_file(tmp_path, 4)
    with pytest.raises(PublishedModelError, match="not a FLAIR-HUB model.*--family flair-inc"):
        import_published_model(inc, "flair-hub-aerial", tmp_path / "x.ckpt")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(inc.read_bytes()[: 200_000])
    with pytest.raises(PublishedModelError, match="truncated.pth: not a PyTorch weights file"):
        import_published_model(truncated, "flair-inc", tmp_path / "x.ckpt")
    # An old Lightning checkpoint that pickles Python objects: a safe load refuses, saying how to proceed.
    unsafe = tmp_path / "old.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": _Opaque()}, unsafe)
    with pytest.raises(PublishedModelError, match=r"old.ckpt: holds a Python object \(.*_Opaque\).*weights_only=False"):
        import_published_model(unsafe, "flair-inc", tmp_path / "x.ckpt")
    hub, reference = flair_hub_file(tmp_path, "RGB", encoder="convnextv2atto")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(hub.read_bytes()[:1000])
    with pytest.raises(PublishedModelError, match="cut.safetensors: not a readable safetensors file"):
        import_published_model(cut, "flair-hub-aerial", tmp_path / "x.ckpt", encoder="convnextv2_atto")
    # Missing and unexpected keys: the first ones are named.
    state = reference.published_state()
    state.pop("model.main_decoders.AERIAL_LABEL-COSIA.seg_model.decoder.blocks.0.conv1.0.weight")
    state["model.encoders.AERIAL_RGBI.seg_model.model.extra_layer.weight"] = torch.zeros(1)
    odd = tmp_path / "FLAIR-HUB_LC-A_RGB_convnextv2atto-unet-edited.safetensors"
    save_file(state, str(odd))
    with pytest.raises(PublishedModelError, match=r"1 missing \(first: \['decoder.blocks.0.conv1.0.weight'\]\); 1 unexpected \(first: \['encoder.model.extra_layer.weight'\]\)"):
        import_published_model(odd, "flair-hub-aerial", tmp_path / "x.ckpt", encoder="convnextv2_atto")
    # A file of another encoder than its name says: shapes do not fit.
    with pytest.raises(PublishedModelError, match="do not fit the network"):
        import_published_model(hub, "flair-hub-aerial", tmp_path / "x.ckpt", encoder="convnextv2_femto")
    upernet = tmp_path / "FLAIR-HUB_LC-A_IR_swinbase-upernet.safetensors"
    save_file({"model.encoders.AERIAL_RGBI.seg_model.model.x": torch.zeros(1),
               "model.main_decoders.AERIAL_LABEL-COSIA.seg_model.segmentation_head.0.weight": torch.zeros(1)}, str(upernet))
    with pytest.raises(PublishedModelError, match="no decoder.psp.out_conv.0.weight: not the UPerNet of FLAIR-HUB"):
        import_published_model(upernet, "flair-hub-aerial", tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_a_multimodal_flair_hub_file_is_refused_naming_its_modalities(tmp_path: Path) -> None:
    # A Sentinel-2 encoder beside the aerial one, and the fusion that mixes them: importing the
    # aerial branch alone would write a model that predicts something else than IGN's.
    _, reference = flair_hub_file(tmp_path, "RGB", encoder="convnextv2atto")
    state = reference.published_state()
    state["model.encoders.SENTINEL2_TS.seg_model.encoder.conv.weight"] = torch.zeros(8, 10, 3, 3)
    path = tmp_path / "FLAIR-HUB_LC-A-S2_RGB_convnextv2atto-unet.safetensors"
    save_file(state, str(path))
    with pytest.raises(PublishedModelError) as error:
        import_published_model(path, "flair-hub-aerial", tmp_path / "x.ckpt", encoder="convnextv2_atto")
    assert str(error.value) == (f"{path}: a multimodal FLAIR-HUB model (modalities AERIAL_RGBI, SENTINEL2_TS); "
                                "--family flair-hub-aerial imports aerial-only models (one AERIAL_* encoder)")
    assert not (tmp_path / "x.ckpt").exists()


# --- mapping with imported models -------------------------------------------------------------------

def _raster(path: Path, bands: int, size: int = 192, seed: int = 0) -> Path:
    return write_raster(path, np.random.default_rng(seed).integers(0, 256, (bands, size, size), dtype=np.uint8))


def test_map_with_an_rgb_model_on_an_rgb_orthophoto(tmp_path: Path) -> None:
    path, reference = flair_inc_file(tmp_path, 3)
    import_published_model(path, "flair-inc", tmp_path / "rgb.ckpt")
    task = load_task(tmp_path / "rgb.ckpt")
    ortho = _raster(tmp_path / "ortho_rgb.tif", 3, size=128)
    result = map_raster(task, ortho, tmp_path / "map.tif",
                        options=MapOptions(window=128, overlap=0), progress=False)
    with rasterio.open(ortho) as ds:
        rgb = torch.from_numpy(ds.read())[None]
    with torch.no_grad():
        logits = reference(_standardize(torch.cat([rgb, torch.zeros(1, 2, 128, 128, dtype=torch.uint8)], 1), FLAIR_ORDER[:3], INC_MEAN[:3], INC_STD[:3]))
    active = [v - 1 for v in (*range(1, 15), 18)]
    expected = torch.tensor(active)[logits[0, active].argmax(0)].numpy()
    with rasterio.open(result.map_path) as ds:
        # One window covers the raster: the map is the reference's argmax over the 15 classes.
        assert (ds.read(1) == expected).mean() > 0.999
        assert ds.colormap(1)[0][:3] == (0xDB, 0x0E, 0x9A) and ds.tags()["FLAIRLC_NOMENCLATURE"] == "raw"


def test_map_with_a_flair_hub_ir_model_names_cosia_classes(tmp_path: Path) -> None:
    path, _ = flair_hub_file(tmp_path, "IR", encoder="convnextv2atto")
    import_published_model(path, "flair-hub-aerial", tmp_path / "ir.ckpt", encoder="convnextv2_atto")
    task = load_task(tmp_path / "ir.ckpt")
    rgbi = _raster(tmp_path / "rgbi.tif", 4)
    result = map_raster(task, rgbi, tmp_path / "map.tif",
                        options=MapOptions(window=128, overlap=32), progress=False)
    cosia = nomenclature.get("cosia")
    with rasterio.open(result.map_path) as ds:
        values = np.unique(ds.read(1))
        colours = ds.colormap(1)
        assert ds.tags()["FLAIRLC_NOMENCLATURE"] == "cosia"
    assert set(values.tolist()) <= set(range(15))
    assert [colours[k][:3] for k in range(19)] == [c.rgb for c in cosia.classes]
    qml = result.qml_path.read_text()
    assert 'label="swimming pool"' in qml and 'label="undefined"' in qml and qml.count("<paletteEntry") == 19
    areas = compute_areas(result.map_path, out_dir=tmp_path / "areas")
    assert "greenhouse" in areas.to_csv()
    # Artificialized surface: CoSIA's building (0), impervious (3) and pervious (4) surfaces.
    with rasterio.open(result.map_path) as ds:
        classes = ds.read(1)
    assert areas.overall.artificial_m2 == pytest.approx(np.isin(classes, [0, 3, 4]).sum() * 0.04)
    # The same raster with its bands named in another order reads other pixels for NIR, R, G.
    other = map_raster(task, rgbi, tmp_path / "map2.tif",
                       options=MapOptions(window=128, overlap=32, aerial_bands="NIR,R,G,B"), progress=False)
    with rasterio.open(result.map_path) as a, rasterio.open(other.map_path) as b:
        assert (a.read(1) != b.read(1)).any()


def test_map_refuses_a_raster_without_the_models_bands(tmp_path: Path) -> None:
    from flairlc.mapping import MappingInputError

    path, _ = flair_hub_file(tmp_path, "IR", encoder="convnextv2atto")
    import_published_model(path, "flair-hub-aerial", tmp_path / "ir.ckpt", encoder="convnextv2_atto")
    rgb = _raster(tmp_path / "rgb.tif", 3, size=64)
    with pytest.raises(MappingInputError, match=r"reads bands \['NIR', 'R', 'G'\] but aerial image .*rgb.tif holds \['R', 'G', 'B'\]: \['NIR'\] missing"):
        map_raster(load_task(tmp_path / "ir.ckpt"), rgb, tmp_path / "m.tif", progress=False)


# --- fine-tuning ------------------------------------------------------------------------------------

#: A user's 3 classes made of FLAIR's raw values (every value 1..19 has one).
THREE_CLASSES = {
    "name": "three",
    "classes": [
        {"name": "built", "color": "#db0e9a", "mask_values": [1, 2, 3, 4, 13, 18, 19]},
        {"name": "woody", "color": "#194a26", "mask_values": [6, 7, 8, 9, 15, 16, 17]},
        {"name": "open", "color": "#55ff00", "mask_values": [5, 10, 11, 12, 14]},
    ],
}
HEAD_INIT = {"built": ["building", "impervious surface"], "woody": ["coniferous", "brushwood"],
             "open": ["herbaceous vegetation", "agricultural land"]}


#: The fine-tuning data: 6 domains (2 for testing) of 16 patches of 64 px, every class present.
FINE_TUNING_DATA = SyntheticSize(domains=6, test_domains=2, areas_per_domain=4, patches_per_area=4, dates=4)


def fine_tune_three_classes(root: Path, checkpoint: Path, work: Path, seed: int = 0, epochs: int = 12) -> list[float]:
    """Fine-tune an imported 3-band model to :data:`THREE_CLASSES`; per-class test IoU."""
    L.seed_everything(seed, workers=True)
    nomenclature_file = work / "three.json"
    nomenclature_file.write_text(json.dumps(THREE_CLASSES))
    info = torch.load(checkpoint, weights_only=True)["hyper_parameters"]
    task = SegmentationTask(
        model="unet", model_kwargs=info["model_kwargs"], nomenclature=str(nomenclature_file), bands=info["bands"],
        aerial_scaling="standardize", aerial_mean=info["aerial_mean"], aerial_std=info["aerial_std"],
        optimizer="adamw", lr=1e-3, scheduler="cosine", init_checkpoint=str(checkpoint), head_init=HEAD_INIT,
    )
    data = FlairDataModule(str(root), batch_size=8, nomenclature=str(nomenclature_file), val_fraction=0.2)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, deterministic=True,
                        default_root_dir=work)
    trainer.fit(task, datamodule=data)
    trainer.test(task, datamodule=data, verbose=False)
    return [float(v) for v in task.test_result.overall().iou]


@pytest.mark.slow
def test_fine_tuning_a_19_class_model_to_3_classes_learns_all_3(tmp_path: Path) -> None:
    root = FINE_TUNING_DATA.generate(tmp_path / "flair", seed=0)
    path, _ = flair_inc_file(tmp_path, 3)
    import_published_model(path, "flair-inc", tmp_path / "inc.ckpt")
    iou = fine_tune_three_classes(root, tmp_path / "inc.ckpt", tmp_path)
    # Every class is predicted somewhere right (labels 1..19 go through the nomenclature, so no
    # class is lost to an off-by-one as in IGNF/FLAIR-1#22). Smallest class IoU measured over 5 seeds
    # x {1, 2} threads: 0.21-0.64 (benchmarks/RESULTS.md); the bar 0.1 is half the lowest.
    assert len(iou) == 3 and min(iou) > 0.1, iou


def test_fine_tuning_refuses_a_checkpoint_of_other_inputs(tmp_path: Path) -> None:
    path, _ = flair_inc_file(tmp_path, 3)
    import_published_model(path, "flair-inc", tmp_path / "inc.ckpt")
    with pytest.raises(ValueError, match=r"--model.bands \[R, G, B\].*--model.aerial_scaling standardize"):
        SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet34"}, init_checkpoint=str(tmp_path / "inc.ckpt"))
    with pytest.raises(ValueError, match=r"head_init names classes \['roads'\]"):
        SegmentationTask(model="unet", model_kwargs={"arch": "unet", "encoder_name": "resnet34"}, bands=["R", "G", "B"],
                         aerial_scaling="standardize", aerial_mean=INC_MEAN[:3], aerial_std=INC_STD[:3],
                         nomenclature=THREE_CLASSES, init_checkpoint=str(tmp_path / "inc.ckpt"), head_init={"roads": "building"})


def test_fine_tuned_head_starts_from_the_named_classes(tmp_path: Path) -> None:
    path, reference = flair_inc_file(tmp_path, 3)
    import_published_model(path, "flair-inc", tmp_path / "inc.ckpt")
    task = SegmentationTask(model="unet", model_kwargs={"arch": "unet", "encoder_name": "resnet34"}, bands=["R", "G", "B"],
                            aerial_scaling="standardize", aerial_mean=INC_MEAN[:3], aerial_std=INC_STD[:3],
                            nomenclature=THREE_CLASSES, init_checkpoint=str(tmp_path / "inc.ckpt"), head_init=HEAD_INIT)
    head = reference.segmentation_head[0]
    new = task.net.net.segmentation_head[0]
    raw = nomenclature.get("raw")
    for j, name in enumerate(["built", "woody", "open"]):
        rows = [raw.index_of(n) for n in HEAD_INIT[name]]
        assert torch.allclose(new.weight[j], head.weight[rows].mean(0)) and torch.allclose(new.bias[j], head.bias[rows].mean(0))
    assert torch.equal(task.net.net.encoder.conv1.weight, reference.encoder.conv1.weight)
    assert task.provenance["init_nomenclature"] == "raw"


def test_predict_command_reads_an_imported_checkpoint(synthetic_root: Path, tmp_path: Path) -> None:
    # Under the 13-class config, the data takes the checkpoint's 19 raw classes (with a warning).
    import subprocess

    path, _ = flair_inc_file(tmp_path, 4)
    import_published_model(path, "flair-inc", tmp_path / "rgbi.ckpt")
    config = Path(__file__).parents[1] / "configs" / "unet.yaml"
    run = subprocess.run([*flairlc_command(), "predict", "--config", str(config), "--data.root", str(synthetic_root),
                          "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.precision", "32-true",
                          "--data.num_workers", "0", "--run_dir", str(tmp_path / "run"), "--ckpt_path", str(tmp_path / "rgbi.ckpt")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "predicts the 'raw' classes" in run.stderr
    predictions = sorted((tmp_path / "run" / "predictions").glob("PRED_*.tif"))
    assert predictions
    with rasterio.open(predictions[0]) as ds:
        values = set(np.unique(ds.read(1)).tolist())
        assert ds.colormap(1)[17][:3] == nomenclature.get("raw").classes[17].rgb  # greenhouse
    assert values <= {v - 1 for v in (*range(1, 15), 18)}


def test_a_band_subset_model_trains_on_flair_batches_and_checks_its_inputs() -> None:
    # FLAIR batches hold 5 bands; a NIR, R, G model takes its own, in its order.
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18"}, bands=["nir", "red", "G"],
                            aerial_scaling="standardize")
    assert task.bands == ("NIR", "R", "G") and task.net.net.encoder.conv1.in_channels == 3
    assert task.hparams["aerial_mean"] == [106.38, 105.08, 110.87]  # IGN's statistics of those bands
    aerial = torch.randint(0, 256, (2, 5, 64, 64), dtype=torch.uint8)
    batch = {"aerial": aerial, "mask": torch.randint(0, 13, (2, 64, 64))}
    loss = task.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and task.net.net.encoder.conv1.weight.grad is not None
    # The scaled input is exactly bands 4, 1, 2 of the batch.
    expected = (aerial[:, [3, 0, 1]].double() - torch.tensor([106.38, 105.08, 110.87], dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor([39.69, 52.17, 45.38], dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.equal(task._aerial_input(aerial), expected.float())
    with pytest.raises(ValueError, match="unknown aerial band 'SWIR'"):
        SegmentationTask(model="unet", bands=["R", "SWIR"])
    # FLAIR-HUB batches hold R, G, B, NIR: the same bands picked from 4 channels.
    assert torch.equal(task._aerial_input(aerial[:, :4]), expected.float())
    with pytest.raises(ValueError, match=r"reads bands \['NIR', 'R', 'G'\] but the aerial batch holds \['R', 'G', 'B'\]: NIR missing"):
        task.forward_batch({"aerial": aerial[:, :3]})
    with pytest.raises(ValueError, match=r"aerial batches hold 1 to 5 bands .* got 6 channels"):
        task.forward_batch({"aerial": torch.cat([aerial, aerial[:, :1]], 1)})


def test_a_user_nomenclature_reaches_the_map_style_and_areas(tmp_path: Path) -> None:
    import datetime

    three = nomenclature.get(THREE_CLASSES)

    class ThreeClassPredictor:
        num_classes, aerial_channels, uses_sentinel, sat_patch_size = 3, 5, False, 40
        reference_date = datetime.date(2021, 5, 15)
        bands, nomenclature = ("R", "G", "B"), three

        def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return torch.nn.functional.one_hot(batch["aerial"][:, 0].long() % 3, 3).permute(0, 3, 1, 2).float()

    result = map_raster(ThreeClassPredictor(), _raster(tmp_path / "rgb.tif", 3, size=64), tmp_path / "map.tif", progress=False)
    with rasterio.open(result.map_path) as ds:
        assert json.loads(ds.tags()["FLAIRLC_CLASSES"])["classes"][1]["name"] == "woody"
        assert ds.colormap(1)[1][:3] == (0x19, 0x4A, 0x26)
    assert 'label="open"' in result.qml_path.read_text()
    areas = compute_areas(result.map_path, out_dir=tmp_path / "areas")
    assert areas.class_names == ["built", "woody", "open"] and "artificialized" not in areas.to_csv()
    assert areas.to_dict()["overall"]["artificialized_m2"] is None
