"""The trained model without Lightning: its predictions are the task's, and the mapping and
evaluation paths import no training framework (checked in fresh interpreters)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import flairlc
from flairlc.inference import TrainedModel, load_trained_model
from flairlc.mapping.predictor import Predictor
from flairlc.training.checkpoint import load_task, save_task
from flairlc.training.task import SegmentationTask

#: Modules a process that maps or evaluates must never import (torch._dynamo: only --runtime compile).
TRAINING_FRAMEWORKS = ("lightning", "pytorch_lightning", "lightning_fabric", "torchmetrics", "transformers", "torch._dynamo")
#: Once the network is built: segmentation_models_pytorch's encoders import torchvision, whose
#: ``torchvision.ops`` imports ``torch._dynamo`` (the network's library, not flairlc).
NETWORK_FREE_OF = tuple(m for m in TRAINING_FRAMEWORKS if m != "torch._dynamo")
SMALL_UNET = {"encoder_name": "resnet18", "encoder_weights": None}


def _imported_frameworks(code: str, cwd: Path, frameworks: tuple[str, ...] = TRAINING_FRAMEWORKS) -> list[str]:
    """The ``frameworks`` in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    check = f"\nimport sys, json\nprint(json.dumps([m for m in {frameworks!r} if m in sys.modules]))"
    source = str(Path(flairlc.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code + check], capture_output=True, text=True, cwd=cwd, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_mapping_imports_no_training_framework(tmp_path: Path) -> None:
    assert _imported_frameworks("import flairlc.mapping", tmp_path) == []


def test_importing_evaluation_imports_no_training_framework(tmp_path: Path) -> None:
    assert _imported_frameworks("import flairlc.evaluation, flairlc.evaluation.runner", tmp_path) == []


def test_flairlc_map_loads_and_maps_without_a_training_framework(tmp_path: Path) -> None:
    from flairlc.data.synthetic import generate_orthophoto

    torch.manual_seed(0)
    checkpoint = save_task(SegmentationTask(model_kwargs=SMALL_UNET, bands=["R", "G", "B", "NIR"]), tmp_path / "model.ckpt")
    year = generate_orthophoto(tmp_path / "territory", width=128, height=128, seed=1, years=(2022,), dates=1)[0]
    code = (
        "from flairlc.cli import main\n"
        f"assert main(['map', '--checkpoint', {str(checkpoint)!r}, '--aerial', {str(year.aerial)!r},"
        f" '--out', 'map.tif', '--window', '128', '--overlap', '0']) == 0"
    )
    assert _imported_frameworks(code, tmp_path, NETWORK_FREE_OF) == []
    assert (tmp_path / "map.tif").is_file()


@pytest.mark.parametrize("model", ["unet", "utt"])
def test_trained_model_predicts_as_the_task(model: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    kwargs = {"model_kwargs": SMALL_UNET} if model == "unet" else {}
    # Bands in another order, standardization and inactive classes: every step of the inference.
    task = SegmentationTask(model=model, bands=["NIR", "R", "G"], aerial_scaling="standardize",
                            active_classes=list(range(10)), **kwargs)
    path = save_task(task, tmp_path / f"{model}.ckpt")
    trained, loaded = load_trained_model(path), load_task(path)
    assert type(trained) is TrainedModel and not trained.training and isinstance(trained, Predictor)
    generator = torch.Generator().manual_seed(1)
    batch = {"aerial": torch.randint(0, 256, (2, 5, 64, 64), dtype=torch.uint8, generator=generator)}
    if model == "utt":
        batch |= {"sentinel": torch.randint(0, 10000, (2, 3, 10, 40, 40), generator=generator).float(),
                  "dates_days": torch.tensor([[10, 50, 90], [20, 60, 100]]),
                  "sentinel_pad_mask": torch.tensor([[False, False, False], [False, False, True]])}
    with torch.inference_mode():
        expected = loaded.predict_proba(batch)
        assert torch.equal(trained.predict_proba(batch), expected)
        assert torch.equal(trained.predict_classes(batch), expected.argmax(dim=1))
    assert expected[:, 10:].max() == 0  # inactive classes
    assert (trained.bands, trained.num_classes, trained.sat_patch_size, trained.series_preprocessing) == (
        loaded.bands, loaded.num_classes, loaded.sat_patch_size, loaded.series_preprocessing)


def test_evaluating_a_checkpoint_without_lightning_scores_as_the_trainer(synthetic_root: Path, tmp_path: Path) -> None:
    import lightning as L
    from torch.utils.data import DataLoader

    from flairlc.data import FlairDataset, collate_flair, discover_patches
    from flairlc.evaluation.runner import evaluate_checkpoint

    torch.manual_seed(0)
    path = save_task(SegmentationTask(model_kwargs=SMALL_UNET, active_classes=list(range(10))), tmp_path / "m.ckpt")
    result = evaluate_checkpoint(path, synthetic_root, split="test", batch_size=2, accelerator="cpu", devices=1)
    task = load_task(path)
    dataset = FlairDataset(discover_patches(synthetic_root, splits=("test",)), modalities=["aerial", "mask"])
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.test(task, dataloaders=DataLoader(dataset, batch_size=3, collate_fn=collate_flair), verbose=False)
    expected = task.test_result
    assert result.confusion.sum() > 0 and (result.confusion == expected.confusion).all()
    assert result.domain_confusion.keys() == expected.domain_confusion.keys()
    assert all((result.domain_confusion[d] == m).all() for d, m in expected.domain_confusion.items())
    assert result.metadata["num_patches"] == expected.metadata["num_patches"] == len(dataset)


def test_evaluation_runs_on_one_device_and_says_so() -> None:
    from flairlc.evaluation.runner import evaluation_device

    assert evaluation_device("cpu", 1) == evaluation_device("cpu", "auto") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^--devices 2: evaluate runs on one device: give 1, or a GPU index as 'N,'$"):
        evaluation_device("cpu", 2)
    with pytest.raises(ValueError, match=r"^--accelerator tpu: expected auto, cpu, gpu, cuda or mps$"):
        evaluation_device("tpu")


def test_predicted_classes_are_the_argmax_of_the_written_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """``evaluate --checkpoint`` and ``test`` score what ``predict`` writes and ``map`` decides (the
    argmax of the probabilities), even where two logits differ by less than their softmax resolves."""
    model = TrainedModel("unet", {"encoder_name": "resnet18"}, nomenclature="baseline").eval()
    logits = torch.zeros(1, model.num_classes, 1, 2)
    logits[0, 3, 0, 0] = 1e-9  # softmax: class 0 and class 3 round to the same float32
    logits[0, 5, 0, 1] = 2.0   # a clear winner
    monkeypatch.setattr(model, "forward_batch", lambda batch, size=None: (logits, None))
    probabilities = model.predict_proba({})
    assert probabilities[0, 0, 0, 0] == probabilities[0, 3, 0, 0]
    assert model.predict_classes({}).tolist() == [[[0, 5]]] == probabilities.argmax(dim=1).tolist()
