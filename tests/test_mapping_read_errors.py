"""A truncated input names itself: the file (the member tile of a mosaic), the window and GDAL's
cause, in one line for ``flairlc map`` and per failed tile in ``map-area``'s ``summary.json``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from affine import Affine
from raster_helpers import ORIGIN_X, ORIGIN_Y, PIXEL_M, K, read_band, write_raster

from flairlc.cli import main
from flairlc.mapping import MapOptions, map_raster
from flairlc.mapping.errors import MappingReadError
from flairlc.mapping.job import MapJob, run_local
from flairlc.mapping.mosaic import scan_tiles, write_vrt

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: GDAL's cause of a read of a truncated GeoTIFF (libtiff's words, or GDAL's).
GDAL_CAUSE = re.compile(r"TIFF\w*:? ?Read error|IReadBlock failed|TIFFReadEncodedTile")


class FakePredictor:
    """A deterministic per-pixel model (its probabilities depend on the window's pixels only)."""

    num_classes = K
    uses_sentinel = False

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["aerial"].float() / 50.0
        return torch.softmax(torch.stack([x[:, k % 5] * (1 + k % 3) - k / 4 for k in range(K)], dim=1), dim=1)


def _truncate(path: Path) -> str:
    """Cut ``path`` to half its size (its header stays readable); returns its new SHA-256."""
    os.truncate(path, path.stat().st_size // 2)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _corrupt_first_block(path: Path) -> None:
    """Overwrite the compressed bytes of the first block of ``path`` (a GeoTIFF whose tags follow
    its pixels, so that cutting it would take them too)."""
    import rasterio

    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        size = int(ds.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * size)


def _aerial(path: Path, size: int = 512) -> Path:
    data = np.random.default_rng(0).integers(0, 256, (5, size, size), dtype=np.uint8)
    return write_raster(path, data, tiled=True, blockxsize=128, blockysize=128, compress="deflate")


def _checkpoint(path: Path) -> Path:
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    torch.manual_seed(0)
    return save_task(SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18", "encoder_weights": None}), path)


def test_map_of_a_truncated_raster_is_one_line_naming_file_window_and_cause(tmp_path: Path, capsys) -> None:
    aerial = _aerial(tmp_path / "a.tif")
    sha = _truncate(aerial)
    checkpoint = _checkpoint(tmp_path / "model.ckpt")
    status = main(["map", "--checkpoint", str(checkpoint), "--aerial", str(aerial), "--out", str(tmp_path / "m.tif"),
                   "--window", "256", "--overlap", "32"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("flairlc map:")]  # (not the progress bar)
    assert len(lines) == 1 and lines[0].startswith(f"flairlc map: error: cannot read {aerial} (window col ")
    assert GDAL_CAUSE.search(lines[0])
    assert hashlib.sha256(aerial.read_bytes()).hexdigest() == sha


def test_a_truncated_member_of_a_mosaic_is_named_not_the_vrt(tmp_path: Path) -> None:
    """Four 256 px tiles in a VRT; the read of a window over the truncated one names that tile."""
    data = np.random.default_rng(1).integers(0, 256, (5, 512, 512), dtype=np.uint8)
    tiles = []
    for row in range(2):
        for col in range(2):
            transform = Affine(PIXEL_M, 0, ORIGIN_X + col * 256 * PIXEL_M, 0, -PIXEL_M, ORIGIN_Y - row * 256 * PIXEL_M)
            tiles.append(write_raster(tmp_path / f"T_{row}{col}.tif", data[:, row * 256:(row + 1) * 256, col * 256:(col + 1) * 256],
                                      transform=transform, compress="deflate"))
    mosaic = scan_tiles(tiles)
    vrt = write_vrt(tmp_path / "mosaic.vrt", mosaic.grid, mosaic.tiles, mosaic.count)
    whole = map_raster(FakePredictor(), vrt, tmp_path / "whole.tif",
                       options=MapOptions(window=256, overlap=32), progress=False)
    _truncate(tiles[3])
    with pytest.raises(MappingReadError) as caught:
        map_raster(FakePredictor(), vrt, tmp_path / "m.tif",
                   options=MapOptions(window=256, overlap=32), progress=False)
    assert caught.value.path == tiles[3] and GDAL_CAUSE.search(caught.value.cause)
    assert str(caught.value).startswith(f"cannot read {tiles[3]} (window col 0, row 0, ")
    assert read_band(whole.map_path).shape == (512, 512)


@pytest.fixture(scope="module")
def area(tmp_path_factory) -> dict[str, Path]:
    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.data.synthetic.tiles import cut_into_tiles

    d = tmp_path_factory.mktemp("area")
    year = generate_orthophoto(d / "territory", width=512, height=512, seed=3, years=(2022,), dates=1)[0]
    return {"ortho": cut_into_tiles(year.aerial, d / "ortho", 51.2, "ORTHO"),
            "elevation": cut_into_tiles(year.elevation, d / "elevation", 40.0, "ELEV", pixel_m=0.4,
                                        origin_shift_m=(12.8, 6.4)),
            "checkpoint": _checkpoint(d / "model.ckpt")}


@pytest.mark.parametrize("kind", ["ortho", "elevation"])
def test_map_area_names_the_truncated_tile_of_each_failed_tile(area, tmp_path: Path, kind: str) -> None:
    inputs = {}
    for name in ("ortho", "elevation"):
        inputs[name] = tmp_path / name
        inputs[name].mkdir()
        for tile in area[name]:
            (inputs[name] / tile.name).write_bytes(tile.read_bytes())
    broken = inputs[kind] / area[kind][0].name  # the upper-left tile
    # Corrupt pixels, not the header: synth-territory's tiles carry their ACQUISITION_DATE tag after
    # the pixels, so a cut tile loses its header and is refused, named, when the job is created.
    _corrupt_first_block(broken)
    job = MapJob.create(tmp_path / "job", area["checkpoint"], inputs["ortho"], elevation=inputs["elevation"],
                        tile_px=256, options=MapOptions(window=256, overlap=64, batch_size=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # elevation at 0.4 m: resampled, with a warning per tile
        result = run_local(job, progress=False, retries=0)
    summary = job.finish("local", result.seconds, result.outcomes)
    assert summary["tiles"]["failed"] >= 1 and summary["failures"]
    for failure in summary["failures"]:
        assert failure["input"] == str(broken)
        assert failure["error"].startswith(f"MappingReadError: cannot read {broken} (window ")
    for outcome in result.failed:
        assert str(broken) in outcome.error
    assert json.loads((job.root / "summary.json").read_text())["failures"] == summary["failures"]


def test_reader_threads_give_the_same_map(tmp_path: Path) -> None:
    """One, three or no background reader threads: the same classes and probabilities."""
    aerial = write_raster(tmp_path / "a.tif", np.random.default_rng(2).integers(0, 256, (5, 700, 600), dtype=np.uint8),
                          nodata=0)
    maps = {}
    for name, extra in {"serial": dict(prefetch=0), "one": dict(read_threads=1), "three": dict(read_threads=3)}.items():
        result = map_raster(FakePredictor(), aerial, tmp_path / f"{name}.tif", probabilities_path=tmp_path / f"{name}.p.tif",
                            options=MapOptions(window=128, overlap=32, batch_size=3, band_width=256, **extra),
                            progress=False)
        maps[name] = (read_band(result.map_path), read_band(result.probabilities_path))
    for name in ("one", "three"):
        np.testing.assert_array_equal(maps[name][0], maps["serial"][0])
        np.testing.assert_array_equal(maps[name][1], maps["serial"][1])
