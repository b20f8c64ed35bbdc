"""The mapper's threads: ordered parallel reads (with lanes) and the strip writer."""

from __future__ import annotations

import threading

import pytest

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
