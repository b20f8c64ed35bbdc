"""The default mapping path (window fitted to the raster, channels-last network) against the
previous one (512 px windows, 128 px overlap, contiguous) and a single pass over the raster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from flairlc.data.synthetic import generate_orthophoto
from flairlc.mapping import MapOptions, map_raster
from flairlc.mapping.blending import fit_window, window_starts
from flairlc.training import SegmentationTask

#: Raster side, pixels: 2 windows of 736 per side by default, 4 of 512 before.
SIDE = 1344


def test_fit_window_covers_with_the_fewest_pixels() -> None:
    for length in (300, 1000, 1024, 1500, 2048, 2560, 4096, 10_000):
        window = fit_window(length, length, 1024, 128)
        starts = window_starts(length, window, window - 128)
        assert window % 32 == 0 and window <= max(1024, -(-length // 32) * 32)
        # Full coverage, at least 128 px of overlap, and no fewer windows possible at 1024.
        assert starts[0] == 0 and starts[-1] + window >= length
        assert all(b - a <= window - 128 for a, b in zip(starts, starts[1:]))
        assert len(starts) == len(window_starts(length, 1024, 1024 - 128)) or length <= 1024
    assert fit_window(2048, 2048, 1024, 128) == 768 and fit_window(1000, 400, 1024, 128) == 1024


@pytest.mark.slow
def test_default_map_agrees_with_the_previous_tiling_and_a_single_pass(tmp_path: Path) -> None:
    year = generate_orthophoto(tmp_path / "ortho", width=SIDE, height=SIDE, seed=3, years=(2021,), dates=1)[0]
    torch.manual_seed(0)
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18"}, aerial_scaling="standardize").eval()
    with rasterio.open(year.aerial) as a, rasterio.open(year.elevation) as e:
        aerial = np.concatenate([a.read(), e.read()])
    with torch.inference_mode():
        logits, _ = task.forward_batch({"aerial": torch.from_numpy(aerial[None])})
    single = logits[0].argmax(0).numpy()
    previous = map_raster(task, year.aerial, tmp_path / "previous.tif", elevation_path=year.elevation,
                          options=MapOptions(window=512, overlap=128, channels_last=False), progress=False)
    default = map_raster(task, year.aerial, tmp_path / "default.tif", elevation_path=year.elevation, progress=False)
    assert default.windows_predicted == 4 and previous.windows_predicted == 16  # 2 x 2 of 736, 4 x 4 of 512
    with rasterio.open(previous.map_path) as p, rasterio.open(default.map_path) as d:
        previous_map, default_map = p.read(1), d.read(1)
    assert len(np.unique(single)) >= 3  # a map with structure, not one class
    agree_previous = (previous_map == single).mean()
    agree_default = (default_map == single).mean()
    # Measured 0.933 (default) and 0.854 (previous). Larger windows see more context: the default
    # map is at least as close to the single pass as the previous one.
    assert agree_default >= agree_previous - 0.001, (agree_default, agree_previous)
    # An untrained network's maps depend far more on context than a trained one's (99.4 % agreement
    # for 512/128 windows, RESULTS.md), hence the low levels here; the order is what is tested.
    assert agree_default > 0.9


def test_prefetched_reads_give_the_same_items_and_errors() -> None:
    from flairlc.mapping.infer import prefetched

    assert list(prefetched(iter(range(50)), 2)) == list(range(50))

    def failing():
        yield 1
        raise OSError("read failed: tile 3")

    consumed = []
    with pytest.raises(OSError, match="tile 3"):
        for item in prefetched(failing(), 2):
            consumed.append(item)
    assert consumed == [1]
    # A consumer that stops early ends the reader thread.
    import threading

    for item in prefetched(iter(range(1000)), 2):
        if item == 3:
            break
    assert not any(t.name == "flairlc-map-reader" and t.is_alive() for t in threading.enumerate())


def test_prefetch_and_bf16_maps(tmp_path: Path) -> None:
    year = generate_orthophoto(tmp_path / "ortho", width=640, height=640, seed=4, years=(2021,), dates=1)[0]
    torch.manual_seed(0)
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18"}, aerial_scaling="standardize").eval()
    options = MapOptions(window=256, overlap=64, batch_size=2)
    maps = {}
    for name, extra in {"serial": dict(prefetch=0), "prefetch": dict(prefetch=3), "bf16": dict(precision="bf16")}.items():
        result = map_raster(task, year.aerial, tmp_path / f"{name}.tif", elevation_path=year.elevation,
                            options=replace(options, **extra), progress=False)
        with rasterio.open(result.map_path) as ds:
            maps[name] = ds.read(1)
    np.testing.assert_array_equal(maps["prefetch"], maps["serial"])
    # bfloat16 keeps 8 bits of mantissa: pixels near a tie change class (measured 96.4 % agreement
    # with this untrained network, whose maps are far more sensitive than a trained one's).
    assert (maps["bf16"] == maps["serial"]).mean() > 0.9
