"""Tests of flairlc.mapping: tiled inference, COG output, resume, areas, change, polygons.

All inputs are synthetic GeoTIFFs made here (EPSG:2154, 0.2 m); the model is a fixed random CNN.
"""

from __future__ import annotations

import csv
import datetime
import json
import warnings
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from fiona.crs import CRS as FionaCRS
from raster_helpers import L93, ORIGIN_X, ORIGIN_Y, PIXEL_M, K
from raster_helpers import read_band as _read
from raster_helpers import write_raster as _write
from rasterio.crs import CRS
from rasterio.warp import transform_geom

from flairlc import nomenclature
from flairlc.mapping import (
    MapOptions,
    MappingInputError,
    SentinelSeries,
    blend_weights,
    compute_areas,
    compute_change,
    map_raster,
    polygonize_map,
    window_starts,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")



class FakePredictor:
    """A fixed random CNN (receptive field 17 px) with softmax; deterministic weights.

    ``fail_after``: raise after that many ``predict_proba`` calls (to simulate a crash).
    """

    num_classes = K
    aerial_channels = 5
    sat_patch_size = 8
    reference_date = datetime.date(2021, 5, 15)

    def __init__(self, seed: int = 0, fail_after: int | None = None, uses_sentinel: bool = False) -> None:
        gen = torch.Generator().manual_seed(seed)
        layers: list[torch.nn.Module] = []
        chans = [5, 8, 8, 8]
        for i, d in enumerate((1, 2, 4)):
            conv = torch.nn.Conv2d(chans[i], chans[i + 1], 3, padding=d, dilation=d, padding_mode="reflect")
            layers += [conv, torch.nn.ReLU()]
        layers.append(torch.nn.Conv2d(8, K, 3, padding=1, padding_mode="reflect"))
        self.net = torch.nn.Sequential(*layers).eval()
        with torch.no_grad():
            for p in self.net.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.6)
        self.uses_sentinel = uses_sentinel
        self.fail_after = fail_after
        self.calls = 0
        self.batches: list[dict[str, torch.Tensor]] = []

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("simulated crash")
        if self.uses_sentinel:
            self.batches.append({k: v.clone() for k, v in batch.items()})
        x = batch["aerial"].float() / 127.5 - 1.0
        return torch.softmax(self.net(x) * 3.0, dim=1)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random-ish textured 5-band uint8 image: blocky regions + fine noise."""
    coarse = rng.integers(0, 256, size=(5, h // 24 + 2, w // 24 + 2)).astype(np.float32)
    img = np.kron(coarse, np.ones((1, 24, 24), dtype=np.float32))[:, :h, :w]
    img += rng.normal(0, 20, size=(5, h, w)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rasters(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rasters")
    rng = np.random.default_rng(42)
    small = _texture(rng, 300, 300)
    big = _texture(rng, 500, 700)  # 500 rows x 700 cols
    big[:, 0:60, 100:260] = 0  # a nodata block (all bands 0 = nodata)
    big[:, 400:500, 650:700] = 0
    return {"small": _write(d / "small.tif", small), "big": _write(d / "big.tif", big, nodata=0)}


@pytest.fixture(scope="module")
def big_map(rasters, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maps") / "map.tif"
    map_raster(FakePredictor(), rasters["big"], out,
               options=MapOptions(window=128, overlap=32, batch_size=8),
               probabilities_path=out.with_name("proba.tif"), progress=False)
    return out


# --- layout --------------------------------------------------------------------------------------

def test_window_starts_cover_and_stay_inside():
    assert window_starts(100, 128, 96) == [0]
    starts = window_starts(700, 128, 96)
    assert starts[0] == 0 and starts[-1] == 700 - 128
    assert all(b - a <= 96 for a, b in zip(starts, starts[1:]))
    w = blend_weights(64)
    assert w.shape == (64, 64) and w.min() > 0 and w[32, 32] > 0.99 and w[0, 0] < 0.01


# --- inference -----------------------------------------------------------------------------------

def test_single_window_equals_tiled_blend_without_seams(rasters, tmp_path):
    pred = FakePredictor()
    single = _read(map_raster(pred, rasters["small"], tmp_path / "one.tif",
                              options=MapOptions(window=512, overlap=0), progress=False).map_path)
    tiled = _read(map_raster(pred, rasters["small"], tmp_path / "tiled.tif",
                             options=MapOptions(window=128, overlap=64, batch_size=8), progress=False).map_path)
    assert len(np.unique(single)) >= 3  # the fake model gives a varied map
    disagree = single != tiled
    # Tolerance: >= 99 % of pixels agree; the differences sit at the raster's own edges (the
    # model's padding vs the single window's reflection padding), not inside.
    assert disagree.mean() <= 0.01, disagree.mean()
    interior = np.zeros_like(disagree)
    interior[20:-20, 20:-20] = True
    assert disagree[interior].mean() <= 0.001
    # No seams: pixels on internal window borders disagree no more than elsewhere (+ slack)...
    edges = _window_borders(300, 128, 64) & interior
    assert disagree[edges].mean() <= max(3 * disagree[interior].mean(), 0.002)
    # ... whereas tiles without overlap do show seams (so the check above can fail).
    hard = _read(map_raster(pred, rasters["small"], tmp_path / "hard.tif",
                            options=MapOptions(window=128, overlap=0, batch_size=8), progress=False).map_path)
    assert (hard != single)[_window_borders(300, 128, 0) & interior].mean() > 0.01


def _window_borders(size: int, window: int, overlap: int) -> np.ndarray:
    """Mask of pixels within 2 px of an internal window border (square raster of ``size``)."""
    edges = np.zeros((size, size), dtype=bool)
    starts = window_starts(size, window, window - overlap)
    cuts = list(starts[1:]) + [s + window for s in starts[:-1]]
    for c in cuts:
        edges[c - 2 : c + 2, :] = True
        edges[:, c - 2 : c + 2] = True
    return edges


def test_output_georeferencing_nodata_and_cog(rasters, big_map):
    with rasterio.open(rasters["big"]) as src, rasterio.open(big_map) as ds:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.shape == src.shape
        nodata_in = (src.read_masks([1, 2, 3, 4]) == 0).all(axis=0)  # all spectral bands nodata
        assert nodata_in[0:60, 100:260].all()
        classes = ds.read(1)
        np.testing.assert_array_equal(classes == 255, nodata_in)
        assert classes[~nodata_in].max() < K
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        assert ds.profile["tiled"] and ds.block_shapes[0] == (512, 512)
        assert ds.compression is not None and ds.compression.name.lower() == "deflate"
        assert ds.overviews(1), "the COG must have overviews"
        assert ds.colormap(1)[0] == (*nomenclature.BASELINE_CLASSES[0].rgb, 255)
    qml = big_map.with_suffix(".qml").read_text()
    assert 'type="paletted"' in qml and "building" in qml and "#db0e9a" in qml
    with rasterio.open(big_map.with_name("proba.tif")) as pr:
        assert pr.count == K and pr.dtypes[0] == "uint8"
        p = pr.read(window=rasterio.windows.Window(300, 300, 50, 50)).astype(int)
        assert np.all(np.abs(p.sum(0) - 255) <= K)  # probabilities x 255, rounded
        np.testing.assert_array_equal(p.argmax(0), classes[300:350, 300:350])
    assert not list(big_map.parent.glob("*.partial*")), "working files must be removed"


def test_areas_of_a_produced_map_add_up_to_its_valid_area(big_map):
    table = compute_areas(big_map)
    assert table.class_names == nomenclature.class_names("baseline")  # from the map's tags
    classes = _read(big_map)
    assert table.overall.valid_m2 == pytest.approx((classes != 255).sum() * PIXEL_M**2)


def test_column_bands_give_the_same_map(rasters, big_map, tmp_path):
    out = map_raster(FakePredictor(), rasters["big"], tmp_path / "bands.tif",
                     options=MapOptions(window=128, overlap=32, batch_size=8, band_width=256), progress=False)
    assert (_read(out.map_path) == _read(big_map)).mean() > 0.999


def test_interrupted_run_resumes_to_the_same_map(rasters, big_map, tmp_path):
    out = tmp_path / "map.tif"
    with pytest.raises(RuntimeError, match="simulated crash"):
        map_raster(FakePredictor(fail_after=3), rasters["big"], out,
                   options=MapOptions(window=128, overlap=32, batch_size=8),
                   probabilities_path=tmp_path / "proba.tif", progress=False)
    assert not out.exists() and not (tmp_path / "proba.tif").exists()
    state = json.loads((tmp_path / "map.tif.partial.json").read_text())
    assert 0 < len(state["done"])
    res = map_raster(FakePredictor(), rasters["big"], out,
                     options=MapOptions(window=128, overlap=32, batch_size=8),
                     probabilities_path=tmp_path / "proba.tif", progress=False)
    assert res.chunks_resumed == len(state["done"])
    np.testing.assert_array_equal(_read(out), _read(big_map))
    assert not list(tmp_path.glob("*.partial*"))


def test_changed_parameters_start_over(rasters, tmp_path):
    out = tmp_path / "map.tif"
    with pytest.raises(RuntimeError):
        map_raster(FakePredictor(fail_after=2), rasters["small"], out,
                   options=MapOptions(window=128, overlap=32), progress=False)
    with pytest.warns(UserWarning, match="other parameters"):
        res = map_raster(FakePredictor(), rasters["small"], out,
                         options=MapOptions(window=128, overlap=64), progress=False)
    assert res.chunks_resumed == 0 and out.exists()


def test_ranks_split_strips_and_rank0_merges(rasters, big_map, tmp_path):
    out = tmp_path / "map.tif"
    r1 = map_raster(FakePredictor(), rasters["big"], out,
                    options=MapOptions(window=128, overlap=32, batch_size=8), progress=False, rank=1, world_size=2)
    assert r1.map_path is None and not out.exists()
    r0 = map_raster(FakePredictor(), rasters["big"], out,
                    options=MapOptions(window=128, overlap=32, batch_size=8), progress=False, rank=0, world_size=2)
    assert r0.map_path == out
    np.testing.assert_array_equal(_read(out), _read(big_map))
    assert not list(tmp_path.glob("*.partial*"))


def test_vrt_mosaic_equals_single_file(rasters, tmp_path):
    with rasterio.open(rasters["small"]) as src:
        data, profile = src.read(), src.profile
    left, right = data[:, :, :150], data[:, :, 150:]
    _write(tmp_path / "a.tif", left)
    _write(tmp_path / "b.tif", right, transform=profile["transform"] @ Affine.translation(150, 0))
    bands = []
    for b in range(1, 6):
        sources = "".join(
            f"<SimpleSource><SourceFilename relativeToVRT=\"1\">{name}</SourceFilename>"
            f"<SourceBand>{b}</SourceBand><SrcRect xOff=\"0\" yOff=\"0\" xSize=\"150\" ySize=\"300\"/>"
            f"<DstRect xOff=\"{off}\" yOff=\"0\" xSize=\"150\" ySize=\"300\"/></SimpleSource>"
            for name, off in (("a.tif", 0), ("b.tif", 150))
        )
        bands.append(f"<VRTRasterBand dataType=\"Byte\" band=\"{b}\">{sources}</VRTRasterBand>")
    gt = ", ".join(str(v) for v in profile["transform"].to_gdal())
    vrt = tmp_path / "mosaic.vrt"
    vrt.write_text(f"<VRTDataset rasterXSize=\"300\" rasterYSize=\"300\"><SRS>{L93.to_wkt()}</SRS>"
                   f"<GeoTransform>{gt}</GeoTransform>{''.join(bands)}</VRTDataset>")
    kw = {"options": MapOptions(window=128, overlap=32, batch_size=8), "progress": False}
    a = _read(map_raster(FakePredictor(), vrt, tmp_path / "vrt_map.tif", **kw).map_path)
    b = _read(map_raster(FakePredictor(), rasters["small"], tmp_path / "tif_map.tif", **kw).map_path)
    np.testing.assert_array_equal(a, b)


# --- input checks --------------------------------------------------------------------------------

def test_input_errors_name_the_file(rasters, tmp_path):
    rng = np.random.default_rng(1)
    three = _write(tmp_path / "three.tif", rng.integers(0, 255, (3, 64, 64), dtype=np.uint8))
    with pytest.raises(MappingInputError, match=r"three.tif holds \['R', 'G', 'B'\]: \['NIR', 'elevation'\] missing"):
        map_raster(FakePredictor(), three, tmp_path / "m.tif", progress=False)
    two = _write(tmp_path / "two.tif", rng.integers(0, 255, (2, 64, 64), dtype=np.uint8))
    with pytest.raises(MappingInputError, match="two.tif has 2 bands"):
        map_raster(FakePredictor(), two, tmp_path / "m.tif", progress=False)
    four = _write(tmp_path / "four.tif", rng.integers(0, 255, (4, 64, 64), dtype=np.uint8))
    with pytest.raises(MappingInputError, match="four.tif.*elevation"):
        map_raster(FakePredictor(), four, tmp_path / "m.tif", progress=False)
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", width=64, height=64, count=5, dtype="uint8") as ds:
        ds.write(rng.integers(0, 255, (5, 64, 64), dtype=np.uint8))
    with pytest.raises(MappingInputError, match="nocrs.tif.*no CRS"):
        map_raster(FakePredictor(), nocrs, tmp_path / "m.tif", progress=False)
    far = _write(tmp_path / "elev_far.tif", rng.integers(0, 255, (1, 64, 64), dtype=np.uint8),
                 transform=Affine(PIXEL_M, 0, ORIGIN_X + 10_000, 0, -PIXEL_M, ORIGIN_Y))
    with pytest.raises(MappingInputError, match="elev_far.tif.*does not overlap"):
        map_raster(FakePredictor(), four, tmp_path / "m.tif", elevation_path=far, progress=False)
    assert not (tmp_path / "m.tif").exists()


def test_four_bands_with_elevation_on_another_grid(tmp_path):
    rng = np.random.default_rng(2)
    img = _texture(rng, 96, 96)
    four = _write(tmp_path / "four.tif", img[:4])
    # Elevation at 0.4 m on a larger extent: read by coordinates onto the aerial grid.
    elev = np.kron(img[4:5, ::2, ::2], np.ones((1, 1, 1), dtype=np.uint8))
    elev = np.pad(elev, ((0, 0), (10, 10), (10, 10)), mode="edge")
    e_tr = Affine(0.4, 0, ORIGIN_X - 4.0, 0, -0.4, ORIGIN_Y + 4.0)
    elev_path = _write(tmp_path / "elev.tif", elev, transform=e_tr)
    res = map_raster(FakePredictor(), four, tmp_path / "m.tif", elevation_path=elev_path,
                     options=MapOptions(window=64, overlap=16), progress=False)
    with rasterio.open(res.map_path) as ds:
        assert ds.shape == (96, 96) and (ds.read(1) < K).all()


def test_other_resolution_resampled_or_refused(tmp_path):
    rng = np.random.default_rng(3)
    coarse = _write(tmp_path / "coarse.tif", _texture(rng, 40, 40),
                    transform=Affine(0.5, 0, ORIGIN_X, 0, -0.5, ORIGIN_Y))
    with pytest.raises(MappingInputError, match="coarse.tif.*0.5"):
        map_raster(FakePredictor(), coarse, tmp_path / "m.tif",
                   options=MapOptions(resolution_policy="error"), progress=False)
    with pytest.warns(UserWarning, match="resampling"):
        res = map_raster(FakePredictor(), coarse, tmp_path / "m.tif",
                         options=MapOptions(window=64, overlap=16), progress=False)
    with rasterio.open(res.map_path) as ds:
        assert ds.shape == (100, 100) and ds.transform.a == pytest.approx(0.2)


# --- Sentinel-2 ----------------------------------------------------------------------------------

S2_ORIGIN_X, S2_ORIGIN_Y = ORIGIN_X - 500.0, ORIGIN_Y + 500.0


def _write_s2(folder: Path, names: list[str], size: int = 120) -> None:
    rows, cols = np.mgrid[0:size, 0:size]
    code = (rows * 200 + cols).astype(np.uint16)
    for t, name in enumerate(names):
        data = np.repeat(code[None], 10, axis=0)
        data[1] = t  # band 2 carries the date's position in the folder listing
        _write(folder / f"{name}.tif", data, transform=Affine(10, 0, S2_ORIGIN_X, 0, -10, S2_ORIGIN_Y))
    _write(folder / f"{names[0]}_masks.tif", np.zeros((2, size, size), dtype=np.uint8),
           transform=Affine(10, 0, S2_ORIGIN_X, 0, -10, S2_ORIGIN_Y))


S2_NAMES = ["SENTINEL2B_20210815-105852-000_L2A_T31TFJ_C_V2-2", "SENTINEL2A_20210415-105852-000_L2A_T31TFJ_C_V2-2"]


def test_sentinel_window_centred_by_coordinates(tmp_path):
    _write_s2(tmp_path, S2_NAMES)
    series = SentinelSeries(tmp_path, L93, datetime.date(2021, 5, 15))
    try:
        assert series.dates == [datetime.date(2021, 4, 15), datetime.date(2021, 8, 15)]
        np.testing.assert_array_equal(series.dates_days, [-30, 92])
        # A point inside pixel (row 50, col 30) of the 10 m grid.
        x, y = S2_ORIGIN_X + 30 * 10 + 3.0, S2_ORIGIN_Y - 50 * 10 - 7.0
        win = series.read_window(x, y, 40)
        assert win.shape == (2, 10, 40, 40) and win.dtype == np.float32
        assert win[0, 0, 20, 20] == 50 * 200 + 30
        assert win[0, 0, 0, 0] == 30 * 200 + 10 and win[0, 0, 39, 39] == 69 * 200 + 49
        np.testing.assert_array_equal(win[:, 1, 0, 0], [1, 0])  # sorted by date
        # Near the edge: the part outside the file repeats its edge pixels (as the dataset does).
        edge = series.read_window(S2_ORIGIN_X + 5.0, S2_ORIGIN_Y - 5.0, 40)
        assert edge.shape == (2, 10, 40, 40) and edge[0, 0, 19, 19] == 0 and edge[0, 0, 20, 20] == 0
        assert edge[0, 0, 0, 25] == 5 and edge[0, 0, 25, 0] == 5 * 200
    finally:
        series.close()


def test_map_with_sentinel_feeds_windows_centred_on_aerial_windows(rasters, tmp_path):
    s2 = tmp_path / "s2"
    s2.mkdir()
    _write_s2(s2, S2_NAMES)
    pred = FakePredictor(uses_sentinel=True)
    map_raster(pred, rasters["small"], tmp_path / "m.tif", sentinel_dir=s2,
               options=MapOptions(window=128, overlap=32, batch_size=4), progress=False)
    first = pred.batches[0]
    # Rows of 3 windows; batches run across rows, so all but the last are full.
    sizes = [len(batch["aerial"]) for batch in pred.batches]
    assert sizes[:-1] == [4] * (len(sizes) - 1) and 1 <= sizes[-1] <= 4 and sum(sizes) == 9
    assert first["sentinel"].shape == (4, 2, 10, 8, 8) and first["sentinel"].dtype == torch.float32
    assert first["dates_days"].tolist()[0] == [-30, 92] and not first["sentinel_pad_mask"].any()
    # First window: centre at aerial pixel (64, 64) -> 12.8 m from the aerial origin.
    cx, cy = ORIGIN_X + 64 * PIXEL_M, ORIGIN_Y - 64 * PIXEL_M
    row, col = int((S2_ORIGIN_Y - cy) // 10), int((cx - S2_ORIGIN_X) // 10)
    assert first["sentinel"][0, 0, 0, 4, 4].item() == row * 200 + col
    with pytest.raises(MappingInputError, match="Sentinel-2"):
        map_raster(FakePredictor(uses_sentinel=True), rasters["small"], tmp_path / "n.tif", progress=False)


# --- areas, change, polygons ---------------------------------------------------------------------

def _class_map(path: Path, data: np.ndarray, transform: Affine | None = None, crs=L93) -> Path:
    _write(path, data[None].astype(np.uint8), transform=transform, crs=crs, nodata=255, tiled=True,
           blockxsize=256, blockysize=256)
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(FLAIRLC_NOMENCLATURE="baseline")
    return path


def _regions(h: int = 600, w: int = 500, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.kron(rng.integers(0, K, (h // 50, w // 50)), np.ones((50, 50), dtype=np.int64))
    data[rng.random((h, w)) < 0.002] = 3  # single-pixel specks
    data[:30, :70] = 255
    return data.astype(np.uint8)


def test_areas_add_up_overall_and_per_zone(tmp_path):
    data = _regions()
    m = _class_map(tmp_path / "map.tif", data)
    pixel_m2 = PIXEL_M * PIXEL_M
    zones = [(ORIGIN_X + 20, ORIGIN_Y - 100, ORIGIN_X + 60, ORIGIN_Y - 20),  # 200 x 400 px
             (ORIGIN_X + 10, ORIGIN_Y - 110, ORIGIN_X + 30, ORIGIN_Y - 90)]  # overlaps the first
    gpkg = tmp_path / "zones.gpkg"
    wgs84 = CRS.from_epsg(4326)
    schema = {"geometry": "Polygon", "properties": {"name": "str"}}
    with fiona.open(gpkg, "w", driver="GPKG", schema=schema, crs=FionaCRS.from_epsg(2154)) as dst:
        for i, (x0, y0, x1, y1) in enumerate(zones):
            ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
            dst.write({"geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": {"name": f"z{i}"}})
    table = compute_areas(m, gpkg, "name", out_dir=tmp_path / "areas")
    valid = data != 255
    assert table.overall.valid_m2 == pytest.approx(valid.sum() * pixel_m2)
    for k in range(K):
        assert table.overall.area_m2[k] == pytest.approx((data == k).sum() * pixel_m2)
    assert table.overall.percent.sum() == pytest.approx(100.0)
    art = np.isin(data, nomenclature.ARTIFICIAL_INDICES).sum() * pixel_m2
    assert table.overall.artificial_m2 == pytest.approx(art)
    z0, z1 = table.zones
    assert z0.name == "z0" and z0.valid_m2 == pytest.approx(40 * 80)
    expected = np.bincount(data[100:500, 100:300].ravel(), minlength=256)[:K] * pixel_m2
    np.testing.assert_allclose(z0.area_m2, expected)
    assert z1.valid_m2 == pytest.approx(20 * 20)
    for name in ("areas.csv", "areas.json", "areas.png"):
        assert (tmp_path / "areas" / name).stat().st_size > 0
    # The same zones in WGS 84 are reprojected (areas agree within 1 %).
    gpkg84 = tmp_path / "zones84.gpkg"
    with fiona.open(gpkg84, "w", driver="GPKG", schema=schema, crs=FionaCRS.from_epsg(4326)) as dst:
        x0, y0, x1, y1 = zones[0]
        ring = {"type": "Polygon", "coordinates": [[(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]]}
        dst.write({"geometry": transform_geom(L93, wgs84, ring), "properties": {"name": "z84"}})
    t84 = compute_areas(m, gpkg84, "name")
    assert t84.zones[0].valid_m2 == pytest.approx(40 * 80, rel=0.01)


def test_areas_csv_gives_hectares_to_the_precision_of_a_pixel(tmp_path):
    """Four 0.2 m pixels are 0.16 m², 0.000016 ha: areas.csv writes 6 decimals in ha, not 0.0000."""
    data = np.full((100, 100), 255, dtype=np.uint8)
    data[:2, :2] = 0  # four building pixels
    data[50:, :] = 5  # 5000 coniferous pixels, 200 m², 0.02 ha
    table = compute_areas(_class_map(tmp_path / "map.tif", data), out_dir=tmp_path / "areas")
    rows = {(r["zone"], r["class_name"]): r for r in csv.DictReader((tmp_path / "areas" / "areas.csv").open())}
    building = rows[("all", nomenclature.class_names()[0])]
    assert (building["pixels"], building["area_m2"], building["area_ha"]) == ("4", "0.16", "0.000016")
    assert rows[("all", "coniferous")]["area_ha"] == "0.020000"
    assert rows[("all", "artificialized")]["area_ha"] == "0.000016"
    assert table.to_dict()["overall"]["classes"][0]["area_ha"] == 0.000016


def test_change_against_itself_is_diagonal(tmp_path):
    data = _regions()
    m = _class_map(tmp_path / "a.tif", data)
    res = compute_change(m, m, tmp_path / "change.tif")
    areas = compute_areas(m)
    np.testing.assert_allclose(np.diag(res.matrix_ha), areas.overall.area_ha)
    assert res.changed_ha == pytest.approx(0.0) and res.newly_artificialized_ha == 0.0
    off = res.matrix_ha - np.diag(np.diag(res.matrix_ha))
    assert not off.any()
    codes = _read(tmp_path / "change.tif")
    np.testing.assert_array_equal(codes[data != 255], data[data != 255].astype(int) * (K + 1))
    assert (codes[data == 255] == 255).all()
    for suffix in (".csv", ".json", ".png"):
        assert (tmp_path / f"change{suffix}").exists()


def test_change_summaries_on_a_constructed_pair(tmp_path):
    a = np.full((300, 400), 10, dtype=np.uint8)  # agricultural land
    a[200:300, 0:100] = 5  # coniferous
    b = a.copy()
    b[50:100, 60:140] = 0  # field -> building: 50 x 80 px
    b[200:240, 0:100] = 10  # forest -> field: 40 x 100 px
    ma, mb = _class_map(tmp_path / "a.tif", a), _class_map(tmp_path / "b.tif", b)
    res = compute_change(ma, mb, tmp_path / "change.tif", out_dir=tmp_path / "stats")
    px_ha = PIXEL_M * PIXEL_M / 1e4
    assert res.newly_artificialized_ha == pytest.approx(50 * 80 * px_ha)
    assert res.forest_loss_ha == pytest.approx(40 * 100 * px_ha)
    assert res.changed_ha == pytest.approx((50 * 80 + 40 * 100) * px_ha)
    assert res.changed_percent == pytest.approx(100 * (50 * 80 + 40 * 100) / (300 * 400))
    assert res.matrix_ha[10, 0] == pytest.approx(50 * 80 * px_ha)
    assert _read(tmp_path / "change.tif")[60, 70] == 10 * K + 0
    summary = json.loads((tmp_path / "stats" / "change.json").read_text())["summary"]
    assert summary["forest_loss_ha"] == pytest.approx(res.forest_loss_ha)


def test_change_misaligned_maps(tmp_path):
    a = _regions(200, 200)
    ma = _class_map(tmp_path / "a.tif", a)
    far = _class_map(tmp_path / "far.tif", a, transform=Affine(PIXEL_M, 0, ORIGIN_X + 1e4, 0, -PIXEL_M, ORIGIN_Y))
    with pytest.raises(MappingInputError, match="far.tif.*do not overlap|do not overlap.*far.tif"):
        compute_change(ma, far, tmp_path / "c.tif")
    # Shifted by 10 px: aligned onto A's grid with a warning; the overlap is unchanged.
    shifted = _class_map(tmp_path / "shift.tif", a,
                         transform=Affine(PIXEL_M, 0, ORIGIN_X + 2.0, 0, -PIXEL_M, ORIGIN_Y))
    with pytest.warns(UserWarning, match="shift.tif.*grid"):
        res = compute_change(ma, shifted, tmp_path / "c.tif")
    valid_both = (a[:, 10:] != 255) & (a[:, :-10] != 255)
    assert res.compared_ha == pytest.approx(valid_both.sum() * PIXEL_M**2 / 1e4)


def test_polygons_sum_to_class_areas(tmp_path):
    data = _regions(300, 300)
    m = _class_map(tmp_path / "map.tif", data)
    areas = compute_areas(m)
    for tile in (None, 128):
        out = polygonize_map(m, tmp_path / f"poly_{tile}.gpkg", tile_size=tile)
        per_class = np.zeros(K)
        with fiona.open(out) as src:
            for f in src:
                per_class[f.properties["class_index"]] += f.properties["area_m2"]
                assert f.properties["class_name"] == nomenclature.class_names()[f.properties["class_index"]]
        np.testing.assert_allclose(per_class, areas.overall.area_m2, rtol=1e-9, atol=1e-6)
    speckless = polygonize_map(m, tmp_path / "big_only.gpkg", min_area_m2=1.0)
    with fiona.open(speckless) as src:
        kept = [f.properties["area_m2"] for f in src]
    assert min(kept) >= 1.0
    # Single-pixel specks (0.04 m²) are dropped: the kept area is the class area minus specks.
    assert sum(kept) < areas.overall.valid_m2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not list(tmp_path.glob("*.tmp*"))
