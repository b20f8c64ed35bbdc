"""The mapping options as one value: the command line's defaults are the value's, a bad value is
one line naming the option as typed, and ``job.json``'s ``"map"`` round-trips."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import flairlc
from flairlc.cli import _map_options, build_parser, main
from flairlc.map_options import MapOptions

MAP_ARGS = ["map", "--checkpoint", "m.ckpt", "--aerial", "a.tif", "--out", "map.tif"]
MAP_AREA_ARGS = ["map-area", "--checkpoint", "m.ckpt", "--aerial", "tiles", "--out", "job"]


@pytest.mark.parametrize("argv", [MAP_ARGS, MAP_AREA_ARGS], ids=["map", "map-area"])
def test_the_command_line_defaults_are_the_values(argv: list[str]) -> None:
    assert _map_options(build_parser().parse_args(argv)) == MapOptions()


def test_every_option_of_the_command_line_reaches_the_value() -> None:
    args = build_parser().parse_args(MAP_AREA_ARGS + [
        "--window", "256", "--max-window", "512", "--overlap", "32", "--batch-size", "8", "--precision", "bf16",
        "--runtime", "compile", "--read-threads", "3", "--aerial-bands", "nir,r,g", "--resolution-policy", "error",
        "--coverage-policy", "warn", "--probabilities"])
    assert _map_options(args) == MapOptions(
        window=256, max_window=512, overlap=32, batch_size=8, precision="bf16", runtime="compile", read_threads=3,
        aerial_bands="NIR,R,G", resolution_policy="error", coverage_policy="warn", probabilities=True)
    assert _map_options(build_parser().parse_args(MAP_ARGS + ["--probabilities", "p.tif"])).probabilities


@pytest.mark.parametrize(("option", "message"), [
    (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
    (["--window", "256", "--overlap", "256"], "--overlap 256: must be less than --window (256)"),
    (["--overlap", "2048"], "--overlap 2048: must be less than --max-window (1024)"),
    (["--read-threads", "0"], "--read-threads 0: must be at least 1"),
    (["--aerial-bands", "NIR,R,X"], "--aerial-bands 'NIR,R,X': unknown aerial band 'X': expected some of R, G, B, "
                                    "NIR, elevation"),
])
def test_a_bad_value_is_one_line_naming_the_option(option: list[str], message: str, tmp_path, capsys) -> None:
    argv = ["map", "--checkpoint", str(tmp_path / "m.ckpt"), "--aerial", str(tmp_path / "a.tif"),
            "--out", str(tmp_path / "map.tif"), *option]
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [f"flairlc map: error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_python_values_are_checked_in_python_spelling() -> None:
    with pytest.raises(ValueError, match=r"^batch_size 0: must be at least 1$"):
        MapOptions(batch_size=0)
    with pytest.raises(ValueError, match=r"^overlap 64: must be less than window \(64\)$"):
        MapOptions(window=64, overlap=64)
    with pytest.raises(ValueError, match=r"^precision '16': expected one of 32, bf16$"):
        MapOptions(precision="16")
    with pytest.raises(ValueError, match=r"^coverage_policy 'ignore': expected one of error, warn$"):
        MapOptions(coverage_policy="ignore")
    with pytest.raises(ValueError, match=r"^batch_size '4': must be a whole number$"):
        MapOptions(batch_size="4")
    with pytest.raises(ValueError, match=r"^probabilities 1: must be true or false$"):
        MapOptions(probabilities=1)
    # A window given may exceed max_window (which only bounds the default window).
    assert MapOptions(window=2048, overlap=1500).window == 2048
    assert MapOptions(aerial_bands=["nir", "Red", "g"]).aerial_bands == "NIR,R,G"


def test_the_spec_holds_what_decides_the_map_and_round_trips() -> None:
    options = MapOptions(window=256, overlap=64, precision="bf16", aerial_bands="R,G,B,NIR", probabilities=True,
                         read_threads=2, prefetch=0, channels_last=False, band_width=512)
    spec = options.spec()
    assert set(spec) == {"window", "max_window", "overlap", "batch_size", "precision", "runtime", "aerial_bands",
                         "resolution_policy", "coverage_policy", "probabilities"}
    assert MapOptions.from_spec(spec) == dataclasses.replace(options, read_threads=None, prefetch=2,
                                                             channels_last=True, band_width=4096)
    with pytest.raises(ValueError, match="unknown map option.*tile_size"):
        MapOptions.from_spec({**spec, "tile_size": 3})


def test_the_parser_imports_no_torch(tmp_path: Path) -> None:
    """Every command's parser stays light (``flairlc synth --help`` does not wait for PyTorch):
    the options module imports the standard library only."""
    code = "import sys\nfrom flairlc.cli import build_parser\nbuild_parser()\nprint('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(flairlc.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
