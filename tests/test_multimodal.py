"""The FLAIR-HUB multimodal network: shapes per modality subset, what the fusion reads, modality
dropout, the trained model's inputs and checkpoints, and fit then test on a FLAIR-HUB root."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch

from flairlc.inference import TrainedModel, load_trained_model
from flairlc.models import FusionOutput, MultimodalNet, create_model
from flairlc.training import FlairHubDataModule
from flairlc.training.checkpoint import load_task, save_task
from flairlc.training.task import SegmentationTask

CONFIGS = Path(__file__).parents[1] / "configs" / "cpu"
K = 7
#: A small network: ResNet18 encoders, a 2-level U-TAE for 10 x 10 px series.
SMALL = {"encoder_name": "resnet18", "encoder_widths": (16, 32), "decoder_widths": (16, 32), "n_head": 4, "d_model": 32}
#: Every modality subset the network accepts.
SUBSETS = [("aerial",), ("dem",), ("aerial", "dem"), ("aerial", "sentinel"), ("dem", "sentinel"),
           ("aerial", "dem", "sentinel")]


@pytest.fixture(autouse=True)
def _one_thread():
    # the test machine is shared: one thread per test
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _net(modalities: tuple[str, ...], **kwargs: object) -> MultimodalNet:
    torch.manual_seed(0)
    # 32 px patches: 10 Sentinel-2 px of 0.64 m cover them
    return create_model("multimodal", num_classes=K, modalities=modalities, sentinel_resolution_m=0.64,
                        **SMALL, **kwargs).eval()


def _batch(size: int = 32, seed: int = 1) -> dict[str, torch.Tensor]:
    """A raw batch as FlairHubDataModule gives it: 5 aerial bands, a 10 x 10 px series of 3 dates."""
    g = torch.Generator().manual_seed(seed)
    return {
        "aerial": torch.randint(0, 256, (2, 5, size, size), dtype=torch.uint8, generator=g),
        "sentinel": torch.randint(0, 10000, (2, 3, 10, 10, 10), generator=g).float(),
        "dates_days": torch.tensor([[10, 50, 90], [20, 60, 100]]),
        "sentinel_pad_mask": torch.tensor([[False, False, False], [False, False, True]]),
    }


def _trained(modalities: tuple[str, ...], bands: list[str], **kwargs: object) -> TrainedModel:
    torch.manual_seed(0)
    return TrainedModel("multimodal", {**SMALL, "modalities": list(modalities)}, nomenclature="cosia", bands=bands,
                        aerial_scaling="standardize", sentinel_resolution_m=0.64, **kwargs).eval()


# --- the network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("modalities", SUBSETS)
def test_output_shapes_for_each_modality_subset(modalities: tuple[str, ...]) -> None:
    net = _net(modalities)
    batch = _batch()
    aerial = batch["aerial"].float() / 255
    with torch.no_grad():
        out = net(aerial, batch["sentinel"] / 10000, batch["dates_days"], batch["sentinel_pad_mask"])
    assert isinstance(out, FusionOutput) and out.logits.shape == (2, K, 32, 32)
    if "sentinel" in modalities:
        assert out.aux_logits is not None and out.aux_logits.shape == (2, K, 32, 32)
    else:
        assert out.aux_logits is None
    # default channels: FLAIR's order restricted to the selected image modalities
    expected = {"aerial": (0, 1, 2, 3), "dem": (4,)} if "aerial" in modalities else {"dem": (0,)}
    assert net.image_channels == {m: c for m, c in expected.items() if m in modalities}
    assert (net.fusion is None) == (len(modalities) == 1)


def test_aerial_alone_is_an_smp_unet() -> None:
    net = _net(("aerial",), encoder_depth=4)
    torch.manual_seed(3)
    unet = smp.Unet("resnet18", encoder_depth=4, encoder_weights=None, decoder_channels=(256, 128, 64, 32),
                    in_channels=4, classes=K).eval()
    renamed = {("encoders.aerial." + k[len("encoder."):] if k.startswith("encoder.") else k): v
               for k, v in unet.state_dict().items()}
    net.load_state_dict(renamed, strict=True)  # the same modules, no others
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x).logits, unet(x))


def test_aerial_alone_ignores_any_series() -> None:
    net = _net(("aerial",))
    batch = _batch()
    x = batch["aerial"].float() / 255
    with torch.no_grad():
        assert torch.equal(net(x).logits, net(x, batch["sentinel"], batch["dates_days"]).logits)
    trained = _trained(("aerial",), ["R", "G", "B", "NIR"])
    assert trained.required_modalities == ("aerial",) and not trained.uses_sentinel and trained.uses_aerial
    without = {"aerial": batch["aerial"][:, :4]}  # FLAIR-HUB without the DEM: 4 bands
    with torch.no_grad():
        assert torch.equal(trained.predict_proba(batch), trained.predict_proba(without))


@pytest.mark.parametrize(("modalities", "bands"), [
    (("aerial", "dem", "sentinel"), ["R", "G", "B", "NIR", "elevation"]),
    (("aerial", "sentinel"), ["R", "G", "B", "NIR"]),
    (("aerial", "dem"), ["R", "G", "B", "NIR", "elevation"]),
])
def test_the_fusion_reads_each_selected_modality_and_no_other(modalities: tuple[str, ...], bands: list[str]) -> None:
    trained = _trained(modalities, bands)
    batch = _batch()
    other_elevation = {**batch, "aerial": batch["aerial"].clone()}
    other_elevation["aerial"][:, 4] = 255 - other_elevation["aerial"][:, 4]
    other_series = {**batch, "sentinel": batch["sentinel"].flip(1)}
    with torch.no_grad():
        logits = trained.forward_batch(batch)[0]
        assert torch.equal(trained.forward_batch(other_elevation)[0], logits) == ("dem" not in modalities)
        assert torch.equal(trained.forward_batch(other_series)[0], logits) == ("sentinel" not in modalities)


def test_modality_dropout_never_drops_every_modality_and_is_off_in_eval() -> None:
    net = _net(("aerial", "dem", "sentinel"), modality_dropout=1.0).train()
    torch.manual_seed(0)
    kept = net.kept_modalities(1000)
    assert kept.shape == (1000, 3) and kept.sum(dim=1).tolist() == [1] * 1000  # all drawn: one kept
    assert set(kept.float().argmax(dim=1).tolist()) == {0, 1, 2}
    half = _net(("aerial", "dem", "sentinel"), modality_dropout=0.5).train()
    kept = half.kept_modalities(1000)
    assert kept.any(dim=1).all() and 0 < kept.all(dim=1).sum() < 1000
    assert _net(("aerial",), modality_dropout=1.0).train().kept_modalities(4) is None  # nothing to drop
    # eval: no dropout, the function of the same weights without it
    net.eval()
    plain = _net(("aerial", "dem", "sentinel"))
    plain.load_state_dict(net.state_dict())
    batch = _batch()
    args = (batch["aerial"].float() / 255, batch["sentinel"] / 10000, batch["dates_days"])
    assert net.kept_modalities(2) is None
    with torch.no_grad():
        assert torch.equal(net(*args).logits, plain(*args).logits)


def test_a_dropped_modality_does_not_reach_the_logits() -> None:
    # One sample per step (batch norm mixes the samples of a batch in training) of 64 px.
    net = _net(("aerial", "dem"), modality_dropout=1.0).train()
    x = torch.rand(1, 5, 64, 64)
    other_dem, other_aerial = x.clone(), x.clone()
    other_dem[:, 4] = 1 - other_dem[:, 4]
    other_aerial[:, :4] = 1 - other_aerial[:, :4]
    seen = set()
    for seed in range(6):
        torch.manual_seed(seed)
        kept = tuple(net.kept_modalities(1)[0].tolist())  # the forward's first draw
        outputs = []
        for inputs in (x, other_dem, other_aerial):
            torch.manual_seed(seed)
            with torch.no_grad():
                outputs.append(net(inputs).logits)
        assert torch.equal(outputs[1], outputs[0]) == (kept == (True, False))
        assert torch.equal(outputs[2], outputs[0]) == (kept == (False, True))
        seen.add(kept)
    assert seen == {(True, False), (False, True)}


def test_bad_modalities_and_bands_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown modality 'aerial_rlt': expected some of \['aerial', 'dem', 'spot', "
                                         r"'sentinel', 'sentinel1_asc', 'sentinel1_desc'\]"):
        MultimodalNet(modalities=("aerial", "aerial_rlt"))
    with pytest.raises(ValueError, match=r"hold no image modality.*use the 'utae' model"):
        MultimodalNet(modalities=("sentinel",))
    with pytest.raises(ValueError, match="modality_dropout=1.5 is not a probability"):
        MultimodalNet(modality_dropout=1.5)
    with pytest.raises(ValueError, match=r"modality 'dem' reads the elevation band but bands are \['R', 'G', 'B', 'NIR'\]: "
                                         r"add elevation to bands or drop 'dem'"):
        _trained(("aerial", "dem"), ["R", "G", "B", "NIR"])
    with pytest.raises(ValueError, match=r"bands \['R', 'G', 'B', 'NIR', 'elevation'\] hold the elevation band but "
                                         r"model_kwargs.modalities \['aerial'\] have no 'dem'"):
        _trained(("aerial",), ["R", "G", "B", "NIR", "elevation"])
    with pytest.raises(ValueError, match="the 'multimodal' model reads no metadata"):
        _trained(("aerial",), ["R", "G", "B", "NIR"], use_metadata=True)
    trained = _trained(("aerial", "sentinel"), ["R", "G", "B", "NIR"])
    with pytest.raises(ValueError, match="reads a Sentinel-2 series: 'sentinel' is missing from the batch"):
        trained.forward_batch({"aerial": _batch()["aerial"]})


# --- checkpoints and training ---------------------------------------------------------------------


def test_a_saved_task_reloads_and_predicts_identically(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = SegmentationTask(model="multimodal", model_kwargs={**SMALL, "modalities": ["dem", "sentinel", "aerial"]},
                            nomenclature="cosia", bands=["NIR", "elevation", "R", "G"], aerial_scaling="standardize",
                            sentinel_scaling="reflectance", sentinel_resolution_m=0.64, active_classes=list(range(15)))
    path = save_task(task.eval(), tmp_path / "multimodal.ckpt")
    trained, loaded = load_trained_model(path), load_task(path)
    assert type(trained) is TrainedModel and trained.required_modalities == ("aerial", "sentinel")
    assert trained.net.image_channels == {"aerial": (0, 2, 3), "dem": (1,)}
    batch = _batch()
    with torch.inference_mode():
        expected = task.predict_proba(batch)
        assert torch.equal(trained.predict_proba(batch), expected)
        assert torch.equal(loaded.predict_proba(batch), expected)
    assert expected[:, 15:].max() == 0


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flairlc.data.synthetic.hub import generate_hub_dataset

    root = tmp_path_factory.mktemp("hubmultimodal") / "hub"
    return generate_hub_dataset(root, domains=1, rois_per_domain=3, patches_per_side=2, patch_size=32, dates=4, seed=5).out


@pytest.mark.parametrize(("config", "inputs"), [("hub_multimodal", ("aerial", "sentinel")), ("hub_aerial", ("aerial",))])
def test_fit_then_test_through_the_cli(config: str, inputs: tuple[str, ...], tiny_hub: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from flairlc.cli import main

    monkeypatch.chdir(tmp_path)
    common = ["--config", str(CONFIGS / f"{config}.yaml"), "--data.root", str(tiny_hub), "--run_dir", "run",
              "--trainer.enable_progress_bar", "false"]
    # 32 px patches: the series' 10 px cover 6.4 m, 0.64 m each.
    series = ["--model.sentinel_resolution_m", "0.64"] if "sentinel" in inputs else []
    main(["fit", *common, "--trainer.max_epochs", "1", "--data.batch_size", "4", *series])
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    trained, task = load_trained_model(path), load_task(path)
    assert trained.architecture == "multimodal" and trained.required_modalities == inputs
    data = FlairHubDataModule(str(tiny_hub), modalities=[*(["aerial", "dem"] if config == "hub_multimodal" else ["aerial"]),
                                                         *(["sentinel"] if "sentinel" in inputs else []), "mask"])
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    with torch.inference_mode():
        assert torch.equal(trained.predict_proba(batch), task.predict_proba(batch))
    main(["test", *common, *series, "--ckpt_path", "last"])
    evaluation = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["metadata"]["num_patches"] == 4
    assert sum(map(sum, evaluation["confusion_matrix"])) == 4 * 32 * 32


def test_the_task_keeps_its_network_arguments_in_its_hyper_parameters() -> None:
    task = SegmentationTask(model="multimodal", model_kwargs={**SMALL, "modalities": ["aerial"]}, bands=["R", "G", "B"])
    # the channels are derived from the bands at every load, never stored
    assert "image_channels" not in task.hparams["model_kwargs"]
    again = SegmentationTask(**copy.deepcopy(dict(task.hparams)))
    assert again.net.image_channels == {"aerial": (0, 1, 2)}
