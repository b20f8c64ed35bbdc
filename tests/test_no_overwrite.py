"""No command destroys what it reads, and generators replace a dataset only when told to.

Every refused command must end with exit status 2 and one ``flairlc CMD: error: …`` line naming
the output option, the input option and the path, before any work, and leave every input file
byte for byte as it was (SHA-256 of each file before and after). The inputs are a small synthetic
territory (256 px, one year) cut into 2 x 2 orthophoto tiles, and an untrained ResNet18 U-Net.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import rasterio

from flairlc.cli import main
from flairlc.outputs import OutputError

#: The territory's side, pixels (51.2 m), cut into orthophoto tiles of TILE_M.
SIZE_PX, TILE_M = 256, 25.6
#: The refusal that ends each line, after the paths.
REFUSAL = "an output cannot replace what the command reads; give another path"
#: A tiny synthetic FLAIR root for the generator's cases.
SYNTH_ARGS = ["--areas-per-domain", "1", "--patches-per-area", "2", "--patch-size", "32", "--dates", "2",
              "--test-domains", "1"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch

    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.data.synthetic.tiles import cut_into_tiles
    from flairlc.data.synthetic.zones import generate_zones
    from flairlc.mapping.mosaic import scan_tiles, write_vrt
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    d = tmp_path_factory.mktemp("inputs")
    year = generate_orthophoto(d / "territory", width=SIZE_PX, height=SIZE_PX, seed=1, years=(2022,), dates=2)[0]
    tiles = cut_into_tiles(year.aerial, d / "ortho", TILE_M, "ORTHO")
    elevation_tiles = cut_into_tiles(year.elevation, d / "elevation", TILE_M, "ELEV")
    # A VRT of the tiles in another folder, its members relative to it (as gdalbuildvrt writes them).
    mosaic = scan_tiles(d / "ortho")
    vrt = write_vrt(d / "vrt" / "ortho.vrt", mosaic.grid, mosaic.tiles, mosaic.count, mosaic.dtype)
    text = vrt.read_text()
    for tile in tiles:
        text = text.replace(f'relativeToVRT="0">{tile.resolve()}<', f'relativeToVRT="1">../ortho/{tile.name}<')
    assert 'relativeToVRT="0"' not in text
    vrt.write_text(text)
    torch.manual_seed(0)
    task = SegmentationTask(model="unet", model_kwargs={"encoder_name": "resnet18", "encoder_weights": None})
    checkpoint = save_task(task, d / "model.ckpt")
    os.link(checkpoint, d / "model_hard_link.ckpt")
    (d / "model_link.ckpt").symlink_to(checkpoint)
    return {"root": d, "checkpoint": checkpoint, "aerial": year.aerial, "elevation": year.elevation,
            "sentinel": year.sentinel, "ortho": d / "ortho", "tile": tiles[1], "vrt": vrt,
            "elevation_tiles": d / "elevation", "elevation_tile": elevation_tiles[0],
            "zones": generate_zones(d / "zones.gpkg", year.aerial)}


def hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (links followed), by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: list[str], capsys: pytest.CaptureFixture, unchanged: Path) -> str:
    """Run ``flairlc ARGV``; assert status 2, one error line and no file of ``unchanged`` changed;
    return the message of the line."""
    before = hashes(unchanged)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"flairlc {argv[0]}: error: "), err[-2000:]
    assert hashes(unchanged) == before
    return lines[0].split(": error: ", 1)[1]


# --------------------------------------------------------------------------------------------
# map


@pytest.mark.parametrize("output,target,source,via", [
    ("--out", "checkpoint", "--checkpoint", None),
    ("--probabilities", "checkpoint", "--checkpoint", None),
    ("--vector", "checkpoint", "--checkpoint", None),
    ("--out", "checkpoint_symlink", "--checkpoint", None),
    ("--probabilities", "checkpoint_hard_link", "--checkpoint", None),
    ("--out", "elevation", "--elevation", None),
    ("--out", "sentinel_file", "--sentinel", "sentinel"),
    ("--vector", "vrt_member", "--aerial", "vrt"),
])
def test_map_refuses_to_write_over_its_inputs(inputs, tmp_path, capsys, output, target, source, via) -> None:
    paths = {"checkpoint": inputs["checkpoint"], "elevation": inputs["elevation"],
             "checkpoint_symlink": inputs["root"] / "model_link.ckpt",
             "checkpoint_hard_link": inputs["root"] / "model_hard_link.ckpt",
             "sentinel_file": sorted(inputs["sentinel"].glob("*.tif"))[0], "vrt_member": inputs["tile"]}
    out = paths[target]
    given = {"--checkpoint": inputs["checkpoint"], "--elevation": inputs["elevation"],
             "--sentinel": inputs["sentinel"], "--aerial": inputs["vrt"] if via == "vrt" else inputs["aerial"]}
    argv = ["map", "--checkpoint", str(given["--checkpoint"]), "--aerial", str(given["--aerial"]),
            "--elevation", str(given["--elevation"]), "--sentinel", str(given["--sentinel"]), "--window", "128", "--overlap", "32"]
    argv += ["--out", str(tmp_path / "map.tif")] if output != "--out" else []
    argv += [output, str(out)]
    message = refused(argv, capsys, inputs["root"])
    member = {"sentinel": f" ({out}, read through it)",
              "vrt": f" ({inputs['vrt'].parent / '..' / 'ortho' / out.name}, read through it)"}.get(via, "")
    assert message == f"{output} {out} would overwrite the input {source} {given[source]}{member}: {REFUSAL}"
    assert not list(tmp_path.iterdir())  # refused before any work: nothing written


# --------------------------------------------------------------------------------------------
# map-area


def _map_area(inputs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["map-area", "--checkpoint", str(inputs["checkpoint"]), "--aerial", str(inputs["ortho"]),
            "--elevation", str(inputs["elevation_tiles"]), "--zone", str(inputs["zones"]), "--out", str(out),
            "--tile-size", "128", "--window", "128", "--overlap", "32", "--threads", "1", *extra]


@pytest.mark.parametrize("target", ["checkpoint", "tile", "elevation_tile", "zones", "sentinel_file"])
def test_map_area_single_cog_cannot_be_an_input(inputs, tmp_path, capsys, target) -> None:
    out = sorted(inputs["sentinel"].glob("*.tif"))[0] if target == "sentinel_file" else inputs[target]
    extra = ["--sentinel", str(inputs["sentinel"])] if target == "sentinel_file" else []
    message = refused(_map_area(inputs, tmp_path / "job", "--single-cog", str(out), *extra), capsys, inputs["root"])
    option, given = {"checkpoint": ("--checkpoint", out), "tile": ("--aerial", inputs["ortho"]),
                     "elevation_tile": ("--elevation", inputs["elevation_tiles"]), "zones": ("--zone", out),
                     "sentinel_file": ("--sentinel", inputs["sentinel"])}[target]
    member = "" if given == out else f" ({out}, read through it)"
    assert message == f"--single-cog {out} would overwrite the input {option} {given}{member}: {REFUSAL}"
    assert not (tmp_path / "job").exists()


def test_map_area_job_folder_cannot_be_the_tile_folder(inputs, tmp_path, capsys) -> None:
    message = refused(_map_area(inputs, inputs["ortho"]), capsys, inputs["root"])
    assert message == f"--out {inputs['ortho']} would overwrite the input --aerial {inputs['ortho']}: {REFUSAL}"
    assert sorted(p.name for p in inputs["ortho"].iterdir()) == sorted(
        p.name for p in inputs["ortho"].glob("ORTHO_*.tif"))


def test_map_area_single_cog_in_an_unwritable_place_is_refused_before_the_tiles(inputs, tmp_path, capsys) -> None:
    (tmp_path / "a_file").write_text("")
    message = refused(_map_area(inputs, tmp_path / "job", "--single-cog", str(tmp_path / "a_file" / "map.tif")),
                      capsys, inputs["root"])
    assert message == f"cannot write the single COG {tmp_path / 'a_file' / 'map.tif'}: {tmp_path / 'a_file'} is a file, not a folder"
    assert not (tmp_path / "job").exists()


def test_map_area_writes_its_summary_when_the_single_cog_fails(inputs, tmp_path, capsys, monkeypatch,
                                                               one_torch_thread) -> None:
    job = tmp_path / "job"
    assert main(_map_area(inputs, job)) == 0  # the tiles are done
    (job / "summary.json").unlink()

    def full_disk(work_path, final_path, resampling="nearest"):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("flairlc.mapping.job.finalize_cog", full_disk)
    capsys.readouterr()
    cog = tmp_path / "cog" / "map.tif"
    assert main(_map_area(inputs, job, "--single-cog", str(cog))) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("flairlc map-area:")]
    assert err == [f"flairlc map-area: error: single COG {cog} not written (OSError: [Errno 28] No space left on "
                   "device); the tiles and the mosaic are done: rerun the same command to write it"]
    summary = json.loads((job / "summary.json").read_text())
    assert summary["tiles"]["done"] == summary["tiles"]["total"] and summary["mosaic"]
    assert summary["single_cog_error"] == "OSError: [Errno 28] No space left on device"
    monkeypatch.undo()
    assert main(_map_area(inputs, job, "--single-cog", str(cog))) == 0  # the same command again writes it
    with rasterio.open(cog) as ds:
        assert ds.shape == (SIZE_PX, SIZE_PX)


# --------------------------------------------------------------------------------------------
# import-weights, change, areas, evaluate, stats


def test_import_weights_keeps_the_published_file(tmp_path, capsys) -> None:
    from test_published import flair_inc_file

    published, _ = flair_inc_file(tmp_path, 3)
    message = refused(["import-weights", str(published), "--family", "flair-inc", "--out", str(published)],
                      capsys, tmp_path)
    assert message == f"--out {published} would overwrite the input FILE {published}: {REFUSAL}"


def test_change_report_cannot_replace_a_map(inputs, tmp_path, capsys) -> None:
    maps = tmp_path / "maps"
    maps.mkdir()
    for name in ("a.tif", "b.tif"):
        (maps / name).write_bytes(inputs["tile"].read_bytes())
    (maps / "b.json").symlink_to(maps / "b.tif")
    message = refused(["change", str(maps / "a.tif"), str(maps / "b.tif"), "--out", str(tmp_path / "b.tif"),
                       "--report-dir", str(maps)], capsys, maps)
    assert message == f"--report-dir {maps / 'b.json'} would overwrite the input MAP_B {maps / 'b.tif'}: {REFUSAL}"


def test_areas_report_cannot_replace_the_zones(inputs, tmp_path, capsys) -> None:
    zones = tmp_path / "areas.json"
    zones.write_bytes(inputs["zones"].read_bytes())
    message = refused(["areas", str(inputs["tile"]), "--zones", str(zones), "--out", str(tmp_path)], capsys, tmp_path)
    assert message == f"--out {zones} would overwrite the input --zones {zones}: {REFUSAL}"


def test_evaluate_and_stats_cannot_write_into_their_inputs(synthetic_copy, tmp_path, capsys) -> None:
    from flairlc.outputs import refuse_inputs_as_outputs

    preds = tmp_path / "preds"
    preds.mkdir()
    message = refused(["evaluate", "--root", str(synthetic_copy), "--predictions", str(preds), "--out", str(preds)],
                      capsys, synthetic_copy)
    assert message == f"--out {preds} would overwrite the input --predictions {preds}: {REFUSAL}"
    message = refused(["stats", str(synthetic_copy), "--out", str(synthetic_copy / "x" / "..")], capsys, synthetic_copy)
    assert message == f"--out {synthetic_copy / 'x' / '..'} would overwrite the input ROOT {synthetic_copy}: {REFUSAL}"
    # A folder made inside an input folder, new or already there, replaces nothing.
    refuse_inputs_as_outputs({"--out": [synthetic_copy / "stats", synthetic_copy / "stats" / "a.csv"]},
                             {"ROOT": synthetic_copy})
    (synthetic_copy / "stats").mkdir()
    refuse_inputs_as_outputs({"--out": synthetic_copy / "stats"}, {"ROOT": synthetic_copy})


# --------------------------------------------------------------------------------------------
# The rule itself


def test_refuse_inputs_as_outputs_sees_through_links_and_names_colliding_outputs(tmp_path) -> None:
    from flairlc.outputs import refuse_inputs_as_outputs

    source = tmp_path / "a.tif"
    source.write_bytes(b"data")
    refuse_inputs_as_outputs({"--out": tmp_path / "new.tif", "--probabilities": None}, {"--aerial": source})
    with pytest.raises(OutputError, match=r"^--out .*x/\.\./a\.tif would overwrite the input --aerial .*a\.tif: "):
        refuse_inputs_as_outputs({"--out": tmp_path / "x" / ".." / "a.tif"}, {"--aerial": [source]})
    with pytest.raises(OutputError, match=r"^--out and --probabilities would both write .*m\.tif: "):
        refuse_inputs_as_outputs({"--out": tmp_path / "m.tif", "--probabilities": tmp_path / "." / "m.tif"}, {})


# --------------------------------------------------------------------------------------------
# synth and synth-territory


def _domains(root: Path) -> set[str]:
    return {p.name for tree in root.glob("flair*_aerial_*") if tree.is_dir() for p in tree.iterdir()}


def test_synth_refuses_a_dataset_and_replaces_it_when_told(tmp_path, capsys) -> None:
    root = tmp_path / "synthetic"
    assert main(["synth", str(root), "--domains", "3", *SYNTH_ARGS]) == 0
    first = _domains(root)
    assert len(first) == 3
    message = refused(["synth", str(root), "--domains", "2", *SYNTH_ARGS], capsys, root)
    assert message == (f"the dataset root {root} is not empty: give a new folder, or --overwrite to replace it "
                       "(its files are removed)")
    assert main(["synth", str(root), "--domains", "2", "--seed", "1", *SYNTH_ARGS, "--overwrite"]) == 0
    second = _domains(root)
    assert len(second) == 2  # the new dataset's domains only, none left from the first
    capsys.readouterr()
    assert main(["check", str(root)]) == 0, capsys.readouterr().out[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]  # nothing left beside it


def test_an_interrupted_overwrite_leaves_the_old_dataset(tmp_path, capsys, monkeypatch) -> None:
    from flairlc.data.synthetic import dataset

    root = tmp_path / "synthetic"
    assert main(["synth", str(root), "--domains", "2", *SYNTH_ARGS]) == 0
    before = hashes(root)
    write_area = dataset._write_area
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return write_area(*args, **kwargs)

    monkeypatch.setattr(dataset, "_write_area", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(["synth", str(root), "--domains", "3", "--seed", "1", *SYNTH_ARGS, "--overwrite"])
    assert hashes(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_synth_territory_twice_is_refused_then_replaced(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["synth-territory", "territory", "--size", "64", "--dates", "1"]
    assert main([*args, "--years", "2019", "2022"]) == 0
    message = refused([*args, "--years", "2023"], capsys, tmp_path)
    assert message == ("the territory folder territory is not empty: give a new folder, or --overwrite to replace it "
                       "(its files are removed)")
    assert main([*args, "--years", "2023", "--overwrite"]) == 0
    assert "territory/2023/aerial.tif" in capsys.readouterr().out
    assert sorted(p.name for p in Path("territory").iterdir()) == ["2023", "zones.gpkg"]


def test_replaced_folder_refuses_to_replace_the_folder_it_runs_in(tmp_path, monkeypatch) -> None:
    from flairlc.outputs import replaced_folder

    (tmp_path / "data" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "data" / "sub")
    with pytest.raises(OutputError, match="runs inside it"), replaced_folder(tmp_path / "data", overwrite=True):
        pass
    assert (tmp_path / "data" / "sub").is_dir()
