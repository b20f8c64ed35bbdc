"""`flairlc check`: a clean root passes; each kind of corruption is caught and named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rich.console import Console

from flairlc.cli import main
from flairlc.data.check import CheckReport, Issue, check_dataset, print_report, validate_records
from flairlc.data.errors import FlairDataError
from flairlc.data.layout import (
    CENTROIDS_JSON_NAMES,
    METADATA_JSON_NAMES,
    discover_patches,
    find_json,
)

IMAGES = "flair*_aerial_*/*/*/img/IMG_*.tif"
MASKS = "flair*_labels_*/*/*/msk/MSK_*.tif"
SEN_DIRS = "flair*_sen_*/*/*/sen"


def first(root: Path, pattern: str) -> Path:
    """The first file (in sorted order) matching a glob pattern under ``root``."""
    matches = sorted(root.glob(pattern))
    assert matches, f"no {pattern} under {root}"
    return matches[0]


def mask_of(image: Path) -> Path:
    """The mask partner of an aerial image (labels tree of the same split)."""
    tree = image.parts[-5].replace("aerial", "labels")
    patch_id = image.name.removeprefix("IMG_")
    return image.parents[4] / tree / image.parts[-4] / image.parts[-3] / "msk" / f"MSK_{patch_id}"


def rewrite_tif(path: Path, array: np.ndarray, **profile: object) -> None:
    """Rewrite a GeoTIFF with a new ``(C, H, W)`` array, keeping its profile unless overridden."""
    with rasterio.open(path) as dataset:
        original = dataset.profile
    original.update(count=array.shape[0], height=array.shape[1], width=array.shape[2])
    original.update(dtype=array.dtype.name, **profile)
    with rasterio.open(path, "w", **original) as dataset:
        dataset.write(array)


def read_tif(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read()


def sen_file(sen_dir: Path, suffix: str) -> Path:
    (path,) = sen_dir.glob(f"*{suffix}")
    return path


def issues_of(report: CheckReport, kind: str, severity: str = "error") -> list[Issue]:
    return [i for i in report.issues if i.kind == kind and i.severity == severity]


def assert_names(report: CheckReport, kind: str, path: Path, severity: str = "error") -> Issue:
    """Assert an issue of ``kind`` names ``path`` (as its path, or in its message)."""
    found = issues_of(report, kind, severity)
    named = [i for i in found if i.path == path or path.name in i.message]
    assert named, f"no {severity} {kind} naming {path}; issues: {report.issues}"
    assert not report.ok or severity == "warning"
    assert path.name in report.to_text()
    return named[0]


def test_clean_dataset_passes(synthetic_root: Path) -> None:
    report = check_dataset(synthetic_root)
    assert report.ok, report.to_text()
    assert report.errors == []
    images = sorted(synthetic_root.glob(IMAGES))
    assert report.num_patches == len(images) > 0
    for split, domains in report.counts.items():
        for domain, count in domains.items():
            tree_images = [p for p in images if p.parts[-4] == domain and split in p.parts[-5]]
            assert count == len(tree_images)
    with rasterio.open(images[0]) as dataset:
        assert report.patch_size == (dataset.height, dataset.width)
    assert "Result: OK" in report.to_text()


def test_json_output_is_machine_readable(synthetic_copy: Path) -> None:
    first(synthetic_copy, MASKS).unlink()
    parsed = json.loads(check_dataset(synthetic_copy).to_json())
    assert parsed["ok"] is False
    assert parsed["num_errors"] == len([i for i in parsed["issues"] if i["severity"] == "error"])
    assert set(parsed["counts"]) <= {"train", "test"}
    assert parsed["num_patches"] == sum(sum(d.values()) for d in parsed["counts"].values())
    issue = parsed["issues"][0]
    assert set(issue) == {"severity", "kind", "path", "message"}
    assert Path(issue["path"]).is_absolute()


def test_missing_root_and_root_without_aerial_tree_give_one_error(tmp_path: Path) -> None:
    missing = check_dataset(tmp_path / "nowhere")
    assert [i.kind for i in missing.issues] == ["missing-root"]
    empty = check_dataset(tmp_path)
    assert [i.kind for i in empty.issues] == ["missing-aerial"]
    assert "no aerial tree" in empty.to_text()


def test_missing_mask(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    mask_of(image).unlink()
    assert_names(check_dataset(synthetic_copy), "missing-mask", image)


def test_mask_without_image(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    image.unlink()
    assert_names(check_dataset(synthetic_copy), "missing-image", mask_of(image))


def test_image_with_four_bands(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    rewrite_tif(image, read_tif(image)[:4])
    issue = assert_names(check_dataset(synthetic_copy), "bad-band-count", image)
    assert "4 bands" in issue.message


def test_image_of_the_wrong_size(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    array = read_tif(image)
    rewrite_tif(image, array[:, : array.shape[1] // 2, : array.shape[2] // 2])
    report = check_dataset(synthetic_copy)
    assert_names(report, "bad-size", image)
    assert report.patch_size == array.shape[1:]


def test_mask_not_the_size_of_its_image(synthetic_copy: Path) -> None:
    mask = mask_of(first(synthetic_copy, IMAGES))
    rewrite_tif(mask, read_tif(mask)[:, :-8, :])
    issue = assert_names(check_dataset(synthetic_copy), "bad-size", mask)
    assert "image" in issue.message


def test_image_as_uint16(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    rewrite_tif(image, read_tif(image).astype(np.uint16))
    issue = assert_names(check_dataset(synthetic_copy), "bad-dtype", image)
    assert "uint16" in issue.message


def test_image_in_another_crs(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    rewrite_tif(image, read_tif(image), crs="EPSG:4326")
    issue = assert_names(check_dataset(synthetic_copy), "bad-crs", image)
    assert "EPSG:4326" in issue.message


def test_mask_with_a_value_outside_the_nomenclature(synthetic_copy: Path) -> None:
    mask = mask_of(first(synthetic_copy, IMAGES))
    array = read_tif(mask)
    array[0, 5, 7] = 25
    rewrite_tif(mask, array)
    issue = assert_names(check_dataset(synthetic_copy), "bad-label-values", mask)
    assert "25" in issue.message


@pytest.mark.parametrize("suffix", ["_data.npy", "_masks.npy"])
def test_sentinel_array_with_another_number_of_dates(synthetic_copy: Path, suffix: str) -> None:
    path = sen_file(first(synthetic_copy, SEN_DIRS), suffix)
    np.save(path, np.load(path)[:-1])
    issue = assert_names(check_dataset(synthetic_copy), "sentinel-length-mismatch", path)
    assert "differs" in issue.message


def test_products_with_a_line_missing(synthetic_copy: Path) -> None:
    path = sen_file(first(synthetic_copy, SEN_DIRS), "_products.txt")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[1:]) + "\n")
    issue = assert_names(check_dataset(synthetic_copy), "sentinel-length-mismatch", path)
    assert f"{path.name}: {len(lines) - 1}" in issue.message


def test_product_name_without_a_date(synthetic_copy: Path) -> None:
    path = sen_file(first(synthetic_copy, SEN_DIRS), "_products.txt")
    lines = path.read_text().splitlines()
    lines[2] = "SENTINEL2A_notadate-105852-000_L2A"
    path.write_text("\n".join(lines) + "\n")
    issue = assert_names(check_dataset(synthetic_copy), "bad-products", path)
    assert "line 3" in issue.message


def _move_centroid(root: Path, image: Path, row: int, col: int) -> None:
    path = find_json(root, CENTROIDS_JSON_NAMES)
    assert path is not None
    centroids = json.loads(path.read_text())
    centroids[image.name] = [row, col]
    path.write_text(json.dumps(centroids))


def test_centroid_far_outside_the_super_area(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    _move_centroid(synthetic_copy, image, 10_000, 10_000)
    issue = assert_names(check_dataset(synthetic_copy), "centroid-window-outside", image)
    assert "entirely" in issue.message


def test_centroid_on_the_edge_is_a_warning(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    _move_centroid(synthetic_copy, image, 0, 0)
    report = check_dataset(synthetic_copy)
    assert_names(report, "centroid-window-outside", image, severity="warning")
    assert not [i for i in report.errors if i.path == image]


def test_missing_centroid_and_metadata_entries(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    for names, key in ((CENTROIDS_JSON_NAMES, image.name), (METADATA_JSON_NAMES, image.stem)):
        path = find_json(synthetic_copy, names)
        assert path is not None
        content = json.loads(path.read_text())
        del content[key]
        path.write_text(json.dumps(content))
    report = check_dataset(synthetic_copy)
    assert_names(report, "missing-centroid", image)
    assert_names(report, "missing-metadata", image)


@pytest.mark.parametrize("target", ["image", "mask", "npy", "json"])
def test_unreadable_files(synthetic_copy: Path, target: str) -> None:
    image = first(synthetic_copy, IMAGES)
    path = {
        "image": image,
        "mask": mask_of(image),
        "npy": sen_file(first(synthetic_copy, SEN_DIRS), "_data.npy"),
        "json": find_json(synthetic_copy, CENTROIDS_JSON_NAMES),
    }[target]
    assert path is not None
    path.write_bytes(b"\x00garbage, not a valid file\xff" * 10)
    assert_names(check_dataset(synthetic_copy), "unreadable", path)


def test_truncated_npy_is_unreadable(synthetic_copy: Path) -> None:
    path = sen_file(first(synthetic_copy, SEN_DIRS), "_masks.npy")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_names(check_dataset(synthetic_copy), "unreadable", path)


@pytest.mark.parametrize("suffix", ["_data.npy", "_masks.npy", "_products.txt"])
def test_missing_sentinel_file(synthetic_copy: Path, suffix: str) -> None:
    sen_dir = first(synthetic_copy, SEN_DIRS)
    sen_file(sen_dir, suffix).unlink()
    issue = assert_names(check_dataset(synthetic_copy), "missing-sentinel", sen_dir)
    assert suffix in issue.message


def test_missing_sentinel_folder(synthetic_copy: Path) -> None:
    sen_dir = first(synthetic_copy, SEN_DIRS)
    for path in sen_dir.iterdir():
        path.unlink()
    sen_dir.rmdir()
    report = check_dataset(synthetic_copy)
    assert [i.path for i in issues_of(report, "missing-sentinel")] == [sen_dir]


def test_text_report_caps_the_listing_per_kind(synthetic_copy: Path) -> None:
    masks = sorted(synthetic_copy.glob(MASKS))
    for mask in masks:
        mask.unlink()
    report = check_dataset(synthetic_copy)
    assert len(issues_of(report, "missing-mask")) == len(masks)
    text = report.to_text(max_per_kind=5)
    assert f"missing-mask ({len(masks)})" in text
    assert f"... and {len(masks) - 5} more" in text


def test_print_report_with_rich(synthetic_copy: Path) -> None:
    mask = mask_of(first(synthetic_copy, IMAGES))
    rewrite_tif(mask, read_tif(mask), crs="EPSG:4326")
    console = Console(record=True, width=250)
    print_report(check_dataset(synthetic_copy), console)
    output = console.export_text()
    assert "bad-crs" in output and mask.name in output and "FAILED" in output


def test_duplicate_patch_id(synthetic_copy: Path) -> None:
    images = sorted(synthetic_copy.glob(IMAGES))
    other_area = next(p.parent for p in images if p.parts[-3] != images[0].parts[-3])
    copy = other_area / images[0].name
    copy.write_bytes(images[0].read_bytes())
    report = check_dataset(synthetic_copy)
    (issue,) = issues_of(report, "duplicate-id")
    assert {issue.path, Path(issue.message.split(" by ")[-1])} == {images[0], copy}


def test_leaf_folder_at_the_wrong_depth(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    misplaced = image.parents[2] / "img"
    misplaced.mkdir()
    (misplaced / "IMG_999999.tif").write_bytes(image.read_bytes())
    assert_names(check_dataset(synthetic_copy), "bad-layout", misplaced, severity="warning")


def test_mask_on_another_grid(synthetic_copy: Path) -> None:
    mask = mask_of(first(synthetic_copy, IMAGES))
    with rasterio.open(mask) as dataset:
        shifted = dataset.transform @ rasterio.Affine.translation(10, 0)
    rewrite_tif(mask, read_tif(mask), transform=shifted)
    assert_names(check_dataset(synthetic_copy), "grid-mismatch", mask, severity="warning")


def test_mask_with_two_bands(synthetic_copy: Path) -> None:
    mask = mask_of(first(synthetic_copy, IMAGES))
    rewrite_tif(mask, np.concatenate([read_tif(mask)] * 2))
    assert_names(check_dataset(synthetic_copy), "bad-band-count", mask)


@pytest.mark.parametrize(
    ("suffix", "change", "kind"),
    [
        ("_data.npy", lambda a: a[:, :9], "bad-shape"),
        ("_masks.npy", lambda a: a[np.newaxis], "bad-shape"),
        ("_data.npy", lambda a: a.astype(np.float32), "bad-dtype"),
        ("_masks.npy", lambda a: a[..., :-1], "sentinel-shape-mismatch"),
    ],
)
def test_malformed_sentinel_array(
    synthetic_copy: Path, suffix: str, change: Callable[[np.ndarray], np.ndarray], kind: str
) -> None:
    path = sen_file(first(synthetic_copy, SEN_DIRS), suffix)
    np.save(path, change(np.load(path)))
    assert_names(check_dataset(synthetic_copy), kind, path)


def test_two_sentinel_files_with_the_same_suffix(synthetic_copy: Path) -> None:
    sen_dir = first(synthetic_copy, SEN_DIRS)
    data = sen_file(sen_dir, "_data.npy")
    (sen_dir / f"copy_{data.name}").write_bytes(data.read_bytes())
    issue = assert_names(check_dataset(synthetic_copy), "ambiguous-sentinel", sen_dir)
    assert data.name in issue.message


def test_sentinel_folder_of_an_area_without_images(synthetic_copy: Path) -> None:
    sen_dir = first(synthetic_copy, SEN_DIRS)
    orphan = sen_dir.parents[1] / "Z99_XX" / "sen"
    shutil.copytree(sen_dir, orphan)
    assert_names(check_dataset(synthetic_copy), "orphan-sentinel", orphan, severity="warning")


def test_bad_metadata_and_centroid_entries(synthetic_copy: Path) -> None:
    images = sorted(synthetic_copy.glob(IMAGES))
    metadata_path = find_json(synthetic_copy, METADATA_JSON_NAMES)
    centroids_path = find_json(synthetic_copy, CENTROIDS_JSON_NAMES)
    assert metadata_path is not None and centroids_path is not None
    metadata = json.loads(metadata_path.read_text())
    metadata[images[0].stem] = ["not", "an", "object"]
    metadata[images[1].stem]["domain"] = "D999_2000"
    metadata_path.write_text(json.dumps(metadata))
    centroids = json.loads(centroids_path.read_text())
    centroids[images[2].name] = ["a", 3]
    centroids_path.write_text(json.dumps(centroids))
    report = check_dataset(synthetic_copy)
    assert_names(report, "bad-metadata", images[0])
    assert_names(report, "metadata-mismatch", images[1], severity="warning")
    assert_names(report, "bad-centroid", images[2])


def test_missing_root_json_files(synthetic_copy: Path) -> None:
    centroids = find_json(synthetic_copy, CENTROIDS_JSON_NAMES)
    metadata = find_json(synthetic_copy, METADATA_JSON_NAMES)
    assert centroids is not None and metadata is not None
    centroids.unlink()
    metadata.unlink()
    report = check_dataset(synthetic_copy)
    assert [i.path.name for i in issues_of(report, "missing-centroid")] == [centroids.name]
    assert [i.path.name for i in issues_of(report, "missing-metadata", "warning")] == [
        metadata.name
    ]
    assert not issues_of(report, "missing-metadata")  # no error per patch


def test_progress_bar_and_bad_window_size(synthetic_root: Path) -> None:
    assert check_dataset(synthetic_root, sat_patch_size=16, progress=True).ok
    with pytest.raises(ValueError, match="multiple of 8"):
        check_dataset(synthetic_root, sat_patch_size=30)


# --------------------------------------------------------------------------------------------
# Full and quick modes, workers, the command line, and the setup validation of training


def corrupt_a_compressed_tile(image: Path) -> None:
    """Recompress an image (deflate) and overwrite the inside of one tile: only decoding fails."""
    rewrite_tif(image, read_tif(image), compress="deflate", tiled=True, blockxsize=32, blockysize=32)
    with rasterio.open(image) as dataset:
        offset = int(dataset.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
        size = int(dataset.get_tag_item("BLOCK_SIZE_1_1", "TIFF", bidx=1))
    content = bytearray(image.read_bytes())
    content[offset + 8 : offset + size - 8] = b"\xff" * (size - 16)
    image.write_bytes(bytes(content))


def test_full_check_reads_the_pixels_that_quick_skips(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    corrupt_a_compressed_tile(image)
    quick = check_dataset(synthetic_copy, quick=True)
    assert quick.ok and quick.quick, quick.to_text()
    full = check_dataset(synthetic_copy)
    issue = assert_names(full, "unreadable", image)
    assert "IReadBlock" in issue.message or "Read" in issue.message
    assert "full" in full.to_text() and "quick" in quick.to_text()


@pytest.mark.parametrize("keep", ["half", "3000 bytes"])
@pytest.mark.parametrize("quick", [False, True])
def test_truncated_image_is_found_in_both_modes(synthetic_copy: Path, keep: str, quick: bool) -> None:
    image = first(synthetic_copy, IMAGES)
    content = image.read_bytes()
    image.write_bytes(content[: len(content) // 2 if keep == "half" else 3000])
    report = check_dataset(synthetic_copy, quick=quick)
    issue = assert_names(report, "truncated", image)
    assert str(len(content)) in issue.message


def test_one_and_two_workers_give_the_same_report(synthetic_copy: Path) -> None:
    images = sorted(synthetic_copy.glob(IMAGES))
    images[0].write_bytes(images[0].read_bytes()[:3000])
    rewrite_tif(images[1], read_tif(images[1])[:4])
    mask = mask_of(images[2])
    array = read_tif(mask)
    array[0, 0, 0] = 0
    rewrite_tif(mask, array)
    np.save(sen_file(first(synthetic_copy, SEN_DIRS), "_masks.npy"), np.zeros((2, 2), np.uint8))
    one = check_dataset(synthetic_copy, workers=1)
    two = check_dataset(synthetic_copy, workers=2, progress=True)
    assert one.issues == two.issues and one.counts == two.counts
    assert {"truncated", "bad-band-count", "bad-label-values", "bad-shape"} <= one.kinds("error")
    with pytest.raises(ValueError, match="workers"):
        check_dataset(synthetic_copy, workers=0)


def test_metadata_entry_missing_a_field(synthetic_copy: Path) -> None:
    image = first(synthetic_copy, IMAGES)
    path = find_json(synthetic_copy, METADATA_JSON_NAMES)
    assert path is not None
    metadata = json.loads(path.read_text())
    del metadata[image.stem]["patch_centroid_x"]
    path.write_text(json.dumps(metadata))
    issue = assert_names(check_dataset(synthetic_copy), "bad-metadata", image)
    assert "patch_centroid_x" in issue.message and path.name in issue.message


def test_aerial_tree_without_images(tmp_path: Path) -> None:
    (tmp_path / "flair_aerial_train").mkdir()
    report = check_dataset(tmp_path)
    assert report.kinds() == {"no-patches"} and report.patch_size is None
    assert "patch size" not in report.to_text()


def test_command_line(synthetic_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", str(synthetic_copy), "--quick", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "quick" in out and "aerial patch size 64x64 px" in out
    # A missing root: one line, no report.
    assert main(["check", str(tmp_path / "nowhere")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "nowhere" in captured.err and "does not exist" in captured.err
    # An empty root: the error, and no patch size made up.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty)]) == 1
    out = capsys.readouterr().out
    assert "no aerial tree" in out and "patch size" not in out
    assert main(["check", str(empty), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["patch_size"] is None


def test_validate_records_reads_headers_and_names_the_first_bad_file(synthetic_copy: Path) -> None:
    records = discover_patches(synthetic_copy, splits=("train",))
    modalities = ("aerial", "mask", "sentinel", "metadata")
    assert validate_records(records, modalities, 16) == (64, 64)
    # A CRS does not matter to training: not an error here.
    rewrite_tif(records[0].aerial_path, read_tif(records[0].aerial_path), crs="EPSG:4326")
    assert validate_records(records, modalities, 16) == (64, 64)
    rewrite_tif(records[1].aerial_path, read_tif(records[1].aerial_path)[:, :60])
    records[2].centroid = (500, 500)
    with pytest.raises(FlairDataError) as error_info:
        validate_records(records, modalities, 16, root=synthetic_copy, workers=2)
    message = str(error_info.value)
    assert error_info.value.path == records[1].aerial_path
    assert "60x64" in message and "2 more problems" in message
    assert f"flairlc check {synthetic_copy}" in message
    # Without the aerial modality, the image's size is not looked at (the mask's is).
    with pytest.raises(FlairDataError, match="outside"):
        validate_records(records, ("mask", "sentinel"), 16)
