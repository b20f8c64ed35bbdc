"""The shared output writer (flairlc.outputs): checked folders, atomic writes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flairlc import outputs
from flairlc.outputs import OutputError


def test_atomic_path_replaces_on_success_and_leaves_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "result.json"
    outputs.write_json(target, {"a": 1}, indent=1)
    assert json.loads(target.read_text()) == {"a": 1}
    with pytest.raises(RuntimeError), outputs.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]  # no temporary left
    assert outputs.temporary_path(target, keep_suffix=True).name.endswith(".tmp.json")


def test_check_writable_creates_folders_and_refuses_in_one_line(tmp_path: Path) -> None:
    assert outputs.check_writable(tmp_path / "new" / "map.tif") == tmp_path / "new" / "map.tif"
    assert (tmp_path / "new").is_dir() and not list((tmp_path / "new").iterdir())  # the probe is gone
    (tmp_path / "file").write_text("")
    for call, path in ((outputs.check_writable, tmp_path / "file" / "x.tif"),
                       (outputs.check_writable_dir, tmp_path / "file" / "sub"),
                       (outputs.check_writable_dir, tmp_path / "file"),
                       (outputs.check_writable, tmp_path / "new")):
        with pytest.raises(OutputError) as info:
            call(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(OutputError, match="file, not a folder"):
        outputs.write_bytes(tmp_path / "file" / "x.bin", b"")


def test_save_figure_writes_a_png(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    path = outputs.save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert outputs.same_file(tmp_path / "x" / ".." / "f.png", path)
