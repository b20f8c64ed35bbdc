"""Fault injection: one broken root per kind of fault, as a user would meet it.

Each fault is made on a private copy of one tiny clean root (2 domains, 64 px patches). For each:
``flairlc check`` fails and names the file; ``flairlc fit`` stops before the first training step
with one line naming the file, and a non-zero exit, without a traceback; and reading the bad
sample without the setup validation raises a :class:`FlairDataError` that names the file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio

from flairlc.cli import main
from flairlc.data import FlairDataError, FlairDataset, discover_patches
from flairlc.data.layout import CENTROIDS_JSON_NAMES, METADATA_JSON_NAMES, find_json
from flairlc.training.task import SegmentationTask

REPO = Path(__file__).parents[1]
#: The clean root: 2 train domains (one drawn for validation), 3 patches each, 64 px, 6 dates.
CLEAN_KWARGS = dict(
    domains=2, areas_per_domain=1, patches_per_area=3, patch_size=64, dates=6, test_domains=0,
    seed=0,
)
#: fit on every modality, with the small CPU U-T&T, one epoch, nothing written but the logs.
FIT_ARGS = [
    "fit", "--config", str(REPO / "configs" / "cpu" / "utt.yaml"),
    "--data.modalities", "[aerial, mask, sentinel, metadata]", "--model.use_metadata", "true",
    "--data.batch_size", "2", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false",
]


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny clean synthetic root, generated once for this module. Do not modify it."""
    from flairlc.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("faults") / "clean"
    generate_dataset(root, **CLEAN_KWARGS)
    return root


@pytest.fixture
def root(clean_root: Path, tmp_path: Path) -> Path:
    """A private copy of the clean root, to break."""
    return Path(shutil.copytree(clean_root, tmp_path / "flair"))


# --------------------------------------------------------------------------------------------
# The faults: each breaks one file of a root and returns the names a report must show.


def first_image(root: Path) -> Path:
    return sorted(root.glob("flair_aerial_train/*/*/img/IMG_*.tif"))[0]


def mask_of(image: Path) -> Path:
    patch_id = image.name.removeprefix("IMG_")
    return image.parents[4] / "flair_labels_train" / Path(*image.parts[-4:-2]) / "msk" / f"MSK_{patch_id}"


def sen_file(root: Path, suffix: str) -> Path:
    return sorted(root.glob(f"flair_sen_train/*/*/sen/*{suffix}"))[0]


def rewrite_tif(path: Path, array: np.ndarray) -> None:
    with rasterio.open(path) as dataset:
        profile = dataset.profile
    profile.update(count=array.shape[0], height=array.shape[1], width=array.shape[2], dtype=array.dtype.name)
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(array)


def read_tif(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


def edit_json(root: Path, names: tuple[str, ...], edit: Callable[[dict], None]) -> Path:
    path = find_json(root, names)
    assert path is not None
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))
    return path


def truncate_aerial_half(root: Path) -> list[str]:
    image = first_image(root)
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    return [image.name]


def truncate_aerial_3000_bytes(root: Path) -> list[str]:
    image = first_image(root)
    image.write_bytes(image.read_bytes()[:3000])
    return [image.name]


def aerial_60x64(root: Path) -> list[str]:
    image = first_image(root)
    rewrite_tif(image, read_tif(image)[:, :60, :])
    return [image.name]


def truncate_data_npy(root: Path) -> list[str]:
    path = sen_file(root, "_data.npy")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return [path.name]


def mask_as_uint16(root: Path) -> list[str]:
    mask = mask_of(first_image(root))
    rewrite_tif(mask, read_tif(mask).astype(np.uint16))
    return [mask.name]


def metadata_without_date(root: Path) -> list[str]:
    image = first_image(root)
    path = edit_json(root, METADATA_JSON_NAMES, lambda content: content[image.stem].pop("date"))
    return [image.name, path.name]


def centroid_outside(root: Path) -> list[str]:
    image = first_image(root)
    path = edit_json(root, CENTROIDS_JSON_NAMES, lambda content: content.update({image.name: [500, 500]}))
    return [image.name, path.name]


def missing_centroid(root: Path) -> list[str]:
    image = first_image(root)
    path = edit_json(root, CENTROIDS_JSON_NAMES, lambda content: content.pop(image.name))
    return [image.name, path.name]


def product_without_date(root: Path) -> list[str]:
    path = sen_file(root, "_products.txt")
    lines = path.read_text().splitlines()
    lines[2] = "SENTINEL2A_notadate-105852-000_L2A"
    path.write_text("\n".join(lines) + "\n")
    return [path.name]


FAULTS: dict[str, Callable[[Path], list[str]]] = {
    "truncated-aerial-half": truncate_aerial_half,
    "truncated-aerial-3000-bytes": truncate_aerial_3000_bytes,
    "aerial-60x64": aerial_60x64,
    "truncated-data-npy": truncate_data_npy,
    "mask-uint16": mask_as_uint16,
    "metadata-missing-key": metadata_without_date,
    "centroid-outside": centroid_outside,
    "missing-centroid": missing_centroid,
    "product-without-date": product_without_date,
}
#: Words of the cause that the fit line must give (besides the file names).
CAUSES = {
    "truncated-aerial-half": "truncated",
    "truncated-aerial-3000-bytes": "truncated",
    "aerial-60x64": "60x64",
    "truncated-data-npy": ".npy",
    "mask-uint16": "uint16",
    "metadata-missing-key": "date",
    "centroid-outside": "outside",
    "missing-centroid": "no ",
    "product-without-date": "date",
}


# --------------------------------------------------------------------------------------------
# fit, in this process, counting the steps that ran


@dataclass
class FitOutcome:
    code: int | str
    error_lines: list[str]
    stderr: str
    steps: int


def run_fit(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *extra: str
) -> FitOutcome:
    """``flairlc fit`` on ``root`` through :func:`flairlc.cli.main`; counts training/validation steps."""
    steps: list[str] = []
    for name in ("training_step", "validation_step"):
        original = getattr(SegmentationTask, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):  # noqa: ANN001, ANN202
            steps.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(SegmentationTask, name, counted)
    monkeypatch.chdir(root.parent)
    monkeypatch.setattr(sys, "argv", ["flairlc"])  # LightningCLI then reads only the args given
    capsys.readouterr()
    try:
        code: int | str = main([*FIT_ARGS, "--data.root", str(root), *extra])
    except BaseException as error:  # noqa: BLE001 - the test reports what escaped
        code = f"raised {type(error).__name__}: {str(error)[:300]}"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("flairlc fit: error:")]
    return FitOutcome(code, lines, err, len(steps))


def assert_one_line_naming(outcome: FitOutcome, names: list[str], cause: str) -> None:
    assert isinstance(outcome.code, int) and outcome.code != 0, outcome.code
    assert len(outcome.error_lines) == 1, outcome.stderr[-2000:]
    line = outcome.error_lines[0]
    for name in names:
        assert name in line, line
    assert cause in line, line
    assert "flairlc check" in line, line
    assert "Traceback" not in outcome.stderr


# --------------------------------------------------------------------------------------------
# The tests


def check_output(root: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """``flairlc check ROOT``: exit status and the errors section of the report."""
    code = main(["check", str(root)])
    out = capsys.readouterr().out
    errors = out.split("Errors (", 1)[-1].split("Warnings (", 1)[0] if "Errors (" in out else ""
    return code, errors


def read_every_sample(root: Path) -> None:
    """Read every train sample of every modality, without the data module's setup validation."""
    records = discover_patches(root, splits=("train",))
    dataset = FlairDataset(
        records, modalities=("aerial", "mask", "sentinel", "metadata"), sat_patch_size=16
    )
    for index in range(len(dataset)):
        dataset[index]


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_named_by_check_fit_and_the_readers(
    root: Path, fault: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    names = FAULTS[fault](root)
    # flairlc check: exit 1, the file among the errors.
    code, errors = check_output(root, capsys)
    assert code == 1, errors
    for name in names:
        assert name in errors, errors
    # flairlc fit: one line naming the file and the cause, before any step.
    outcome = run_fit(root, monkeypatch, capsys)
    assert_one_line_naming(outcome, names, CAUSES[fault])
    assert outcome.steps == 0
    # Without the setup validation, the readers themselves name the file.
    with pytest.raises(FlairDataError) as error_info:
        read_every_sample(root)
    for name in names:
        assert name in str(error_info.value)


def test_fit_on_a_clean_root_trains(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    outcome = run_fit(root, monkeypatch, capsys, "--trainer.limit_train_batches", "1",
                      "--trainer.limit_val_batches", "1")
    assert outcome.code == 0, outcome.stderr[-2000:]
    assert outcome.steps > 0 and not outcome.error_lines


def test_error_in_a_dataloader_worker_is_one_line(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A fault that only reading the pixels finds stops fit at that sample, from a worker too."""
    mask = mask_of(first_image(root))
    array = read_tif(mask)
    array[0, 5, 7] = 25
    rewrite_tif(mask, array)
    outcome = run_fit(root, monkeypatch, capsys, "--data.num_workers", "1")
    assert_one_line_naming(outcome, [mask.name], "25")


def test_installed_command_exits_non_zero_with_one_line(root: Path) -> None:
    names = aerial_60x64(root)
    executable = Path(sys.executable).with_name("flairlc")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "flairlc.cli"]
    result = subprocess.run(
        [*command, *FIT_ARGS, "--data.root", str(root)],
        cwd=root.parent, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("flairlc fit: error:")]
    assert len(lines) == 1 and all(name in lines[0] for name in names), result.stderr[-3000:]
