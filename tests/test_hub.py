"""FLAIR-HUB: discovery, splits, dates, the dataset and its batches, on files whose values are known."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
import torch
from fiona.crs import CRS as FionaCRS
from rasterio.transform import Affine

from flairlc.data.errors import FlairDataError
from flairlc.data.hub import (
    FlairHubDataset,
    collate_hub,
    days_to_reference,
    discover_hub,
    parse_patch_id,
    patches_from_csv,
    read_dates_gpkg,
    read_split_gpkg,
    select_split,
)
from flairlc.nomenclature import get

DOM = "D006-2020"
ROI = "FF-S1-14"
PX = 16  # aerial side of the hand-written patches
X0, Y1 = 1_022_361.6, 6_313_574.4


def write_tif(path: Path, array: np.ndarray, pixel_m: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    bands, h, w = array.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=bands, dtype=array.dtype.name,
        crs="EPSG:2154", transform=Affine(pixel_m, 0, X0, 0, -pixel_m, Y1),
    ) as dst:
        dst.write(array)
    return path


def hub_file(root: Path, modality: str, cell: str, dom: str = DOM) -> Path:
    return root / f"{dom}_{modality}" / ROI / f"{dom}_{modality}_{ROI}_{cell}.tif"


def write_gpkg(path: Path, rows: dict[str, dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {k: "str" for k in next(iter(rows.values()))}
    schema = {"geometry": "Point", "properties": {"patch_id": "str", **columns}}
    with fiona.open(path, "w", driver="GPKG", schema=schema, crs=FionaCRS.from_epsg(2154), layer=path.stem) as dst:
        for patch_id, values in rows.items():
            dst.write({"geometry": {"type": "Point", "coordinates": (0.0, 0.0)},
                       "properties": {"patch_id": patch_id, **values}})
    return path


#: The dates of patch 5-5, written out of key order in the GPKG (read back in key order).
DATES_55 = {"2": "20200110", "1": "20200103", "3": "20201231"}


@pytest.fixture
def known_root(tmp_path: Path) -> Path:
    """Two patches; every value known: aerial band b = 10 b + 1, series (date t, band b) = 100 t + b."""
    root = tmp_path / "hub"
    for cell, n_dates in (("5-5", 3), ("5-6", 2)):
        aerial = np.stack([np.full((PX, PX), 10 * b + 1, np.uint8) for b in range(4)])
        write_tif(hub_file(root, "AERIAL_RGBI", cell), aerial, 0.2)
        series = np.stack([np.full((10, 10), 100 * t + b, np.uint16) for t in range(n_dates) for b in range(10)])
        write_tif(hub_file(root, "SENTINEL2_TS", cell), series, PX * 0.2 / 10)
        masks = np.stack([np.full((10, 10), 50 * c + t, np.uint8) for t in range(n_dates) for c in range(2)])
        write_tif(hub_file(root, "SENTINEL2_MSK-SC", cell), masks, PX * 0.2 / 10)
        label = (np.arange(PX * PX) % 19).astype(np.uint8).reshape(1, PX, PX)
        write_tif(hub_file(root, "AERIAL_LABEL-COSIA", cell), label, 0.2)
    mtd = root / "GLOBAL_ALL_MTD"
    write_gpkg(mtd / "GLOBAL_ALL_MTD_SPLIT.gpkg", {
        f"{DOM}_{ROI}_5-5": {"split_1": "train"}, f"{DOM}_{ROI}_5-6": {"split_1": "valid"},
    })
    write_gpkg(mtd / "GLOBAL_SENTINEL2_MTD_DATES.gpkg", {
        f"{DOM}_{ROI}_5-5": {"acquisition_dates": json.dumps(DATES_55)},
        f"{DOM}_{ROI}_5-6": {"acquisition_dates": json.dumps({"1": "20200301", "2": "20200515"})},
    })
    return root


MODS = ("aerial", "sentinel", "sentinel_masks", "mask")


def test_patch_id_parts() -> None:
    assert parse_patch_id("D024047-2021_AA-S1-V18_10-22") == ("D024047", "2021", "AA-S1-V18", 10, 22)
    with pytest.raises(ValueError, match="no FLAIR-HUB patch id"):
        parse_patch_id("IMG_000123")


def test_discovery_finds_every_modality_and_attaches_the_historical_one(known_root: Path) -> None:
    rlt = hub_file(known_root, "AERIAL-RLT_PAN", "5-5", dom="D006-195X")
    write_tif(rlt, np.zeros((1, 8, 8), np.uint8), 0.4)
    (known_root / f"{DOM}_AERIAL_RGBI" / ROI / "notes.txt").write_text("not a patch")
    patches = discover_hub(known_root)
    assert [p.id for p in patches] == [f"{DOM}_{ROI}_5-5", f"{DOM}_{ROI}_5-6"]
    assert set(patches[0].files) == {"AERIAL_RGBI", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "AERIAL_LABEL-COSIA", "AERIAL-RLT_PAN"}
    assert patches[0].files["AERIAL-RLT_PAN"] == rlt
    assert "AERIAL-RLT_PAN" not in patches[1].files
    only = discover_hub(known_root, modalities=["SENTINEL2_TS"])
    assert [set(p.files) for p in only] == [{"SENTINEL2_TS"}] * 2


def test_discovery_of_a_folder_without_modalities_names_it(tmp_path: Path, capsys) -> None:
    from flairlc.cli import main

    with pytest.raises(FlairDataError, match=f"^{tmp_path}: no FLAIR-HUB modality folder"):
        discover_hub(tmp_path)
    (tmp_path / "D006-2020_AERIAL_RGBI.zip").write_bytes(b"PK")
    (tmp_path / "D006-2020_DEM_ELEV_DATA.zip").write_bytes(b"PK")  # IGN's newer downloader's names
    problem = "2 FLAIR-HUB archive(s) (e.g. D006-2020_AERIAL_RGBI.zip) but no modality folder: unzip them into the root"
    with pytest.raises(FlairDataError) as error:
        discover_hub(tmp_path)
    assert str(error.value) == f"{tmp_path}: {problem}"
    assert main(["check", str(tmp_path)]) == 1
    assert f"    {tmp_path}: {problem}\n" in capsys.readouterr().out


def test_dates_in_key_order_and_offsets_to_15_may_of_their_own_year(known_root: Path) -> None:
    dates = read_dates_gpkg(known_root / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg")
    assert dates[f"{DOM}_{ROI}_5-5"] == [dt.date(2020, 1, 3), dt.date(2020, 1, 10), dt.date(2020, 12, 31)]
    assert days_to_reference(dates[f"{DOM}_{ROI}_5-5"]) == [-133, -126, 230]
    assert days_to_reference([dt.date(2021, 1, 1)]) == [-134]
    assert days_to_reference([dt.date(2021, 1, 1)], (1, 1)) == [0]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "acquisition_dates is not a JSON object ('not json')"),
        (json.dumps({"0": "20200101"}), "acquisition_dates keys must be '1' … '1', got '0'"),
        (json.dumps({"1": "2020-01-01"}), "date 1 is '2020-01-01', expected YYYYMMDD"),
    ],
)
def test_bad_dates_name_the_file_and_the_patch(tmp_path: Path, value: str, problem: str) -> None:
    path = write_gpkg(tmp_path / "GLOBAL_SENTINEL2_MTD_DATES.gpkg", {"P1": {"acquisition_dates": value}})
    with pytest.raises(FlairDataError) as error:
        read_dates_gpkg(path)
    assert str(error.value) == f"{path}: patch P1: {problem}"


def test_split_gpkg_and_its_errors(known_root: Path, tmp_path: Path) -> None:
    path = known_root / "GLOBAL_ALL_MTD" / "GLOBAL_ALL_MTD_SPLIT.gpkg"
    split_of = read_split_gpkg(path)
    assert split_of == {f"{DOM}_{ROI}_5-5": "train", f"{DOM}_{ROI}_5-6": "valid"}
    patches = discover_hub(known_root)
    assert [p.id for p in select_split(patches, split_of, "val")] == [f"{DOM}_{ROI}_5-6"]
    with pytest.raises(FlairDataError, match=r"no column 'split_3' \(columns: patch_id, split_1\)$"):
        read_split_gpkg(path, "split_3")
    bad = write_gpkg(tmp_path / "s.gpkg", {"P1": {"split_1": "training"}})
    with pytest.raises(FlairDataError, match=r"patch P1: split_1 is 'training', expected one of"):
        read_split_gpkg(bad)
    with pytest.raises(FlairDataError, match="file not found"):
        read_split_gpkg(tmp_path / "absent.gpkg")


def test_ign_csv_paths_are_relative_to_the_csv(known_root: Path) -> None:
    csv_dir = known_root / "csv"
    csv_dir.mkdir()
    rel = f"../{DOM}_AERIAL_RGBI/{ROI}/{DOM}_AERIAL_RGBI_{ROI}_5-6.tif"
    (csv_dir / "TRAIN.csv").write_text(f"patch_id,AERIAL_RGBI,OTHER\n{DOM}_{ROI}_5-6,{rel},x\n")
    (patch,) = patches_from_csv(csv_dir / "TRAIN.csv")
    assert patch.id == f"{DOM}_{ROI}_5-6" and patch.row == 5 and patch.col == 6
    assert patch.files == {"AERIAL_RGBI": hub_file(known_root, "AERIAL_RGBI", "5-6").resolve()}


def test_sample_values_band_order_dates_and_labels(known_root: Path) -> None:
    ds = FlairHubDataset.from_root(known_root, "train", modalities=MODS)
    sample = ds[0]
    assert sample["id"] == f"{DOM}_{ROI}_5-5" and sample["domain"] == DOM
    assert sample["aerial"].dtype == torch.uint8 and sample["aerial"].shape == (4, PX, PX)
    assert sample["aerial"][:, 0, 0].tolist() == [1, 11, 21, 31]
    series = sample["sentinel"]
    assert series.dtype == torch.float32 and series.shape == (3, 10, 10, 10)
    expected = torch.tensor([[100.0 * t + b for b in range(10)] for t in range(3)])
    assert torch.equal(series[:, :, 4, 7], expected)
    assert sample["dates_days"].tolist() == [-133, -126, 230]
    assert sample["sentinel_masks"][:, :, 0, 0].tolist() == [[0, 50], [1, 51], [2, 52]]
    assert sample["mask"].dtype == torch.int64
    assert torch.equal(sample["mask"].flatten(), torch.arange(PX * PX) % 19)


def test_batches_pad_series_of_different_lengths(known_root: Path) -> None:
    patches = discover_hub(known_root)
    dates = {"GLOBAL_SENTINEL2_MTD_DATES.gpkg": read_dates_gpkg(known_root / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg")}
    ds = FlairHubDataset(patches, MODS, dates=dates)
    batch = collate_hub([ds[0], ds[1]])
    assert batch["sentinel"].shape == (2, 3, 10, 10, 10)
    assert batch["sentinel_pad_mask"].tolist() == [[False, False, False], [False, False, True]]
    assert batch["dates_days"].tolist() == [[-133, -126, 230], [-75, 0, 0]]
    assert batch["sentinel_masks"].shape == (2, 3, 2, 10, 10)
    assert batch["id"] == [p.id for p in patches] and batch["aerial"].shape == (2, 4, PX, PX)


def test_series_whose_length_differs_from_its_dates_is_one_line(known_root: Path) -> None:
    dates_file = known_root / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg"
    write_gpkg(dates_file, {
        f"{DOM}_{ROI}_5-5": {"acquisition_dates": json.dumps({"1": "20200103", "2": "20200110"})},
        f"{DOM}_{ROI}_5-6": {"acquisition_dates": json.dumps({"1": "20200301", "2": "20200515"})},
    })
    ds = FlairHubDataset.from_root(known_root, "train", modalities=("sentinel",))
    with pytest.raises(FlairDataError) as error:
        ds[0]
    path = hub_file(known_root, "SENTINEL2_TS", "5-5")
    assert str(error.value) == (
        f"{path}: SENTINEL2_TS has 3 dates (30 bands) but GLOBAL_SENTINEL2_MTD_DATES.gpkg lists 2 for patch "
        f"{DOM}_{ROI}_5-5"
    )


def test_label_outside_cosia_and_missing_modality(known_root: Path) -> None:
    path = hub_file(known_root, "AERIAL_LABEL-COSIA", "5-5")
    write_tif(path, np.full((1, PX, PX), 19, np.uint8), 0.2)
    ds = FlairHubDataset.from_root(known_root, "train", modalities=("mask",))
    with pytest.raises(FlairDataError, match=r"label values \[19\] are no CoSIA class \(values 0..18\)$"):
        ds[0]
    shutil.rmtree(known_root / f"{DOM}_SENTINEL2_MSK-SC")
    with pytest.raises(FlairDataError) as error:
        FlairHubDataset.from_root(known_root, "train", modalities=MODS)
    assert str(error.value) == (
        f"{hub_file(known_root, 'SENTINEL2_MSK-SC', '5-5')}: not found: 1 patch(es) lack a SENTINEL2_MSK-SC file, "
        f"needed for the 'sentinel_masks' modality (first: {DOM}_{ROI}_5-5); run `flairlc check` on the root"
    )


@pytest.fixture(scope="module")
def synthetic_hub(tmp_path_factory: pytest.TempPathFactory):
    from flairlc.data.synthetic.hub import generate_hub_dataset

    root = tmp_path_factory.mktemp("hub") / "root"
    return generate_hub_dataset(root, domains=2, rois_per_domain=2, patches_per_side=2, patch_size=40, dates=5, seed=3)


def test_synthetic_hub_layout_side_files_and_series_lengths(synthetic_hub) -> None:
    root = synthetic_hub.out
    patches = discover_hub(root)
    assert [p.id for p in patches] == synthetic_hub.patch_ids and len(patches) == 16
    mods = {"AERIAL_RGBI", "DEM_ELEV", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "AERIAL_LABEL-COSIA", "ALL_LABEL-LPIS"}
    assert all(set(p.files) == mods for p in patches)
    split_of = read_split_gpkg(root / "GLOBAL_ALL_MTD" / "GLOBAL_ALL_MTD_SPLIT.gpkg")
    assert split_of == synthetic_hub.splits and set(split_of.values()) == {"train", "valid", "test"}
    dates = read_dates_gpkg(root / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg")
    for p in patches:
        assert [f"{d:%Y%m%d}" for d in dates[p.id]] == synthetic_hub.dates[p.id]
        assert dates[p.id] == sorted(dates[p.id]) and {d.year for d in dates[p.id]} == {int(p.year)}
        with rasterio.open(p.files["SENTINEL2_TS"]) as s2, rasterio.open(p.files["SENTINEL2_MSK-SC"]) as msk:
            assert (s2.count, msk.count) == (10 * len(dates[p.id]), 2 * len(dates[p.id]))
            assert s2.bounds == rasterio.open(p.files["AERIAL_RGBI"]).bounds
    assert {len(d) for d in dates.values()} <= {4, 5}
    csv_ids = [p.id for p in patches_from_csv(root / "csv" / "FLAIR-HUB_SYNTH_TRAIN.csv")]
    assert csv_ids == [p.id for p in select_split(patches, split_of, "train")]


def test_synthetic_hub_samples_are_cosia_and_batch(synthetic_hub) -> None:
    ds = FlairHubDataset.from_root(synthetic_hub.out, "train", modalities=(*MODS, "dem"))
    batch = collate_hub([ds[i] for i in range(len(ds))])
    assert batch["mask"].min() >= 0 and batch["mask"].max() <= 18
    assert batch["aerial"].shape == (len(ds), 4, 40, 40) and batch["sentinel"].shape[2:] == (10, 10, 10)
    dsm, dtm = batch["dem"][:, 0], batch["dem"][:, 1]
    assert (dsm >= dtm).all()  # heights above ground are never negative


def test_synthetic_hub_is_deterministic(synthetic_hub, tmp_path: Path) -> None:
    from flairlc.data.synthetic.hub import generate_hub_dataset

    again = generate_hub_dataset(tmp_path / "again", domains=2, rois_per_domain=2, patches_per_side=2, patch_size=40, dates=5, seed=3)
    assert again.patch_ids == synthetic_hub.patch_ids
    name = next(iter(sorted((synthetic_hub.out).glob("*_SENTINEL2_TS/*/*.tif")))).relative_to(synthetic_hub.out)
    assert (again.out / name).read_bytes() == (synthetic_hub.out / name).read_bytes()


def test_synth_command_writes_the_hub_layout(tmp_path: Path) -> None:
    from flairlc.cli import main

    assert main(["synth", "--layout", "flair-hub", str(tmp_path / "hub"), "--domains", "1", "--areas-per-domain", "1",
                 "--patches-per-area", "1", "--patch-size", "32", "--dates", "3"]) == 0
    (patch,) = discover_hub(tmp_path / "hub")
    assert set(patch.files) == {"AERIAL_RGBI", "DEM_ELEV", "SENTINEL2_TS", "SENTINEL2_MSK-SC", "AERIAL_LABEL-COSIA", "ALL_LABEL-LPIS"}


@pytest.fixture
def hub_copy(synthetic_hub, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_hub.out, tmp_path / "hub"))


def _lines(report) -> list[str]:
    return [f"[{i.kind}] {report.display_path(i.path)}: {i.message}" for i in report.issues]


def test_check_of_the_synthetic_hub_root_is_clean(synthetic_hub) -> None:
    from flairlc.data.hub.check import check_hub

    report = check_hub(synthetic_hub.out)
    assert report.ok and report.issues == [] and report.num_patches == 16
    assert report.patch_size == (40, 40) and report.sat_patch_size == 10
    assert sum(report.counts["test"].values()) == sum(1 for s in synthetic_hub.splits.values() if s == "test")


def test_check_reports_each_problem_in_one_line(hub_copy: Path) -> None:
    from flairlc.data.hub.check import check_hub

    patches = discover_hub(hub_copy)
    a, b, c, d, e, f = patches[:6]
    a.files["DEM_ELEV"].unlink()  # missing modality
    b.files["AERIAL_RGBI"].write_bytes(b.files["AERIAL_RGBI"].read_bytes()[:300])  # unreadable
    with rasterio.open(c.files["SENTINEL2_TS"]) as src:
        series, profile = src.read(), src.profile
    profile.update(count=series.shape[0] - 10, transform=Affine(profile["transform"].a, 0, X0, 0, profile["transform"].e, Y1))
    with rasterio.open(c.files["SENTINEL2_TS"], "w", **profile) as dst:  # one date short, elsewhere
        dst.write(series[:-10])
    label = np.full((1, 40, 40), 19, np.uint8)
    with rasterio.open(d.files["AERIAL_LABEL-COSIA"]) as src:
        profile = src.profile
    with rasterio.open(d.files["AERIAL_LABEL-COSIA"], "w", **profile) as dst:
        dst.write(label)
    split = hub_copy / "GLOBAL_ALL_MTD" / "GLOBAL_ALL_MTD_SPLIT.gpkg"
    split_of = read_split_gpkg(split)
    del split_of[e.id]
    split.unlink()
    write_gpkg(split, {k: {"split_1": v} for k, v in split_of.items()})
    lines = _lines(check_hub(hub_copy))
    rel = lambda p: str(p.relative_to(hub_copy))  # noqa: E731
    n_c = len(read_dates_gpkg(hub_copy / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg")[c.id])
    assert f"[missing-modality] {rel(a.files['DEM_ELEV'])}: patch {a.id} has no DEM_ELEV file (its domain-year has DEM_ELEV)" in lines
    assert any(line.startswith(f"[unreadable] {rel(b.files['AERIAL_RGBI'])}: cannot read as a GeoTIFF") for line in lines)
    assert (f"[series-length] {rel(c.files['SENTINEL2_TS'])}: SENTINEL2_TS has {n_c - 1} dates but "
            f"GLOBAL_SENTINEL2_MTD_DATES.gpkg lists {n_c} for patch {c.id}") in lines
    assert any(line.startswith(f"[footprint-mismatch] {rel(c.files['SENTINEL2_TS'])}: bounds (") for line in lines)
    assert f"[bad-label] {rel(d.files['AERIAL_LABEL-COSIA'])}: label values [19] are no CoSIA class (values 0..18)" in lines
    assert f"[not-in-split] {rel(e.files['AERIAL_LABEL-COSIA'])}: patch {e.id} is absent from GLOBAL_ALL_MTD_SPLIT.gpkg (split_1)" in lines
    assert (f"[series-length] {rel(c.files['SENTINEL2_MSK-SC'])}: SENTINEL2_MSK-SC has {n_c} dates but its "
            f"SENTINEL2_TS file has {n_c - 1}") in lines
    assert len(lines) == 7, lines


def test_check_command_recognises_the_hub_layout(hub_copy: Path, capsys) -> None:
    from flairlc.cli import main

    assert main(["check", str(hub_copy)]) == 0
    assert "Result: OK: 16 patches, 0 errors, 0 warnings" in capsys.readouterr().out
    (hub_copy / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg").unlink()
    assert main(["check", str(hub_copy)]) == 1
    out = capsys.readouterr().out
    assert "GLOBAL_ALL_MTD/GLOBAL_SENTINEL2_MTD_DATES.gpkg: file not found: the dates of its time series are unknown" in out


#: TorchGeo's FLAIRHUB fixture (torchgeo tests/data/flairhub/data.py), as facts: bands, dtype and
#: side of each modality, every file written with the same 0.4 m transform.
TORCHGEO_FIXTURE = {
    "AERIAL_RGBI": (4, np.uint8, 512), "AERIAL_LABEL-COSIA": (1, np.uint8, 512),
    "ALL_LABEL-LPIS": (3, np.uint8, 512), "DEM_ELEV": (2, np.uint16, 512), "AERIAL-RLT_PAN": (1, np.uint8, 256),
    "SPOT_RGBI": (4, np.uint8, 64), "SENTINEL2_TS": (20, np.uint16, 10), "SENTINEL2_MSK-SC": (20, np.uint8, 10),
    "SENTINEL1-ASC_TS": (20, np.uint16, 10), "SENTINEL1-DESC_TS": (20, np.uint16, 10),
}


@pytest.fixture
def torchgeo_layout_root(tmp_path: Path) -> Path:
    root = tmp_path / "torchgeo"
    for modality, (bands, dtype, side) in TORCHGEO_FIXTURE.items():
        dom = "D006-195X" if modality == "AERIAL-RLT_PAN" else DOM
        array = (np.arange(bands * side * side) % 19).astype(dtype).reshape(bands, side, side)
        write_tif(hub_file(root, modality, "5-5", dom=dom), array, 0.4)
    write_gpkg(root / "GLOBAL_ALL_MTD" / "GLOBAL_ALL_MTD_SPLIT.gpkg", {f"{DOM}_{ROI}_5-5": {"split_1": "train", "split_toy": "test"}})
    return root


def test_a_root_in_torchgeo_fixture_layout_is_read_and_its_departures_reported(torchgeo_layout_root: Path) -> None:
    from flairlc.data.hub.check import check_hub

    root = torchgeo_layout_root
    (patch,) = discover_hub(root)
    assert set(patch.files) == set(TORCHGEO_FIXTURE)
    ds = FlairHubDataset.from_root(root, "test", split_column="split_toy", modalities=("aerial", "dem", "spot", "aerial_rlt", "mask", "lpis"))
    sample = ds[0]
    assert sample["aerial"].shape == (4, 512, 512) and sample["aerial_rlt"].shape == (1, 256, 256)
    assert sample["dem"].dtype == torch.float32 and sample["spot"].dtype == torch.uint8
    assert sample["mask"].max() == 18 and sample["lpis"].shape == (512, 512)
    # The fixture has no dates files: its series cannot be dated.
    with pytest.raises(FlairDataError, match="GLOBAL_SENTINEL2_MTD_DATES.gpkg: file not found$"):
        FlairHubDataset.from_root(root, "train", modalities=("sentinel",))
    kinds = Counter(issue.kind for issue in check_hub(root).issues)
    # One 0.4 m transform for every size: only the 512 px files share the aerial's footprint
    # (204.8 m, twice FLAIR-HUB's 102.4 m); the 20-band mask holds 10 dates, the series 2.
    assert kinds == {"footprint-mismatch": 6, "missing-dates": 3, "series-length": 1}


def test_synthetic_hub_series_separate_fields_that_look_alike_from_the_air(tmp_path: Path) -> None:
    """Herbaceous vegetation and agricultural land share one aerial look; their late-summer NDVI
    in the patch's own Sentinel-2 series tells them apart (the series are aligned with the mask)."""
    from flairlc.data.synthetic.hub import generate_hub_dataset

    root = generate_hub_dataset(tmp_path / "hub", domains=2, rois_per_domain=3, patches_per_side=2, patch_size=100, dates=12, seed=1).out
    dates = {"GLOBAL_SENTINEL2_MTD_DATES.gpkg": read_dates_gpkg(root / "GLOBAL_ALL_MTD" / "GLOBAL_SENTINEL2_MTD_DATES.gpkg")}
    ds = FlairHubDataset(discover_hub(root), ("sentinel", "sentinel_masks", "mask"), dates=dates)
    herbaceous, agricultural = get("cosia").index_of("herbaceous vegetation"), get("cosia").index_of("agricultural land")
    ndvi_of: dict[int, list[float]] = {herbaceous: [], agricultural: []}
    for i in range(len(ds)):
        sample = ds[i]
        s2, days = sample["sentinel"].numpy(), sample["dates_days"].numpy()
        ndvi = (s2[:, 6] - s2[:, 2]) / np.maximum(s2[:, 6] + s2[:, 2], 1)  # B08, B04
        clear = sample["sentinel_masks"].numpy()[:, 1] < 20
        late_summer = (days >= 95) & (days < 165)  # about mid-August to late October
        cell = sample["mask"].shape[0] // 10
        blocks = sample["mask"].numpy().reshape(10, cell, 10, cell).transpose(0, 2, 1, 3).reshape(10, 10, -1)
        for cls, values in ndvi_of.items():
            for r, c in zip(*np.nonzero((blocks == cls).mean(-1) >= 0.9), strict=True):
                use = clear[:, r, c] & late_summer
                if use.any():
                    values.append(float(ndvi[use, r, c].mean()))
    high, low = np.array(ndvi_of[herbaceous]), np.array(ndvi_of[agricultural])
    assert len(high) >= 20 and len(low) >= 20
    threshold = (high.mean() + low.mean()) / 2
    accuracy = ((high > threshold).sum() + (low <= threshold).sum()) / (len(high) + len(low))
    assert accuracy >= 0.95


def test_collate_pads_each_sentinel1_series_with_its_own_mask() -> None:
    def sample(t: int) -> dict:
        return {"id": f"p{t}", "sentinel1_asc": torch.ones(t, 2, 10, 10), "sentinel1_asc_dates_days": torch.arange(t) + 1}

    batch = collate_hub([sample(1), sample(3)])
    assert batch["sentinel1_asc"].shape == (2, 3, 2, 10, 10) and batch["sentinel1_asc"][0, 1:].abs().sum() == 0
    assert batch["sentinel1_asc_pad_mask"].tolist() == [[False, True, True], [False, False, False]]
    assert batch["sentinel1_asc_dates_days"].tolist() == [[1, 0, 0], [1, 2, 3]] and batch["id"] == ["p1", "p3"]


def test_reader_errors_are_one_line_naming_the_file(known_root: Path, tmp_path: Path) -> None:
    aerial = write_tif(hub_file(known_root, "AERIAL_RGBI", "5-5"), np.zeros((4, PX, PX), np.uint16), 0.2)
    series = write_tif(hub_file(known_root, "SENTINEL2_TS", "5-5"), np.zeros((25, 10, 10), np.uint16), 1.6)
    ds = FlairHubDataset.from_root(known_root, "train", modalities=("aerial",))
    with pytest.raises(FlairDataError) as error:
        ds[0]
    assert str(error.value) == f"{aerial}: AERIAL_RGBI has dtype uint16, expected uint8"
    ds = FlairHubDataset.from_root(known_root, "train", modalities=("sentinel",))
    with pytest.raises(FlairDataError) as error:
        ds[0]
    assert str(error.value) == f"{series}: SENTINEL2_TS has 25 bands, not a multiple of 10 (bands per date)"
    garbage = tmp_path / "GLOBAL_ALL_MTD_SPLIT.gpkg"
    garbage.write_bytes(b"not a geopackage")
    with pytest.raises(FlairDataError, match=f"^{garbage}: cannot read as a GeoPackage \\("):
        read_split_gpkg(garbage)


#: Pixels per CoSIA class of one label of ``known_root``: ``arange(256) % 19`` puts 14 pixels in
#: classes 0..8 and 13 in classes 9..18.
KNOWN_LABEL_COUNTS = [14] * 9 + [13] * 10


def test_stats_of_a_hub_root_count_cosia_classes_per_split_and_domain_year(known_root: Path, tmp_path: Path) -> None:
    from flairlc.data.hub.stats import hub_class_distribution

    write_tif(hub_file(known_root, "AERIAL_RGBI", "5-7"), np.zeros((4, PX, PX), np.uint8), 0.2)  # no label
    other = "D007-2021"  # a second domain-year, absent from the split file
    write_tif(hub_file(known_root, "AERIAL_LABEL-COSIA", "1-1", dom=other), np.full((1, PX, PX), 6, np.uint8), 0.2)
    result = hub_class_distribution(known_root)
    known = np.array(KNOWN_LABEL_COUNTS)
    water = np.eye(19, dtype=np.int64)[6] * PX * PX
    assert result.nomenclature == "cosia" and (result.num_masks, result.num_unlabelled) == (3, 1)
    assert result.overall.tolist() == (2 * known + water).tolist()
    assert {k: v.tolist() for k, v in result.by_split.items()} == {
        "train": known.tolist(), "valid": known.tolist(), "unsplit": water.tolist(),
    }
    assert {k: v.tolist() for k, v in result.by_domain.items()} == {DOM: (2 * known).tolist(), other: water.tolist()}
    assert result.domain_split == {DOM: "train+valid", other: "unsplit"}
    paths = result.write_all(tmp_path / "stats")
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["class"] for r in rows] == get("cosia").names
    assert rows[6]["pixels"] == str(2 * 14 + PX * PX) and rows[6]["pixels_unsplit"] == str(PX * PX)
    by_domain = list(csv.DictReader(paths["csv_by_domain"].open()))
    assert [(r["domain"], r["split"], r["pixels"]) for r in by_domain] == [(DOM, "train+valid", "512"), (other, "unsplit", "256")]
    assert json.loads(paths["json"].read_text())["by_split"]["train"]["pixels"] == KNOWN_LABEL_COUNTS


def test_stats_command_recognises_the_hub_layout(known_root: Path, tmp_path: Path, capsys) -> None:
    from flairlc.cli import main

    assert main(["stats", str(known_root), "--out", str(tmp_path / "stats")]) == 0
    distribution = json.loads((tmp_path / "stats" / "class_distribution.json").read_text())
    assert distribution["nomenclature"] == "cosia" and distribution["overall"]["total"] == 2 * PX * PX
    assert (tmp_path / "stats" / "class_distribution.png").is_file()
    assert main(["stats", str(known_root), "--nomenclature", "raw", "--out", str(tmp_path / "s2")]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "--nomenclature raw: a FLAIR-HUB root's labels are CoSIA's 19 classes, counted as such"
    )
    label = hub_file(known_root, "AERIAL_LABEL-COSIA", "5-6")
    write_tif(label, np.full((1, PX, PX), 19, np.uint8), 0.2)
    assert main(["stats", str(known_root), "--out", str(tmp_path / "s3")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{label}: label values [19] are no CoSIA class (values 0..18)")


def test_synth_command_puts_the_asked_rois_in_test_and_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flairlc.cli import main
    from flairlc.data.hub import FlairHubDataset

    common = ["--layout", "flair-hub", "--domains", "2", "--areas-per-domain", "3", "--patches-per-area", "1",
              "--patch-size", "32", "--dates", "3"]
    assert main(["synth", str(tmp_path / "hub"), *common, "--test-rois", "3", "--valid-rois", "2"]) == 0
    counts = {split: len(FlairHubDataset.from_root(tmp_path / "hub", split, modalities=["mask"])) for split in ("train", "valid", "test")}
    assert counts == {"train": 1, "valid": 2, "test": 3}
    capsys.readouterr()
    assert main(["synth", str(tmp_path / "refused"), *common, "--test-rois", "4", "--valid-rois", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "flairlc synth: error: --test-rois 4 and --valid-rois 2 must be >= 0 and leave at least one of the 6 ROIs "
        "(domains x areas per domain) to train")
    assert not (tmp_path / "refused").exists()
