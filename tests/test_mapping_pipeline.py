"""The mapper's threads: ordered parallel reads (with lanes) and the strip writer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from raster_helpers import write_raster
from rasterio.windows import Window

from flairlc.mapping.inputs import AerialSource
from flairlc.mapping.pipeline import StripWriter, ordered_map


def test_ordered_map_keeps_the_order_and_the_lanes() -> None:
    seen: dict[int, set[str]] = {}

    def square(item: tuple[int, int]) -> int:
        lane, x = item
        seen.setdefault(lane, set()).add(threading.current_thread().name)
        return x * x

    items = [(x % 3, x) for x in range(60)]
    assert list(ordered_map(square, items, threads=3, ahead=4, lane=lambda item: item[0])) == [x * x for x in range(60)]
    assert all(len(names) == 1 for names in seen.values())  # one lane, one thread (its file handles)
    assert len(set().union(*seen.values())) == 3
    assert list(ordered_map(square, items, threads=0, ahead=4)) == [x * x for x in range(60)]


def test_ordered_map_raises_at_the_failing_items_turn_and_stops_its_threads() -> None:
    def fail_at_7(x: int) -> int:
        if x == 7:
            raise OSError("cannot read item 7")
        return x

    got = []
    with pytest.raises(OSError, match="item 7"):
        for x in ordered_map(fail_at_7, range(100), threads=2, ahead=6):
            got.append(x)
    assert got == list(range(7))
    assert not [t for t in threading.enumerate() if t.name.startswith("flairlc-map-reader")]


def test_strip_writer_flushes_what_it_wrote_also_after_an_error() -> None:
    written, flushed, opened = [], [], []

    def open_files() -> list:
        opened.append(1)
        return []

    def write(files: list, strip: int) -> None:
        if strip == 3:
            raise OSError("disk full")
        written.append(strip)

    writer = StripWriter(open_files, write, flushed.extend, flush_every_s=3600)
    with pytest.raises(OSError, match="disk full"):
        for i in range(10):
            writer.put(f"0:{i}", i)
        writer.close()
    assert written == [0, 1, 2] and flushed == ["0:0", "0:1", "0:2"] and opened == [1]  # opened once


def _open_descriptors(path: Path) -> int:
    """File descriptors of this process open on ``path`` (Linux)."""
    fds = Path("/proc/self/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == str(path.resolve())
        except OSError:
            pass
    return count


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_reader_threads_close_their_files_as_they_end(tmp_path: Path) -> None:
    """Every column band starts new reader threads: each closes the handles it opened as it ends."""
    aerial = write_raster(tmp_path / "a.tif", np.random.default_rng(0).integers(0, 256, (4, 64, 64), dtype=np.uint8))
    with AerialSource(aerial, bands=("R", "G", "B", "NIR")) as source:
        for _ in range(3):  # three bands' worth of readers
            windows = [Window(8 * i, 0, 8, 8) for i in range(6)]
            valid = list(ordered_map(lambda w: source.read(w)[1].all(), windows, threads=3, ahead=3,
                                     thread_end=source.release_thread_handles))
            assert valid == [True] * 6
        assert _open_descriptors(aerial) == 1  # the source's own handle
    assert _open_descriptors(aerial) == 0
