"""The FLAIR data layer on a synthetic root: discovery, samples, loaders and splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch.utils.data import DataLoader

from flairlc.data import (
    FlairDataError,
    FlairDataset,
    SuperArea,
    collate_flair,
    discover_patches,
    encode_metadata,
    read_mask,
)
from flairlc.training import FlairDataModule


def test_discovery_finds_every_patch_with_its_files(synthetic_root: Path) -> None:
    records = discover_patches(synthetic_root)
    images = sorted(synthetic_root.glob("flair*_aerial_*/*/*/img/IMG_*.tif"))
    assert len(records) == len(images) > 0
    assert {r.split for r in records} == {"train", "test"}
    assert len({r.id for r in records}) == len(records)
    for record in records:
        assert record.aerial_path.name == f"IMG_{record.id}.tif"
        assert record.mask_path is not None and record.mask_path.name == f"MSK_{record.id}.tif"
        assert record.aerial_path.parts[-4] == record.domain and record.aerial_path.parts[-3] == record.area
        assert record.sentinel is not None and record.sentinel.data.name.endswith("_data.npy")
        assert record.centroid is not None and record.metadata is not None
        assert record.metadata["domain"] == record.domain


def test_discovery_and_check_share_one_grammar(synthetic_copy: Path) -> None:
    """A patch's files are keyed by modality; an image in a leaf folder at the wrong depth is
    left out of discovery, as check reports it (bad-layout) rather than reading it."""
    from flairlc.data.check import check_dataset
    from flairlc.data.layout import FLAIR_MODALITIES

    image = sorted(synthetic_copy.glob("flair*_aerial_train/*/*/img/IMG_*.tif"))[0]
    misplaced = image.parents[2] / "img"
    misplaced.mkdir()
    (misplaced / "IMG_999999.tif").write_bytes(image.read_bytes())
    records = discover_patches(synthetic_copy)
    assert "999999" not in {r.id for r in records}
    assert all(set(r.files) == set(FLAIR_MODALITIES) for r in records)
    record = records[0]
    assert (record.aerial_path, record.mask_path) == (record.files["aerial"], record.files["mask"])
    assert record.sentinel is not None and record.sentinel.products == record.files["sentinel_products"]
    report = check_dataset(synthetic_copy, workers=1, quick=True)
    assert [i.path for i in report.issues if i.kind == "bad-layout"] == [misplaced]
    assert report.num_patches == len(records)


def test_discovery_accepts_alternative_json_names_and_missing_labels(synthetic_copy: Path) -> None:
    (synthetic_copy / "flair-2_centroids_sp_to_patch.json").rename(synthetic_copy / "flair_2_centroids_sp_to_patch.json")
    (synthetic_copy / "flair-2_aerial_metadata.json").rename(synthetic_copy / "flair_aerial_metadata.json")
    shutil.rmtree(synthetic_copy / "flair_2_labels_test")
    records = discover_patches(synthetic_copy)
    test = [r for r in records if r.split == "test"]
    assert test and all(r.mask_path is None for r in test)
    assert all(r.centroid is not None and r.metadata is not None for r in records)
    # A prediction-only dataset still loads without masks, and asking for masks names the problem.
    FlairDataset(test, modalities=("aerial", "sentinel"))[0]
    with pytest.raises(FlairDataError, match="label mask"):
        FlairDataset(test, modalities=("aerial", "mask"))


def test_flair1_style_root_with_aerial_and_labels_only(synthetic_root: Path, tmp_path: Path) -> None:
    for tree in ("flair_aerial_train", "flair_labels_train"):
        shutil.copytree(synthetic_root / tree, tmp_path / tree)
    records = discover_patches(tmp_path)
    assert records and all(r.sentinel is None and r.centroid is None and r.mask_path for r in records)
    sample = FlairDataset(records)[0]
    assert set(sample) == {"aerial", "mask", "id", "domain", "index"}


def test_not_a_flair_root_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FlairDataError, match="no aerial tree"):
        discover_patches(tmp_path)


def test_sample_keys_dtypes_shapes_and_values(synthetic_root: Path) -> None:
    records = discover_patches(synthetic_root, splits=("train",))
    dataset = FlairDataset(records, modalities=("aerial", "mask", "sentinel", "metadata"), sat_patch_size=16)
    sample = dataset[0]
    record = records[0]
    with rasterio.open(record.aerial_path) as src:
        aerial = src.read()
    assert sample["aerial"].dtype == torch.uint8 and torch.equal(sample["aerial"], torch.from_numpy(aerial))
    assert sample["mask"].dtype == torch.int64
    assert torch.equal(sample["mask"], torch.from_numpy(read_mask(record.mask_path).astype(np.int64)))
    assert int(sample["mask"].max()) <= 12
    # The Sentinel-2 window equals the matching slice of the memory-mapped array.
    super_area = SuperArea(record.sentinel)
    row, col = record.centroid
    expected = np.asarray(super_area.data[:, :, row - 8 : row + 8, col - 8 : col + 8], dtype=np.float32)
    assert sample["sentinel"].dtype == torch.float32
    np.testing.assert_array_equal(sample["sentinel"].numpy(), expected)
    assert sample["dates_days"].shape == (super_area.data.shape[0],)
    np.testing.assert_array_equal(sample["metadata"].numpy(), encode_metadata(record.metadata))
    assert sample["id"] == record.id and sample["domain"] == record.domain


def test_cloud_filter_and_monthly_average_shorten_the_series(synthetic_root: Path) -> None:
    records = discover_patches(synthetic_root, splits=("train",))
    plain = FlairDataset(records, modalities=("sentinel",), sat_patch_size=16)
    monthly = FlairDataset(records, modalities=("sentinel",), sat_patch_size=16, filter_clouds=True, average_monthly=True)
    lengths = [(len(plain[i]["dates_days"]), len(monthly[i]["dates_days"])) for i in range(len(records))]
    assert all(0 < m <= min(p, 12) for p, m in lengths)
    days = monthly[0]["dates_days"]
    assert torch.all(days[1:] > days[:-1])


def test_dataloader_with_two_workers_yields_the_same_samples(synthetic_root: Path) -> None:
    records = discover_patches(synthetic_root, splits=("train",))[:6]
    dataset = FlairDataset(records, modalities=("aerial", "mask", "sentinel"), sat_patch_size=16)
    batches = {}
    for workers in (0, 2):
        loader = DataLoader(dataset, batch_size=2, num_workers=workers, collate_fn=collate_flair)
        batches[workers] = list(loader)
    assert len(batches[0]) == len(batches[2]) == 3
    for a, b in zip(batches[0], batches[2]):
        assert a["id"] == b["id"]
        for key in ("aerial", "mask", "sentinel", "sentinel_pad_mask", "dates_days"):
            assert torch.equal(a[key], b[key])


def test_datamodule_splits_and_records_validation_domains(synthetic_root: Path) -> None:
    first = FlairDataModule(str(synthetic_root), val_fraction=0.34, split_seed=7)
    again = FlairDataModule(str(synthetic_root), val_fraction=0.34, split_seed=7)
    assert first.val_domains == again.val_domains and len(first.val_domains) == 1
    assert first.hparams["val_domains"] == first.val_domains
    first.setup("fit")
    first.setup("test")
    train_domains = {r.domain for r in first.datasets["train"].records}
    val_domains = {r.domain for r in first.datasets["val"].records}
    test_domains = {r.domain for r in first.datasets["test"].records}
    assert val_domains == set(first.val_domains) and not train_domains & val_domains
    assert test_domains == {r.domain for r in discover_patches(synthetic_root, splits=("test",))}
    explicit = FlairDataModule(str(synthetic_root), val_domains=sorted(train_domains)[:1])
    assert explicit.val_domains == sorted(train_domains)[:1]
    bad = FlairDataModule(str(synthetic_root), val_domains=["D999_2021"])
    with pytest.raises(FlairDataError, match="D999_2021"):
        bad.setup("fit")


def test_metadata_json_keeps_unknown_fields(synthetic_copy: Path) -> None:
    path = synthetic_copy / "flair-2_aerial_metadata.json"
    content = json.loads(path.read_text())
    key = next(iter(content))
    content[key]["new_field"] = 42
    path.write_text(json.dumps(content))
    record = next(r for r in discover_patches(synthetic_copy) if f"IMG_{r.id}" == key)
    assert record.metadata["new_field"] == 42
