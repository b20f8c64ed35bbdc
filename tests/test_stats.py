"""`flairlc stats` back-end: class pixel counts checked against an independent count."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from flairlc.data.errors import FlairDataError
from flairlc.data.stats import ClassDistribution, class_distribution
from flairlc.nomenclature import class_names

MASKS = "flair*_labels_*/*/*/msk/MSK_*.tif"


@pytest.fixture(scope="module")
def distribution(synthetic_root: Path) -> ClassDistribution:
    return class_distribution(synthetic_root)


def raw_counts(paths: list[Path]) -> np.ndarray:
    """Pixels per raw value 0..255 over masks, counted directly from the files."""
    total = np.zeros(256, dtype=np.int64)
    for path in paths:
        with rasterio.open(path) as dataset:
            total += np.bincount(dataset.read(1).ravel(), minlength=256)
    return total


def test_counts_sum_to_the_mask_pixels_and_shares_to_one(
    synthetic_root: Path, distribution: ClassDistribution
) -> None:
    masks = sorted(synthetic_root.glob(MASKS))
    pixels = 0
    for path in masks:
        with rasterio.open(path) as dataset:
            pixels += dataset.width * dataset.height
    assert distribution.num_masks == len(masks) > 0
    assert distribution.total == pixels
    assert distribution.overall.shape == (13,)
    assert distribution.shares.sum() == pytest.approx(1.0)
    for counts in (*distribution.by_split.values(), *distribution.by_domain.values()):
        assert ClassDistribution.shares_of(counts).sum() == pytest.approx(1.0)


def test_counts_equal_an_independent_bincount_folded_by_hand(
    synthetic_root: Path, distribution: ClassDistribution
) -> None:
    raw = raw_counts(sorted(synthetic_root.glob(MASKS)))
    folded = np.concatenate([raw[1:13], [raw[13:20].sum()]])
    np.testing.assert_array_equal(distribution.overall, folded)
    by_raw = class_distribution(synthetic_root, nomenclature="raw")
    assert by_raw.overall.shape == (19,)
    np.testing.assert_array_equal(by_raw.overall, raw[1:20])


def test_per_domain_and_per_split_counts_sum_to_overall(
    synthetic_root: Path, distribution: ClassDistribution
) -> None:
    np.testing.assert_array_equal(sum(distribution.by_domain.values()), distribution.overall)
    np.testing.assert_array_equal(sum(distribution.by_split.values()), distribution.overall)
    for domain, counts in distribution.by_domain.items():
        split = distribution.domain_split[domain]
        masks = sorted(synthetic_root.glob(f"flair*_labels_{split}/{domain}/*/msk/MSK_*.tif"))
        raw = raw_counts(masks)
        np.testing.assert_array_equal(counts[:12], raw[1:13])


def test_one_split_only(synthetic_root: Path, distribution: ClassDistribution) -> None:
    train = class_distribution(synthetic_root, splits=("train",))
    assert list(train.by_split) == ["train"]
    np.testing.assert_array_equal(train.overall, distribution.by_split["train"])


def test_writers(distribution: ClassDistribution, tmp_path: Path) -> None:
    paths = distribution.write_all(tmp_path / "out")
    assert set(paths) == {"csv", "csv_by_domain", "json", "plot"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        p.name for p in paths.values()
    )  # no temporary file left behind

    with open(paths["csv"]) as file:
        rows = list(csv.DictReader(file))
    assert [row["class"] for row in rows] == class_names("baseline")
    assert [int(row["pixels"]) for row in rows] == distribution.overall.tolist()
    assert sum(float(row["share"]) for row in rows) == pytest.approx(1.0, abs=1e-4)
    for split in distribution.by_split:
        assert sum(float(row[f"share_{split}"]) for row in rows) == pytest.approx(1.0, abs=1e-4)

    with open(paths["csv_by_domain"]) as file:
        by_domain = list(csv.DictReader(file))
    assert [row["domain"] for row in by_domain] == list(distribution.by_domain)
    for row in by_domain:
        shares = [float(row[name]) for name in class_names("baseline")]
        assert sum(shares) == pytest.approx(1.0, abs=1e-4)

    content = json.loads(paths["json"].read_text())
    assert content["overall"]["pixels"] == distribution.overall.tolist()
    assert content["overall"]["total"] == distribution.total
    assert [c["name"] for c in content["classes"]] == class_names("baseline")

    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_handles_empty_classes(distribution: ClassDistribution, tmp_path: Path) -> None:
    sparse = ClassDistribution("raw", np.array([0] * 18 + [5], dtype=np.int64), num_masks=1)
    for log in (None, False):
        assert sparse.plot(tmp_path, log=log).stat().st_size > 0


def test_bad_mask_raises_an_error_naming_the_file(synthetic_copy: Path) -> None:
    mask = sorted(synthetic_copy.glob(MASKS))[0]
    with rasterio.open(mask) as dataset:
        profile, array = dataset.profile, dataset.read()
    array[0, 0, 0] = 25
    with rasterio.open(mask, "w", **profile) as dataset:
        dataset.write(array)
    with pytest.raises(FlairDataError, match=mask.name):
        class_distribution(synthetic_copy)
