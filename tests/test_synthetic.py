"""Tests of the synthetic FLAIR generator (files read back with rasterio/numpy/json directly)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from flairlc.data.sentinel import CLOUD_CHANNEL
from flairlc.data.synthetic import (
    OrthophotoYear,
    SyntheticSummary,
    generate_dataset,
    generate_orthophoto,
)
from flairlc.data.synthetic.aerial import Radiometry, colourize
from flairlc.data.synthetic.dataset import CENTROIDS_JSON, METADATA_JSON, plan_dataset
from flairlc.data.synthetic.noise import ValueNoise
from flairlc.data.synthetic.scene import (
    AGRICULTURAL,
    CONIFEROUS,
    DECIDUOUS,
    HERBACEOUS,
    PLOWED,
    Grid,
    class_fractions,
    make_scene,
    rasterize,
)
from flairlc.data.synthetic.sentinel import ndvi, render_series

SMALL = {"domains": 3, "areas_per_domain": 2, "patches_per_area": 3, "patch_size": 64, "dates": 6}
TINY = {"domains": 2, "areas_per_domain": 1, "patches_per_area": 2, "patch_size": 64, "dates": 4}
META_FIELDS = {
    "domain",
    "zone",
    "patch_centroid_x",
    "patch_centroid_y",
    "patch_centroid_z",
    "date",
    "time",
    "camera",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticSummary]:
    root = tmp_path_factory.mktemp("synthetic")
    return root, generate_dataset(root, seed=1, **SMALL)


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.glob(pattern))


def test_layout_and_names(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, summary = dataset
    assert summary.n_patches == 18 and summary.n_areas == 6
    assert len(summary.test_domains) == 1 and len(summary.train_domains) == 2
    for split, trees, domains in (
        (
            "train",
            ("flair_aerial_train", "flair_labels_train", "flair_sen_train"),
            summary.train_domains,
        ),
        (
            "test",
            ("flair_2_aerial_test", "flair_2_labels_test", "flair_2_sen_test"),
            summary.test_domains,
        ),
    ):
        assert sorted(p.name for p in (root / trees[0]).iterdir()) == domains, split
        for d in domains:
            assert re.fullmatch(r"D\d{3}_20(18|19|20|21)", d)
            zones = sorted(p.name for p in (root / trees[0] / d).iterdir())
            assert len(zones) == 2 and all(re.fullmatch(r"Z\d+_[UANF]{2}", z) for z in zones)
            for z in zones:
                imgs = _files(root / trees[0] / d / z / "img", "IMG_*.tif")
                msks = _files(root / trees[1] / d / z / "msk", "MSK_*.tif")
                assert len(imgs) == 3
                assert [p.name[4:] for p in imgs] == [p.name[4:] for p in msks]
                sen = sorted(p.name for p in (root / trees[2] / d / z / "sen").iterdir())
                stem = f"SEN2_sp_{d}-{z}"
                assert sen == [f"{stem}_data.npy", f"{stem}_masks.npy", f"{stem}_products.txt"]
    ids = [p.stem for p in _files(root, "*/*/*/img/IMG_*.tif")]
    assert len(set(ids)) == 18 and all(re.fullmatch(r"IMG_\d{6}", i) for i in ids)
    assert not list(root.rglob(".*.part"))

    centroids = json.loads((root / CENTROIDS_JSON).read_text())
    metadata = json.loads((root / METADATA_JSON).read_text())
    assert sorted(centroids) == sorted(f"{i}.tif" for i in ids)
    assert sorted(metadata) == sorted(ids)
    for meta in metadata.values():
        assert set(meta) == META_FIELDS
        assert 135_000 <= meta["patch_centroid_x"] <= 1_080_000
        assert meta["patch_centroid_y"] >= 6_157_000
        assert -110 <= meta["patch_centroid_z"] <= 3165
        assert re.fullmatch(r"\d{2}h\d{2}", meta["time"])
        assert dt.date.fromisoformat(meta["date"]).year == int(meta["domain"][-4:])
        assert meta["camera"].startswith(("UCE-", "CAMERA#"))


def test_rasters(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, _ = dataset
    metadata = json.loads((root / METADATA_JSON).read_text())
    for img in _files(root, "*/*/*/img/IMG_*.tif"):
        msk = Path(str(img).replace("aerial", "labels").replace("/img/IMG_", "/msk/MSK_"))
        with rasterio.open(img) as a, rasterio.open(msk) as m:
            assert (a.count, a.dtypes[0], a.width, a.height) == (5, "uint8", 64, 64)
            assert (m.count, m.dtypes[0]) == (1, "uint8")
            assert a.crs.to_epsg() == 2154 and m.crs.to_epsg() == 2154
            assert a.transform == m.transform
            assert (a.transform.a, a.transform.e) == (0.2, -0.2)
            assert a.profile["tiled"]
            x, y = a.xy(32, 32, offset="ul")  # the pixel corner at the centre of the patch
            meta = metadata[img.stem]
            assert (
                abs(x - meta["patch_centroid_x"]) < 0.2 and abs(y - meta["patch_centroid_y"]) < 0.2
            )
            values = m.read(1)
            assert values.min() >= 1 and values.max() <= 19


def test_sentinel_arrays(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, _ = dataset
    datas = _files(root, "*/*/*/sen/*_data.npy")
    assert len(datas) == 6
    for data_path in datas:
        stem = str(data_path)[: -len("_data.npy")]
        data, masks = np.load(data_path), np.load(stem + "_masks.npy")
        products = Path(stem + "_products.txt").read_text().split()
        assert data.dtype == np.uint16 and masks.dtype == np.uint8
        assert (
            data.ndim == 4 and data.shape[:2] == (6, 10) and masks.shape == (6, 2, *data.shape[2:])
        )
        assert len(products) == 6 and 100 <= data.shape[2] <= 250
        assert masks.max() <= 100 and data.max() <= 10_000
        dates = [dt.datetime.strptime(p[11:19], "%Y%m%d").date() for p in products]
        assert dates == sorted(set(dates))
        assert {d.year for d in dates} == {int(data_path.parts[-4][-4:])}


def test_deterministic(tmp_path: Path) -> None:
    def arrays(root: Path) -> dict[str, np.ndarray]:
        out = {}
        for p in sorted(root.rglob("*")):
            if p.suffix == ".tif":
                with rasterio.open(p) as src:
                    out[str(p.relative_to(root))] = src.read()
            elif p.suffix == ".npy":
                out[str(p.relative_to(root))] = np.load(p)
        return out

    generate_dataset(tmp_path / "a", seed=5, **TINY)
    generate_dataset(tmp_path / "b", seed=5, **TINY)
    generate_dataset(tmp_path / "c", seed=6, **TINY)
    a, b = arrays(tmp_path / "a"), arrays(tmp_path / "b")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    for name in (CENTROIDS_JSON, METADATA_JSON):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    c = arrays(tmp_path / "c")
    imgs_a = [v for k, v in a.items() if "IMG_" in k]
    imgs_c = [v for k, v in c.items() if "IMG_" in k]
    assert not any(np.array_equal(x, y) for x, y in zip(imgs_a, imgs_c, strict=True))


def test_centroids_inside_patch_footprint(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, _ = dataset
    centroids = json.loads((root / CENTROIDS_JSON).read_text())
    plans = plan_dataset(seed=1, **{k: v for k, v in SMALL.items() if k != "dates"})
    for area in plans:
        sat = area.sat_grid
        for patch in area.patches:
            img = next(root.glob(f"*/*/*/img/IMG_{patch.id}.tif"))
            with rasterio.open(img) as src:
                left, bottom, right, top = src.bounds
            row, col = centroids[f"IMG_{patch.id}.tif"]
            # the window of 40 px around the centroid fits in the super-area
            assert 20 <= row <= sat.height - 20 and 20 <= col <= sat.width - 20
            x = sat.x_min + (col + 0.5) * sat.pixel_m
            y = sat.y_max - (row + 0.5) * sat.pixel_m
            assert left <= x <= right and bottom <= y <= top


def test_min_super_area_px(tmp_path: Path) -> None:
    """A larger super-area side gives larger Sentinel-2 arrays, the same patches and draws."""
    kwargs = {k: v for k, v in TINY.items() if k != "dates"}
    default, large = plan_dataset(seed=2, **kwargs), plan_dataset(seed=2, min_super_area_px=180, **kwargs)
    assert {a.sat_grid.height for a in default} == {100}  # the default is unchanged
    assert {(a.sat_grid.height, a.sat_grid.width) for a in large} == {(180, 180)}
    assert [p.id for a in default for p in a.patches] == [p.id for a in large for p in a.patches]
    for area in large:
        for patch in area.patches:  # the tiling stays centred, away from the border
            assert all(60 <= v <= 120 for v in patch.centroid)
    generate_dataset(tmp_path, seed=2, min_super_area_px=180, **TINY)
    data = sorted(tmp_path.rglob("*_data.npy"))
    masks = sorted(tmp_path.rglob("*_masks.npy"))
    assert [np.load(f, mmap_mode="r").shape for f in data] == [(TINY["dates"], 10, 180, 180)] * len(data)
    assert [np.load(f, mmap_mode="r").shape for f in masks] == [(TINY["dates"], 2, 180, 180)] * len(data)
    with pytest.raises(ValueError, match="min_super_area_px"):
        plan_dataset(min_super_area_px=0)


def test_dominant_class_agrees_at_10m() -> None:
    plans = plan_dataset(domains=2, areas_per_domain=2, patches_per_area=3, patch_size=512, seed=3)
    agree = total = 0
    for area in plans:
        scene = area.scene()
        frac, _ = class_fractions(scene, area.sat_grid)
        for patch in area.patches:
            g = patch.grid
            coarse = Grid(g.x_min, g.y_max, 100, 100, 1.0)  # the footprint, rasterized at 1 m
            cls, _ = rasterize(scene, coarse)
            row, col = patch.centroid
            near = frac[:, row - 4 : row + 5, col - 4 : col + 5].sum((1, 2))  # ~ the footprint
            agree += int(np.bincount(cls.ravel(), minlength=20).argmax() == near.argmax())
            total += 1
    assert agree >= 0.75 * total


def test_field_classes_differ_only_in_season() -> None:
    scene = make_scene((700_000.0, 6_600_000.0, 703_000.0, 6_603_000.0), "AN", seed=11)
    grid = Grid(700_000.0, 6_603_000.0, 1500, 1500, 2.0)
    cls, obj = rasterize(scene, grid)
    image = colourize(scene, grid, cls, obj, np.random.default_rng(0), Radiometry())
    rgb = {v: image[:3, cls == v].mean(1) for v in (HERBACEOUS, AGRICULTURAL, PLOWED)}
    assert all((cls == v).mean() > 0.08 for v in rgb)
    for v in rgb:
        assert np.abs(rgb[v] - rgb[HERBACEOUS]).max() < 8, rgb

    sat = Grid(700_000.0, 6_603_000.0, 300, 300, 10.0)
    frac, shift = class_fractions(scene, sat)
    days = [dt.date(2021, m, 15) for m in range(1, 13)]
    data, masks = render_series(frac, shift, days, sat, np.random.default_rng(1), seed=1)
    clear = masks[:, CLOUD_CHANNEL].mean((1, 2)) < 5
    assert clear.sum() >= 5
    index = ndvi(data)[clear]
    profile = {
        v: index[:, frac[v] > 0.95].mean(1)
        for v in (HERBACEOUS, AGRICULTURAL, PLOWED, CONIFEROUS, DECIDUOUS)
        if (frac[v] > 0.95).any()
    }
    fields = [profile[v] for v in (HERBACEOUS, AGRICULTURAL, PLOWED)]
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(fields[i] - fields[j]).max() > 0.25
    if CONIFEROUS in profile and DECIDUOUS in profile:
        winter = np.array([d.month in (1, 2, 12) for d, c in zip(days, clear, strict=True) if c])
        if winter.any():
            assert (profile[CONIFEROUS][winter] - profile[DECIDUOUS][winter]).mean() > 0.15


def test_clouds_match_masks(dataset: tuple[Path, SyntheticSummary]) -> None:
    root, _ = dataset
    cloudy_pixels = 0
    for data_path in _files(root, "*/*/*/sen/*_data.npy"):
        data = np.load(data_path)
        cloud = np.load(str(data_path).replace("_data.npy", "_masks.npy"))[:, CLOUD_CHANNEL]
        blue = data[:, 0]
        dense = cloud >= 80
        cloudy_pixels += int(dense.sum())
        if dense.any():
            assert np.median(blue[dense]) > 4000
        assert np.median(blue[cloud <= 5]) < 2000
    assert cloudy_pixels > 0


def test_value_noise_grid_matches_points() -> None:
    noise = ValueNoise(7.0, seed=3, octaves=2)
    xs, ys = 650_000 + np.arange(40) * 0.7, 6_700_000 - np.arange(30) * 1.3
    gx, gy = np.meshgrid(xs, ys)
    assert np.allclose(noise.grid(xs, ys), noise.points(gx, gy), atol=1e-4)


def test_orthophoto(tmp_path: Path) -> None:
    years = generate_orthophoto(
        tmp_path, width=500, height=400, seed=2, years=(2019, 2022), dates=3
    )
    assert [y.year for y in years] == [2019, 2022] and all(
        isinstance(y, OrthophotoYear) for y in years
    )
    with rasterio.open(years[0].aerial) as first:
        reference = first.transform
    truths = []
    for y in years:
        with (
            rasterio.open(y.aerial) as a,
            rasterio.open(y.elevation) as e,
            rasterio.open(y.truth) as t,
        ):
            assert (a.count, a.dtypes[0], a.width, a.height) == (4, "uint8", 500, 400)
            assert (e.count, t.count, e.dtypes[0], t.dtypes[0]) == (1, 1, "uint8", "uint8")
            assert a.transform == e.transform == t.transform == reference
            assert a.crs.to_epsg() == 2154 and a.profile["tiled"]
            bounds = a.bounds
            truths.append(t.read(1))
        assert truths[-1].max() <= 12
        assert len(y.products) == 3
        for name in y.products:
            assert dt.datetime.strptime(name[11:19], "%Y%m%d").year == y.year
            with (
                rasterio.open(y.sentinel / f"{name}.tif") as s,
                rasterio.open(y.sentinel / f"{name}_masks.tif") as m,
            ):
                assert (s.count, s.dtypes[0], m.count, m.dtypes[0]) == (10, "uint16", 2, "uint8")
                assert s.transform.a == 10.0 and s.transform == m.transform
                assert s.bounds.left <= bounds.left - 300 and s.bounds.right >= bounds.right + 300
                assert s.bounds.bottom <= bounds.bottom - 300 and s.bounds.top >= bounds.top + 300
    changed = (truths[0] != truths[1]).mean()
    assert 0.0 < changed < 0.3
