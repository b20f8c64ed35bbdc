"""Mapping with a DSM/DTM raster (``--dem``): FLAIR-HUB's ``DEM_ELEV`` instead of a 1-band elevation.

The elevation band is computed per window as FLAIR-HUB's data path computes it
(:func:`flairlc.data.bands.elevation_digital_numbers` of DSM and DTM), so a map with ``--dem`` is
the map with ``--elevation`` of that elevation computed beforehand; the DEM is read by
coordinates (here on a larger grid, its bands in the other order, named by their descriptions)
and checked like the elevation raster before any work.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from raster_helpers import read_band as _read
from raster_helpers import write_raster as _write

from flairlc.cli import main
from flairlc.data.bands import elevation_digital_numbers

pytestmark = pytest.mark.usefixtures("one_torch_thread")
#: The territory's side, pixels (51.2 m), and the DEM's margin around it, pixels.
SIZE_PX, MARGIN_PX = 256, 16
WINDOW = ["--window", "128", "--overlap", "32"]


def _dem_arrays(elevation_dn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A DSM and a DTM (float32 metres) whose height above ground is ``elevation_dn`` / 10, over
    a sloping terrain."""
    rows, cols = np.mgrid[0 : elevation_dn.shape[0], 0 : elevation_dn.shape[1]]
    dtm = (152.3 + 0.05 * rows + 0.031 * cols).astype(np.float32)
    return dtm + elevation_dn.astype(np.float32) / np.float32(10), dtm


@pytest.fixture(scope="module")
def area(tmp_path_factory) -> dict[str, Path]:
    """A synthetic territory (4-band orthophoto); its DEM on a grid 16 px larger each side, bands
    DTM, DSM (so described); the elevation computed from it beforehand; two untrained U-Nets
    reading R, G, B, NIR, elevation and R, G, B, NIR."""
    import torch

    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    d = tmp_path_factory.mktemp("dem")
    year = generate_orthophoto(d / "territory", width=SIZE_PX, height=SIZE_PX, seed=5, years=(2022,), dates=1)[0]
    with rasterio.open(year.elevation) as ds:
        elevation, t, crs = ds.read(1), ds.transform, ds.crs
    dsm, dtm = _dem_arrays(np.pad(elevation, MARGIN_PX, mode="reflect"))
    dem_transform = Affine(t.a, 0, t.c - MARGIN_PX * t.a, 0, t.e, t.f - MARGIN_PX * t.e)
    dem = _write(d / "DEM_ELEV.tif", np.stack([dtm, dsm]), transform=dem_transform, crs=crs)
    with rasterio.open(dem, "r+") as ds:
        ds.descriptions = ("DTM", "DSM")
    computed = _write(d / "elevation_from_dem.tif", elevation_digital_numbers(dsm, dtm)[None],
                      transform=dem_transform, crs=crs)
    checkpoints = {}
    for name, bands in (("five", None), ("four", ("R", "G", "B", "NIR"))):
        torch.manual_seed(0)
        task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18", "encoder_weights": None},
                                bands=bands)
        checkpoints[name] = save_task(task, d / f"{name}.ckpt")
    return {"root": d, "aerial": year.aerial, "elevation": year.elevation, "dem": dem, "computed": computed,
            "checkpoint": checkpoints["five"], "rgbi_checkpoint": checkpoints["four"], "crs": crs,
            "dem_transform": dem_transform, "dsm": dsm, "dtm": dtm}


def _map(area, out: Path, *extra: str, checkpoint: Path | None = None) -> int:
    return main(["map", "--checkpoint", str(checkpoint or area["checkpoint"]), "--aerial", str(area["aerial"]),
                 "--out", str(out), *WINDOW, *extra])


def test_dem_elevation_is_what_the_hub_dataset_feeds(tmp_path):
    """The 5 bands the mapper reads from AERIAL_RGBI + DEM_ELEV are FlairHubDataset's (aerial_elevation)."""
    from rasterio.windows import Window

    from flairlc.data.hub.dataset import FlairHubDataset
    from flairlc.data.hub.layout import discover_hub
    from flairlc.data.synthetic.hub import generate_hub_dataset
    from flairlc.mapping.inputs import AerialSource

    generate_hub_dataset(tmp_path / "hub", domains=1, rois_per_domain=1, patches_per_side=1, patch_size=48,
                         dates=2, seed=4)
    patch = discover_hub(tmp_path / "hub")[0]
    sample = FlairHubDataset([patch], modalities=("aerial", "dem"), aerial_elevation=True)[0]
    with AerialSource(patch.files["AERIAL_RGBI"], dem_path=patch.files["DEM_ELEV"]) as source:
        aerial, valid = source.read(Window(0, 0, source.width, source.height))
    assert valid.all() and aerial[4].any()
    np.testing.assert_array_equal(aerial, sample["aerial"].numpy())


def test_map_with_dem_equals_map_with_its_elevation(area, tmp_path):
    assert _map(area, tmp_path / "dem.tif", "--dem", str(area["dem"])) == 0
    assert _map(area, tmp_path / "elevation.tif", "--elevation", str(area["computed"])) == 0
    with_dem = _read(tmp_path / "dem.tif")
    assert np.array_equal(with_dem, _read(tmp_path / "elevation.tif"))
    # The model reads the elevation: a flat one gives another map.
    flat = _write(tmp_path / "flat.tif", np.zeros((1, SIZE_PX, SIZE_PX), np.uint8),
                  transform=rasterio.open(area["aerial"]).transform, crs=area["crs"])
    assert _map(area, tmp_path / "flat_map.tif", "--elevation", str(flat)) == 0
    assert not np.array_equal(with_dem, _read(tmp_path / "flat_map.tif"))


def test_map_area_with_dem_tiles_equals_elevation_tiles_and_resume_keeps_them(area, tmp_path, capsys):
    from flairlc.data.synthetic.tiles import cut_into_tiles
    from flairlc.mapping.job import MapJob

    two_band = _write(tmp_path / "dsm_dtm.tif", np.stack([area["dsm"], area["dtm"]]),
                      transform=area["dem_transform"], crs=area["crs"])
    # DEM and elevation tiles on a tiling of their own (partial tiles at the edges).
    cut_into_tiles(two_band, tmp_path / "dem_tiles", 30.0, "DEM", origin_shift_m=(6.4, 3.2))
    cut_into_tiles(area["computed"], tmp_path / "elevation_tiles", 30.0, "ELEV", origin_shift_m=(6.4, 3.2))
    common = ["map-area", "--checkpoint", str(area["checkpoint"]), "--aerial", str(area["aerial"]),
              "--tile-size", "128", *WINDOW, "--threads", "1"]
    dem_job = [*common, "--out", str(tmp_path / "dem_job"), "--dem", str(tmp_path / "dem_tiles")]
    assert main(dem_job) == 0
    assert main([*common, "--out", str(tmp_path / "elevation_job"), "--elevation", str(tmp_path / "elevation_tiles")]) == 0
    mosaic = _read(tmp_path / "dem_job" / "map.vrt")
    assert np.array_equal(mosaic, _read(tmp_path / "elevation_job" / "map.vrt"))
    assert (mosaic != 255).all()
    # job.json records the DEM tiles; a rerun resumes with them, the job reopened reads them.
    spec = json.loads((tmp_path / "dem_job" / "job.json").read_text())
    assert spec["elevation"] is None
    assert sorted(Path(p).name for p in spec["dem"]) == sorted(p.name for p in (tmp_path / "dem_tiles").glob("*.tif"))
    job = MapJob.open(tmp_path / "dem_job")
    capsys.readouterr()
    assert main(dem_job) == 0
    assert f"{len(job.tasks)} tiles of 128 px" in (out := capsys.readouterr().out)
    assert f"{len(job.tasks)} already done" in out and "this run: 0 tiles" in out
    assert job.dem_vrt is not None and job.dem_vrt.is_file() and job.elevation_vrt is None
    # The same folder with the elevation tiles instead: another job, refused.
    assert main([*common, "--out", str(tmp_path / "dem_job"), "--elevation", str(tmp_path / "elevation_tiles")]) == 2
    assert "dem, elevation differ" in capsys.readouterr().err


def _refusal(area, tmp_path: Path, case: str) -> tuple[list[str], str | tuple[str, ...]]:
    """The extra arguments of a refused ``map`` and the message expected (or its parts)."""
    crs, t = area["crs"], area["dem_transform"]
    dsm, dtm = area["dsm"], area["dtm"]
    if case == "missing":
        return ["--dem", str(tmp_path / "nowhere.tif")], f"DEM raster {tmp_path / 'nowhere.tif'} does not exist"
    if case == "one band":
        path = _write(tmp_path / "one.tif", dsm[None], transform=t, crs=crs)
        return ["--dem", str(path)], f"DEM raster {path} has 1 band(s): expected 2, DSM and DTM in metres"
    if case == "three bands":
        path = _write(tmp_path / "three.tif", np.stack([dsm, dtm, dtm]), transform=t, crs=crs)
        return ["--dem", str(path)], f"DEM raster {path} has 3 band(s): expected 2"
    if case == "no overlap":
        far = Affine(t.a, 0, t.c + 10_000, 0, t.e, t.f)
        path = _write(tmp_path / "far.tif", np.stack([dsm, dtm]), transform=far, crs=crs)
        return ["--dem", str(path)], (f"DEM raster {path} (extent", "does not overlap the aerial image")
    if case == "partial":
        west = Affine(t.a, 0, t.c, 0, t.e, t.f)
        path = _write(tmp_path / "west.tif", np.stack([dsm, dtm])[:, :, : SIZE_PX // 2], transform=west, crs=crs)
        return ["--dem", str(path)], (f"DEM raster {path} (extent", "covers only 44 % of the aerial image")
    if case == "no CRS":
        path = _write(tmp_path / "nocrs.tif", np.stack([dsm, dtm]), transform=t, crs=None)
        return ["--dem", str(path)], f"DEM raster {path} has no CRS"
    if case == "with --elevation":
        return (["--dem", str(area["dem"]), "--elevation", str(area["computed"])],
                f"the elevation is given twice, as {area['computed']} (--elevation) and as DSM/DTM {area['dem']}")
    if case == "--out is the DEM":
        return ["--dem", str(area["dem"])], f"--out {area['dem']} would overwrite the input --dem {area['dem']}"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "one band", "three bands", "no overlap", "partial", "no CRS",
                                  "with --elevation", "--out is the DEM"])
def test_bad_dem_is_refused_in_one_line_before_any_work(area, tmp_path, capsys, case):
    extra, expected = _refusal(area, tmp_path, case)
    out = area["dem"] if case == "--out is the DEM" else tmp_path / "out" / "map.tif"
    dem_before = area["dem"].read_bytes()
    capsys.readouterr()
    assert _map(area, out, *extra) == 2
    err = capsys.readouterr().err
    parts = (expected,) if isinstance(expected, str) else expected
    assert err.count("\n") == 1 and err.startswith("flairlc map: error: "), err
    assert all(part in err for part in parts), err
    assert not (tmp_path / "out").exists()
    assert area["dem"].read_bytes() == dem_before


def test_partial_dem_maps_what_it_covers_with_coverage_policy_warn(area, tmp_path, capsys):
    extra, _ = _refusal(area, tmp_path, "partial")
    assert _map(area, tmp_path / "m.tif", *extra, "--coverage-policy", "warn") == 0
    assert "warning: DEM raster" in capsys.readouterr().err
    classes = _read(tmp_path / "m.tif")
    assert (classes[:, : SIZE_PX // 2 - MARGIN_PX - 2] != 255).all()
    assert (classes[:, SIZE_PX // 2 - MARGIN_PX + 2 :] == 255).all()


def test_map_area_refuses_a_bad_dem_before_the_job_folder(area, tmp_path, capsys):
    one = _write(tmp_path / "one.tif", area["dsm"][None], transform=area["dem_transform"], crs=area["crs"])
    common = ["map-area", "--checkpoint", str(area["checkpoint"]), "--aerial", str(area["aerial"]),
              "--out", str(tmp_path / "job"), "--tile-size", "128"]
    for extra, expected in ((["--dem", str(one)], f"DEM raster {one} has 1 band(s): expected 2"),
                            (["--dem", str(area["dem"]), "--elevation", str(area["computed"])],
                             "the elevation is given twice"),
                            (["--dem", str(tmp_path / "nowhere")], f"DEM {tmp_path / 'nowhere'} does not exist")):
        capsys.readouterr()
        assert main([*common, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
        assert not (tmp_path / "job").exists()


def test_model_without_elevation_ignores_the_dem_as_the_elevation(area, tmp_path, capsys):
    """As with --elevation: a warning, and the map of the orthophoto alone."""
    assert _map(area, tmp_path / "plain.tif", checkpoint=area["rgbi_checkpoint"]) == 0
    capsys.readouterr()
    assert _map(area, tmp_path / "dem.tif", "--dem", str(area["dem"]), checkpoint=area["rgbi_checkpoint"]) == 0
    assert f"warning: the model does not read elevation: ignoring {area['dem']}" in capsys.readouterr().err
    assert np.array_equal(_read(tmp_path / "dem.tif"), _read(tmp_path / "plain.tif"))


def _separate_vrt(path: Path, members: list[Path], transform: Affine, crs, shape: tuple[int, int]) -> Path:
    """A VRT with one band per single-band member, as ``gdalbuildvrt -separate`` writes it."""
    height, width = shape
    bands = "".join(
        f'<VRTRasterBand dataType="Float32" band="{b}"><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{member}</SourceFilename><SourceBand>1</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/></SimpleSource></VRTRasterBand>'
        for b, member in enumerate(members, start=1))
    geotransform = ", ".join(repr(float(v)) for v in transform.to_gdal())
    path.write_text(f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{crs.to_wkt()}</SRS>'
                    f"<GeoTransform>{geotransform}</GeoTransform>{bands}</VRTDataset>")
    return path


def test_dsm_and_dtm_files_through_a_separate_vrt(area, tmp_path, capsys):
    """IGN's DSM and DTM as two rasters: a VRT of both (band 1 DSM, band 2 DTM) maps as the DEM;
    an --out on one of its members is refused."""
    t, crs = area["dem_transform"], area["crs"]
    dsm = _write(tmp_path / "DSM.tif", area["dsm"][None], transform=t, crs=crs)
    dtm = _write(tmp_path / "DTM.tif", area["dtm"][None], transform=t, crs=crs)
    vrt = _separate_vrt(tmp_path / "DEM.vrt", [dsm, dtm], t, crs, area["dsm"].shape)
    assert _map(area, tmp_path / "vrt.tif", "--dem", str(vrt)) == 0
    assert _map(area, tmp_path / "dem.tif", "--dem", str(area["dem"])) == 0
    assert np.array_equal(_read(tmp_path / "vrt.tif"), _read(tmp_path / "dem.tif"))
    capsys.readouterr()
    assert _map(area, dtm, "--dem", str(vrt)) == 2
    assert f"--out {dtm} would overwrite the input --dem {vrt} ({dtm}, read through it)" in capsys.readouterr().err


def test_dem_nodata_is_nodata_in_the_map(area, tmp_path):
    """Pixels where the DSM or the DTM is nodata (a missing LiDAR tile) are not mapped."""
    from rasterio.windows import Window

    from flairlc.mapping.inputs import AerialSource

    dsm, dtm = area["dsm"].copy(), area["dtm"].copy()
    dsm[:40, :60] = -9999.0  # DEM rows/cols: the aerial image's shifted by MARGIN_PX
    dtm[100:120, 200:] = -9999.0
    path = _write(tmp_path / "holes.tif", np.stack([dsm, dtm]), transform=area["dem_transform"], crs=area["crs"],
                  nodata=-9999.0)
    expected = np.ones((SIZE_PX, SIZE_PX), dtype=bool)
    m = MARGIN_PX
    expected[: 40 - m, : 60 - m] = False
    expected[100 - m : 120 - m, 200 - m :] = False
    with AerialSource(area["aerial"], dem_path=path) as source:
        _, valid = source.read(Window(0, 0, SIZE_PX, SIZE_PX))
    np.testing.assert_array_equal(valid, expected)
