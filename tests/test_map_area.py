"""Mapping a "département" of orthophoto tiles: tiled jobs, Ray, shards, retries, resume, mosaics.

The area is a synthetic territory cut into 0.2 m orthophoto tiles (3 x 3) with elevation tiles on
another grid and at another resolution (0.4 m), mapped by an untrained ResNet18 U-Net. An
untrained network is the hardest case for seams: its output changes with the context of every
window, so only the same windows blended the same way give the same map.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import flairlc_command

from flairlc.mapping import MapOptions, map_raster
from flairlc.mapping.errors import MappingInputError
from flairlc.mapping.job import MapJob, load_predictor, map_tile, parse_shard, run_local

#: A 768 px (153.6 m) territory in 3 x 3 orthophoto tiles of 256 px.
SIZE_PX, TILE_M = 768, 51.2
#: Windows of 256 px with 64 px of overlap: several windows per output tile.
WINDOW = MapOptions(window=256, overlap=64, batch_size=4)


@pytest.fixture(scope="module")
def area(tmp_path_factory) -> dict[str, Path]:
    import torch

    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.data.synthetic.tiles import cut_into_tiles
    from flairlc.data.synthetic.zones import generate_zones
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    d = tmp_path_factory.mktemp("area")
    year = generate_orthophoto(d / "territory", width=SIZE_PX, height=SIZE_PX, seed=3, years=(2022,), dates=1)[0]
    cut_into_tiles(year.aerial, d / "ortho", TILE_M, "ORTHO")
    cut_into_tiles(year.elevation, d / "elevation", 40.0, "ELEV", pixel_m=0.4, origin_shift_m=(12.8, 6.4))
    torch.manual_seed(0)
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18", "encoder_weights": None})
    save_task(task, d / "model.ckpt")
    return {"root": d, "ortho": d / "ortho", "elevation": d / "elevation", "checkpoint": d / "model.ckpt",
            "zones": generate_zones(d / "zones.gpkg", year.aerial), "aerial_tif": year.aerial}


def _job(area, folder: Path, options: MapOptions = WINDOW) -> MapJob:
    return MapJob.create(folder, area["checkpoint"], area["ortho"], elevation=area["elevation"], tile_px=256,
                         options=options)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


@pytest.fixture(scope="module")
def local_job(area, tmp_path_factory, one_torch_thread) -> MapJob:
    """The job run in this process, one tile after another."""
    job = _job(area, tmp_path_factory.mktemp("jobs") / "local")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # elevation at 0.4 m: resampled, with a warning per tile
        result = run_local(job, progress=False)
    job.finish("local", result.seconds, result.outcomes)
    return job


def test_tiled_job_equals_one_map_of_the_area(area, local_job, tmp_path, one_torch_thread):
    """No seams: every pixel is the blend of the same windows as one `map` over the mosaic."""
    assert len(local_job.tasks) == 16  # 768 px in tiles of 256 anchored on multiples of 51.2 m
    one = tmp_path / "one.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        map_raster(load_predictor(area["checkpoint"]), local_job.aerial_vrt, one,
                   elevation_path=local_job.elevation_vrt, options=WINDOW, progress=False)
    mosaic, single = _read(local_job.mosaic_path), _read(one)
    assert mosaic.shape == (SIZE_PX, SIZE_PX)
    # The same windows, blended alike, on the same inputs (the elevation at 0.4 m is resampled
    # onto the whole area's grid for every tile): the same map, pixel for pixel.
    np.testing.assert_array_equal(mosaic, single)
    assert (mosaic != 255).all()
    summary = local_job.finish()
    assert summary["tiles"] == {"total": 16, "done": 16, "failed": 0, "pending": 0, "without_aerial_data": 0}
    assert summary["area_km2"]["done"] == pytest.approx(SIZE_PX**2 * 0.04 / 1e6)
    with rasterio.open(local_job.mosaic_path) as ds:
        assert ds.colormap(1)[0][:3] != (0, 0, 0) and "FLAIRLC_CLASSES" in ds.tags()
    # One COG for those who want one file; `change` reads the mosaic like any map.
    from flairlc.mapping import compute_change

    cog = local_job.finish(single_cog=tmp_path / "area.tif")["single_cog"]
    with rasterio.open(cog) as ds:
        assert ds.overviews(1) and ds.colormap(1) == rasterio.open(local_job.mosaic_path).colormap(1)
    np.testing.assert_array_equal(_read(Path(cog)), mosaic)
    change = compute_change(local_job.mosaic_path, one, tmp_path / "change.tif")
    assert change.summary()["changed_ha"] == 0 and change.summary()["compared_ha"] == pytest.approx(SIZE_PX**2 * 0.04 / 1e4)


def test_ray_two_workers_equal_one_process_and_survive_a_killed_worker(area, local_job, tmp_path):
    """Ray on this machine with 2 workers: the same mosaic, even when a worker is killed mid-tile."""
    pytest.importorskip("ray")
    from flairlc.mapping.distributed import run_ray

    job = _job(area, tmp_path / "ray")
    killed: list[int] = []
    stop = threading.Event()

    def kill_a_worker_mid_tile() -> None:
        # Once a tile is half-way (its working files exist), kill the worker mapping it.
        while not stop.is_set() and not killed:
            if list((job.root / "work").glob("*.partial.json")):
                out = subprocess.run(["pgrep", "-f", "ray::_tile_task"], capture_output=True, text=True).stdout.split()
                for pid in out[:1]:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_mid_tile, daemon=True)
    killer.start()
    try:
        result = run_ray(job, workers=2, cpus_per_tile=1, retries=2, progress=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was killed: the test did not exercise a failure"
    assert not result.failed
    summary = job.finish("ray", result.seconds, result.outcomes)
    assert summary["tiles"]["done"] == 16 and summary["failures"] == []
    np.testing.assert_array_equal(_read(job.mosaic_path), _read(local_job.mosaic_path))
    workers = {json.loads(job.record_path(t.name).read_text())["worker"] for t in job.tasks}
    assert len(workers) >= 2  # tiles mapped in several worker processes


def test_a_job_folder_of_the_previous_version_resumes(area, local_job, tmp_path):
    """job.json's "map" as the previous version wrote it (its own key order; one without
    "runtime", an option that came later): the job reopens, resumes with nothing to redo, and
    refuses other options that decide the map, not others that only change the speed."""
    job = tmp_path / "old"
    shutil.copytree(local_job.root, job)
    spec = json.loads((job / "job.json").read_text())
    old_map = {"window": 256, "overlap": 64, "batch_size": 4, "max_window": 1024, "precision": "32",
               "aerial_bands": None, "resolution_policy": "resample", "coverage_policy": "error",
               "probabilities": False, "runtime": "torch"}
    for written in (old_map, {k: v for k, v in old_map.items() if k != "runtime"}):
        (job / "job.json").write_text(json.dumps({**spec, "map": written}, indent=1))
        assert MapJob.open(job).options == WINDOW
        resumed = _job(area, job, dataclasses.replace(WINDOW, read_threads=1, prefetch=0))
        assert resumed.options.read_threads == 1 and resumed.pending() == []
        assert [o.status for o in run_local(resumed, progress=False).outcomes] == ["skipped"] * 16
    with pytest.raises(MappingInputError, match=r"other settings \(map differ\)"):
        _job(area, job, dataclasses.replace(WINDOW, overlap=32))
    with pytest.raises(MappingInputError, match=r"other settings \(map differ\)"):
        _job(area, job, dataclasses.replace(WINDOW, precision="bf16"))


def test_a_tile_failing_once_is_retried_and_one_failing_always_is_reported(area, local_job, tmp_path, one_torch_thread):
    job = _job(area, tmp_path / "faults")
    first, always = job.tasks[1].name, job.tasks[5].name
    calls: dict[str, int] = {}

    def flaky(job_, task, predictor, device):
        calls[task.name] = calls.get(task.name, 0) + 1
        if task.name == always or (task.name == first and calls[task.name] == 1):
            raise OSError(f"simulated read error on tile {task.name}")
        return map_tile(job_, task, predictor, device)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_local(job, progress=False, retries=1, tile_function=flaky)
    assert calls[first] == 2 and calls[always] == 2
    assert [o.name for o in result.failed] == [always]
    summary = job.finish("local", result.seconds, result.outcomes)
    assert summary["tiles"]["failed"] == 1 and summary["tiles"]["done"] == 15
    assert summary["failures"] == [{"tile": always, "error": f"OSError: simulated read error on tile {always}"}]
    assert (_read(job.mosaic_path) == 255).sum() == 256 * 256  # the failed tile is nodata in the mosaic
    # A rerun maps the failed tile only, and the mosaic is then complete and identical.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rerun = run_local(job, progress=False)
    assert [o.name for o in rerun.outcomes if o.status == "done"] == [always]
    assert job.finish()["failures"] == []
    np.testing.assert_array_equal(_read(job.mosaic_path), _read(local_job.mosaic_path))


def test_interrupted_job_recomputes_only_unfinished_tiles(area, local_job, tmp_path):
    """Kill the `flairlc map-area` process after some tiles; the rerun maps only the others."""
    out = tmp_path / "cli"
    command = flairlc_command() + [
        "map-area", "--checkpoint", str(area["checkpoint"]), "--aerial", str(area["ortho"]),
        "--elevation", str(area["elevation"]), "--out", str(out), "--tile-size", "256", "--window", "256",
        "--overlap", "64", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "tiles").glob("*.json"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    finished = {p.stem: p.stat().st_mtime_ns for p in (out / "tiles").glob("*.tif")}
    assert 4 <= len(finished) < 16
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} already done" in rerun.stdout
    assert f"this run: {16 - len(finished)} tiles" in rerun.stdout
    assert {p: (out / "tiles" / f"{p}.tif").stat().st_mtime_ns for p in finished} == finished  # not redone
    np.testing.assert_array_equal(_read(out / "map.vrt"), _read(local_job.mosaic_path))


def test_shards_split_the_tiles_between_processes(area, local_job, tmp_path, one_torch_thread):
    job = _job(area, tmp_path / "shards")
    shards = [job.shard(i, 3) for i in range(3)]
    assert sorted(t.name for s in shards for t in s) == sorted(t.name for t in job.tasks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(3):
            run_local(MapJob.open(job.root), shard=(i, 3), progress=False)
    assert job.finish()["tiles"]["done"] == 16
    np.testing.assert_array_equal(_read(job.mosaic_path), _read(local_job.mosaic_path))
    assert parse_shard("2/8") == (2, 8)
    assert parse_shard(None, {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "2"}) == (3, 4)
    assert parse_shard(None, {"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2)
    assert parse_shard(None, {}) is None
    with pytest.raises(ValueError, match="INDEX/COUNT"):
        parse_shard("two")


def test_missing_tiles_zone_and_areas(area, tmp_path, one_torch_thread):
    """A missing orthophoto tile and a missing elevation tile become nodata (reported); a zone
    clips the job; `areas` reads the mosaic."""
    from flairlc.mapping import compute_areas

    ortho, elevation = tmp_path / "ortho", tmp_path / "elevation"
    shutil.copytree(area["ortho"], ortho)
    shutil.copytree(area["elevation"], elevation)
    missing = sorted(ortho.glob("*.tif"))[4]  # the centre tile
    missing.unlink()
    with rasterio.open(area["aerial_tif"]) as ds:
        centre = ds.xy(SIZE_PX // 2 + 100, SIZE_PX // 2 + 100)
        inverse = ~ds.transform
    for tile in elevation.glob("*.tif"):  # the elevation tile south-east of the centre
        with rasterio.open(tile) as ds:
            left, bottom, right, top = ds.bounds
        if left <= centre[0] < right and bottom <= centre[1] < top:
            tile.unlink()
            gap = [left, bottom, right, top]
            col0, row0 = (round(v) for v in inverse @ (left, top))
            col1, row1 = (round(v) for v in inverse @ (right, bottom))
            break
    job = MapJob.create(tmp_path / "job", area["checkpoint"], ortho, elevation=elevation, tile_px=256,
                        options=dataclasses.replace(WINDOW, coverage_policy="warn"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_local(job, progress=False)
    summary = job.finish("local", result.seconds, result.outcomes)
    assert summary["failures"] == [] and summary["tiles"]["done"] == 16
    mosaic = _read(job.mosaic_path)
    assert (mosaic[256:512, 256:512] == 255).all()  # the missing orthophoto tile
    assert (mosaic[row0 + 2 : row1 - 2, col0 + 2 : col1 - 2] == 255).all()  # no elevation there
    assert (mosaic[:200, :200] != 255).all()
    with rasterio.open(area["ortho"] / missing.name) as ds:
        assert summary["missing_input_tiles"]["aerial"] == [pytest.approx(list(ds.bounds))]
    assert summary["missing_input_tiles"]["elevation"] == [pytest.approx(gap)]
    nodata_km2 = (mosaic == 255).sum() * 0.04 / 1e6
    assert summary["area_km2"]["nodata"] == pytest.approx(nodata_km2)
    table = compute_areas(job.mosaic_path, zones_path=area["zones"], zone_field="name")
    assert table.overall.valid_m2 == pytest.approx((mosaic != 255).sum() * 0.04)

    # A zone (a triangle in the north-west): the job keeps the tiles it touches, nodata outside.
    import fiona

    with rasterio.open(area["aerial_tif"]) as ds:
        left, top = ds.transform.c, ds.transform.f
    triangle = {"type": "Polygon", "coordinates": [[(left, top), (left + 100, top), (left, top - 100), (left, top)]]}
    schema = {"geometry": "Polygon", "properties": {"name": "str"}}
    with fiona.open(tmp_path / "zone.gpkg", "w", driver="GPKG", crs="EPSG:2154", schema=schema) as dst:
        dst.write({"geometry": triangle, "properties": {"name": "zone"}})
    zone_job = MapJob.create(tmp_path / "zone", area["checkpoint"], area["ortho"], elevation=area["elevation"],
                             zone=tmp_path / "zone.gpkg", tile_px=256, options=WINDOW)
    assert zone_job.grid.width == zone_job.grid.height == 500  # the triangle's bounding box
    assert 3 <= len(zone_job.tasks) < 9  # the tiles of its box that it touches
    corner = zone_job.tasks[1]  # 256 px wide: its north-west corner is inside, its south-east outside
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        map_tile(zone_job, corner, load_predictor(area["checkpoint"]))
    tile = _read(zone_job.tile_path(corner.name))
    assert tile[0, 0] != 255 and tile[-1, -1] == 255  # inside / outside the triangle


def test_bad_inputs_are_refused_before_any_tile(area, tmp_path):
    # A tile in another CRS is named.
    ortho = tmp_path / "ortho"
    shutil.copytree(area["ortho"], ortho)
    odd = sorted(ortho.glob("*.tif"))[2]
    with rasterio.open(odd, "r+") as ds:
        ds.crs = "EPSG:3857"
    with pytest.raises(MappingInputError, match=rf"{odd.name}.*EPSG:3857"):
        MapJob.create(tmp_path / "a", area["checkpoint"], ortho, elevation=area["elevation"], tile_px=256)
    # A model reading elevation without elevation tiles: refused before job.json exists.
    with pytest.raises(MappingInputError, match="elevation"):
        MapJob.create(tmp_path / "b", area["checkpoint"], area["ortho"], tile_px=256)
    assert not (tmp_path / "b" / "job.json").exists()
    # A job folder holding another job.
    _job(area, tmp_path / "c")
    with pytest.raises(MappingInputError, match="other settings.*tile_px"):
        MapJob.create(tmp_path / "c", area["checkpoint"], area["ortho"], elevation=area["elevation"], tile_px=384,
                      options=WINDOW)
    with pytest.raises(MappingInputError, match="does not exist"):
        MapJob.create(tmp_path / "d", area["checkpoint"], tmp_path / "nowhere", tile_px=256)
    # A U-T&T without its Sentinel-2 series, or with a folder that holds none.
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    utt = save_task(SegmentationTask(model="utt"), tmp_path / "utt.ckpt")
    with pytest.raises(MappingInputError, match="uses Sentinel-2"):
        MapJob.create(tmp_path / "e", utt, area["ortho"], elevation=area["elevation"], tile_px=256)
    with pytest.raises(MappingInputError, match="Sentinel-2 folder .* holds no"):
        MapJob.create(tmp_path / "e", utt, area["ortho"], elevation=area["elevation"], sentinel=area["ortho"].parent,
                      tile_px=256)
    assert not (tmp_path / "e" / "job.json").exists()


def test_mosaic_of_jpeg2000_and_geotiff_tiles(area, tmp_path):
    """Tiles of both formats form one VRT with the tiles' pixels; a missing tile is masked and
    found as a gap; a misaligned tile or another pixel size is refused, naming the file."""
    from flairlc.data.synthetic.tiles import cut_into_tiles
    from flairlc.mapping.mosaic import scan_tiles, write_vrt

    tif = cut_into_tiles(area["aerial_tif"], tmp_path / "tif", TILE_M, "T")
    jp2 = cut_into_tiles(area["aerial_tif"], tmp_path / "jp2", TILE_M, "J", fmt="jp2")
    mixed = [p for i, p in enumerate(tif) if i % 2] + [p for i, p in enumerate(jp2) if not i % 2 and i != 4]
    mosaic = scan_tiles(mixed)
    assert len(mosaic.tiles) == 8 and (mosaic.grid.width, mosaic.grid.height) == (SIZE_PX, SIZE_PX)
    with rasterio.open(tif[4]) as ds:
        assert mosaic.gaps() == [pytest.approx(list(ds.bounds))]
    vrt = write_vrt(tmp_path / "m.vrt", mosaic.grid, mosaic.tiles, mosaic.count)
    with rasterio.open(vrt) as ds, rasterio.open(area["aerial_tif"]) as whole:
        data, mask, truth = ds.read(), ds.read_masks(1), whole.read()
    centre = (slice(256, 512), slice(256, 512))
    assert (mask[centre] == 0).all() and (mask == 0).sum() == 256 * 256
    np.testing.assert_array_equal(data[:, mask > 0], truth[:, mask > 0])  # lossless JPEG2000 too

    shifted = tmp_path / "shifted.tif"
    with rasterio.open(tif[0]) as ds:
        profile, pixels = ds.profile, ds.read()
    profile["transform"] = profile["transform"] * rasterio.Affine.translation(0.5, 0)
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(pixels)
    with pytest.raises(MappingInputError, match=r"shifted.tif is not on the pixel grid"):
        scan_tiles([tif[1], shifted])
    coarse = cut_into_tiles(area["aerial_tif"], tmp_path / "coarse", TILE_M, "C", pixel_m=0.4)
    with pytest.raises(MappingInputError, match=r"0.4 x 0.4 m pixels.*one pixel size"):
        scan_tiles([tif[0], coarse[1]])


def test_a_fourth_band_flagged_alpha_is_data(tmp_path):
    """GDAL flags the 4th band of a 4-band GeoTIFF as alpha: NIR = 0 must not make pixels nodata."""
    from raster_helpers import write_raster
    from rasterio.windows import Window

    from flairlc.mapping.inputs import AerialSource

    data = np.full((4, 64, 64), 90, dtype=np.uint8)
    data[3, :32] = 0  # water: no near infrared
    path = write_raster(tmp_path / "rgbn.tif", data)
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha  # GDAL's guess
    with AerialSource(path, bands=("R", "G", "B", "NIR")) as source:
        assert source.valid(Window(0, 0, 64, 64)).all()
    data[:, 60:] = 0
    with AerialSource(write_raster(tmp_path / "nodata.tif", data, nodata=0), bands=("R", "G", "B", "NIR")) as source:
        valid = source.valid(Window(0, 0, 64, 64))
    assert valid[:60].all() and not valid[60:].any()


def _map_area_args(area, out: Path, *extra: str) -> list[str]:
    """``flairlc map-area`` arguments of the job :func:`_job` creates."""
    return ["map-area", "--checkpoint", str(area["checkpoint"]), "--aerial", str(area["ortho"]),
            "--elevation", str(area["elevation"]), "--out", str(out), "--tile-size", "256",
            "--window", "256", "--overlap", "64", "--batch-size", "4", *extra]


def _hashes(*folders_or_files: Path) -> dict[str, str]:
    from flairlc.training.finetune import file_sha256

    files = [p for f in folders_or_files for p in ([f] if f.is_file() else sorted(f.rglob("*")))]
    return {str(p): file_sha256(p) for p in files if p.is_file()}


def test_finish_only_names_the_pending_tiles_and_exits_1(area, local_job, tmp_path, capsys):
    """After a job array with shards missing, --finish-only writes the mosaic of the tiles done,
    says how many are pending (a few names, then a count) and fails; with all done it succeeds."""
    from flairlc.cli import main

    assert main(_map_area_args(area, local_job.root, "--finish-only")) == 0
    assert "pending" not in capsys.readouterr().err
    out = tmp_path / "job"
    shutil.copytree(local_job.root, out)
    names = [t.name for t in local_job.tasks]
    for name in names[8:]:
        (out / "tiles" / f"{name}.tif").unlink()
    inputs = _hashes(area["ortho"], area["elevation"], area["checkpoint"])
    assert main(_map_area_args(area, out, "--finish-only")) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "pending" in line]
    assert err == [f"flairlc map-area: 8/16 tiles pending ({', '.join(names[8:11])} and 5 more): the mosaic holds "
                   "the tiles done; map the rest (the same command without --finish-only), then finish again"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"]["done"] == 8 and summary["tiles"]["pending"] == 8
    with rasterio.open(out / "map.vrt") as ds:
        assert len(ds.files) == 1 + 8  # the VRT and its 8 tiles
    assert _hashes(area["ortho"], area["elevation"], area["checkpoint"]) == inputs


def test_finish_only_without_a_job_is_refused_and_creates_nothing(area, tmp_path, capsys):
    from flairlc.cli import main

    out = tmp_path / "never" / "job"
    assert main(_map_area_args(area, out, "--finish-only")) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"flairlc map-area: error: --finish-only: {out} holds no map job (no job.json): nothing to finish; "
        "map it first (the same command without --finish-only)"]
    assert not (tmp_path / "never").exists()


def test_a_refused_start_leaves_no_job_folder(area, tmp_path, capsys):
    """Missing or empty tile folders, an unreadable checkpoint, and inputs refused after the
    mosaics are written (no elevation for a model that reads it): no folder without job.json."""
    from flairlc.cli import main

    (tmp_path / "empty").mkdir()
    bad_checkpoint = tmp_path / "bad.ckpt"
    bad_checkpoint.write_text("not a checkpoint")
    inputs = _hashes(area["ortho"], area["elevation"], area["checkpoint"], bad_checkpoint)
    cases = {
        "missing tiles": ["--aerial", str(tmp_path / "nowhere")],
        "empty tile folder": ["--aerial", str(tmp_path / "empty")],
        "bad checkpoint": ["--checkpoint", str(bad_checkpoint)],
    }
    for what, override in cases.items():
        out = tmp_path / "jobs" / what.replace(" ", "_")
        assert main(_map_area_args(area, out, *override)) == 2, what
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("flairlc map-area: error: "), (what, err)
        assert not (tmp_path / "jobs").exists(), what
    # Refused after the input mosaics are written: they are taken back, the folders made removed.
    out = tmp_path / "jobs" / "no_elevation"
    with pytest.raises(MappingInputError, match="elevation"):
        MapJob.create(out, area["checkpoint"], area["ortho"], tile_px=256)
    assert not (tmp_path / "jobs").exists()
    # A folder that was there (empty) is left as it was.
    (tmp_path / "given").mkdir()
    with pytest.raises(MappingInputError, match="elevation"):
        MapJob.create(tmp_path / "given", area["checkpoint"], area["ortho"], tile_px=256)
    assert list((tmp_path / "given").iterdir()) == []
    assert _hashes(area["ortho"], area["elevation"], area["checkpoint"], bad_checkpoint) == inputs
