"""The ``flairlc`` command: a thin layer that parses arguments and calls the stages.

``fit``, ``validate``, ``test`` and ``predict`` are LightningCLI commands (``--config FILE`` plus
overrides); the others are plain subcommands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every non-Lightning subcommand."""
    parser = argparse.ArgumentParser(
        prog="flairlc",
        description=(
            "Land-cover segmentation with IGN's FLAIR data: synthetic data, checks, training "
            "(fit/validate/test/predict --config FILE), evaluation and mapping."
        ),
        epilog="Training commands: flairlc fit|validate|test|predict --help",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    synth = commands.add_parser("synth", help="generate a synthetic dataset in the exact FLAIR #2 (or FLAIR-HUB) format")
    synth.add_argument("out", type=Path, help="output root")
    synth.add_argument("--domains", type=int, default=6, help="number of domains (default 6)")
    synth.add_argument("--areas-per-domain", type=int, default=2)
    synth.add_argument("--patches-per-area", type=int, default=4)
    synth.add_argument("--patch-size", type=int, default=512, help="aerial patch side in pixels (default 512)")
    synth.add_argument("--dates", type=int, default=20, help="Sentinel-2 dates per year (default 20)")
    synth.add_argument("--test-domains", type=int, default=None, help="domains in the test trees (default ~20%%)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--layout", choices=("flair-2", "flair-hub"), default="flair-2",
                       help="FLAIR #2 trees (default) or FLAIR-HUB (an area is an ROI of patches-per-area cells)")
    synth.add_argument("--overwrite", action="store_true",
                       help="replace a non-empty output root (refused otherwise): the new dataset is written "
                            "beside it and swapped in at the end")
    synth.add_argument("--modalities", nargs="+", default=None, metavar="MODALITY",
                       help="flair-hub layout: the modalities to write, keys or folder suffixes (default AERIAL_RGBI "
                            "DEM_ELEV SENTINEL2_TS SENTINEL2_MSK-SC AERIAL_LABEL-COSIA ALL_LABEL-LPIS); 'all' adds "
                            "SPOT_RGBI, SENTINEL1-ASC_TS and SENTINEL1-DESC_TS to them")
    synth.add_argument("--test-rois", type=int, default=1,
                       help="flair-hub layout: ROIs (areas) put in split_1's test set, drawn at random (default 1)")
    synth.add_argument("--valid-rois", type=int, default=1,
                       help="flair-hub layout: ROIs (areas) put in split_1's valid set (default 1); the rest train (all of "
                            "them, by default, when there are fewer than 3)")

    territory = commands.add_parser(
        "synth-territory",
        help="generate the inputs of `flairlc map` to try it: orthophoto, elevation, Sentinel-2, zones",
    )
    territory.add_argument("out", type=Path, help="output folder (one sub-folder per year)")
    territory.add_argument("--size", type=int, default=2560, help="aerial side in 0.2 m pixels (default 2560: 512 m)")
    territory.add_argument("--years", type=int, nargs="+", default=[2019, 2022], help="survey years (default 2019 2022)")
    territory.add_argument("--dates", type=int, default=12, help="Sentinel-2 dates per year (default 12)")
    territory.add_argument("--change-fraction", type=float, default=0.1,
                           help="share of the area whose land cover changes between years (default 0.1)")
    territory.add_argument("--seed", type=int, default=0)
    territory.add_argument("--tiles", type=float, default=None, metavar="METRES",
                           help="also cut each year's orthophoto into tiles of this side (YEAR/ortho_tiles/) and its "
                                "elevation into tiles on another grid (YEAR/elevation_tiles/), as IGN delivers them")
    territory.add_argument("--tile-format", choices=("tif", "jp2"), default="tif", help="orthophoto tile format")
    territory.add_argument("--overwrite", action="store_true",
                           help="replace a non-empty output folder (refused otherwise): the new territory is "
                                "written beside it and swapped in at the end")

    check = commands.add_parser(
        "check", help="validate a FLAIR root and report every bad file (reads every pixel)"
    )
    check.add_argument("root", type=Path)
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--toy", action="store_true", help="check the toy trees")
    check.add_argument("--sat-patch-size", type=int, default=40)
    check.add_argument(
        "--quick", action="store_true",
        help="read only the headers of aerial images and Sentinel-2 arrays (masks still in full)",
    )
    check.add_argument(
        "--workers", type=int, default=None,
        help="reading processes (default min(4, CPU count))",
    )

    stats = commands.add_parser("stats", help="class distribution (paper's Table 2) as CSV, JSON and PNG")
    stats.add_argument("root", type=Path)
    stats.add_argument("--out", type=Path, default=Path("stats"), help="output folder (default ./stats)")
    stats.add_argument(
        "--nomenclature", choices=("baseline", "raw"), default=None,
        help="FLAIR #2 only (default baseline); a FLAIR-HUB root's labels are CoSIA's 19 classes",
    )
    stats.add_argument("--toy", action="store_true")
    stats.add_argument("--split-column", default="split_1", help="FLAIR-HUB: split column of the split file")

    models = commands.add_parser(
        "models", help="the default models and their sizes, or what a checkpoint is (--info CKPT)")
    models.add_argument("--info", type=Path, metavar="CKPT",
                        help="describe this checkpoint: architecture, bands, scaling, classes, provenance")
    models.add_argument("--json", action="store_true", help="with --info: print it as JSON")

    evaluate = commands.add_parser("evaluate", help="score a checkpoint on a split, or a folder of PRED_{id}.tif")
    evaluate.add_argument("--root", type=Path, required=True, help="FLAIR #2 or FLAIR-HUB root with the masks")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="trained checkpoint to run on the split")
    source.add_argument("--predictions", type=Path, help="folder of PRED_{id}.tif files")
    evaluate.add_argument(
        "--nomenclature", default=None,
        help="with --predictions: the classes of PRED files without nomenclature tags (baseline, raw, cosia, lpis or a "
             "JSON file); files written by flairlc predict carry their model's, which must then match",
    )
    evaluate.add_argument("--split", choices=("train", "test"), default="test")
    evaluate.add_argument(
        "--label", choices=("mask", "lpis"), default=None,
        help="FLAIR-HUB root: the label scored against, mask (AERIAL_LABEL-COSIA, land cover) or lpis (ALL_LABEL-LPIS, "
             "crop types); default: the one of the model's (or the predictions') classes, else mask",
    )
    evaluate.add_argument("--split-column", default=None,
                          help="FLAIR-HUB root: the split column of GLOBAL_ALL_MTD_SPLIT.gpkg (default split_1)")
    evaluate.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder")
    evaluate.add_argument("--batch-size", type=int, default=4)
    evaluate.add_argument("--num-workers", type=int, default=0)
    evaluate.add_argument("--accelerator", default="auto", help="auto (a GPU when there is one), cpu, gpu, cuda or mps")
    evaluate.add_argument("--devices", default="auto", help="one device: auto or 1, or a GPU index as 'N,' (default auto)")

    mapping = commands.add_parser("map", help="map a large orthophoto (GeoTIFF/VRT) with a trained model")
    mapping.add_argument("--checkpoint", type=Path, required=True)
    mapping.add_argument("--aerial", type=Path, required=True,
                         help="uint8 raster with the bands the model reads: by default 3 bands are R,G,B, "
                              "4 are R,G,B,NIR, 5 are R,G,B,NIR,elevation")
    mapping.add_argument("--elevation", type=Path, help="elevation raster (when the model reads elevation and the aerial has none)")
    mapping.add_argument("--dem", type=Path,
                         help="instead of --elevation: DSM/DTM raster in metres, 2 bands (FLAIR-HUB's DEM_ELEV: "
                              "bands described DSM, DTM, else band 1 DSM, band 2 DTM), or a VRT of both "
                              "(gdalbuildvrt -separate DEM.vrt DSM.tif DTM.tif); the elevation is computed from "
                              "DSM - DTM as FLAIR-HUB's data path does, read by coordinates")
    mapping.add_argument("--sentinel", type=Path, help="folder of per-date Sentinel-2 GeoTIFFs")
    mapping.add_argument("--out", type=Path, required=True, help="output map (Cloud-Optimized GeoTIFF)")
    mapping.add_argument("--probabilities", type=Path, help="also write class probabilities (uint8) here")
    mapping.add_argument("--vector", type=Path, help="also polygonize the map into this GeoPackage")
    mapping.add_argument("--min-area-m2", type=float, default=0.0, help="drop polygons smaller than this")
    _add_map_options(mapping)

    area = commands.add_parser(
        "map-area",
        help="map a département or a country: a folder of orthophoto tiles cut into resumable output tiles, "
             "run in this process, as one shard of a SLURM array / torchrun, or on Ray",
        description="Map an area given as orthophoto tiles (JPEG2000/GeoTIFF) or one raster/VRT. The area is "
                    "cut into output tiles, each mapped with the windows that reach into it and written as its own COG; "
                    "a rerun of the same command skips finished tiles. The mosaic is JOB/map.vrt.",
    )
    area.add_argument("--checkpoint", type=Path, required=True)
    area.add_argument("--aerial", type=Path, nargs="+", required=True,
                      help="orthophoto tiles: a folder of .jp2/.tif tiles, tile files, or one raster/VRT")
    area.add_argument("--elevation", type=Path, nargs="+",
                      help="elevation tiles (a folder or files; any tiling and resolution, read by coordinates)")
    area.add_argument("--dem", type=Path, nargs="+",
                      help="instead of --elevation: DSM/DTM tiles in metres, 2 bands each (FLAIR-HUB's DEM_ELEV; "
                           "a folder or files, or one raster/VRT; any tiling and resolution, read by coordinates)")
    area.add_argument("--sentinel", type=Path, help="folder of per-date Sentinel-2 GeoTIFFs")
    area.add_argument("--zone", type=Path, help="polygons to map (e.g. the département's outline): nodata outside")
    area.add_argument("--out", type=Path, required=True, help="job folder (tiles, map.vrt, summary.json)")
    area.add_argument("--tile-size", type=int, default=10000,
                      help="output tile side in pixels (default 10000: 2 km); windows across a tile's edge are "
                           "predicted twice, so smaller tiles cost more (1.19x the passes of one map at 10000, 1.4x at 5000)")
    area.add_argument("--probabilities", action="store_true", help="also write class probabilities per tile")
    area.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local: tiles one after another in this process (default); ray: one Ray task per tile")
    area.add_argument("--shard", help="local engine: map only shard INDEX/COUNT of the tiles (0-based), e.g. 3/16; "
                                      "default from SLURM_ARRAY_TASK_ID/COUNT or torchrun's RANK/WORLD_SIZE")
    area.add_argument("--retries", type=int, default=2, help="attempts after the first for a failing tile (default 2)")
    area.add_argument("--threads", type=int, default=None, help="torch threads of the local engine (default: torch's)")
    area.add_argument("--ray-address", default=None,
                      help="a running Ray cluster (auto, host:6379, ray://host:10001); default: start Ray here")
    area.add_argument("--workers", type=int, default=None, help="Ray on this machine: tiles mapped at once")
    area.add_argument("--cpus-per-tile", type=float, default=1.0, help="Ray: CPUs per tile task (default 1)")
    area.add_argument("--gpus-per-tile", type=float, default=0.0, help="Ray: GPUs per tile task (e.g. 1 or 0.5)")
    area.add_argument("--single-cog", type=Path, help="once every tile is done, also copy the mosaic to this COG")
    area.add_argument("--finish-only", action="store_true",
                      help="map nothing: write the mosaic and summary of the tiles done (after a job array)")
    _add_map_options(area)

    areas = commands.add_parser("areas", help="area per class (m², ha, %%), overall and per zone")
    areas.add_argument("map", type=Path)
    areas.add_argument("--zones", type=Path, help="polygons (GeoPackage, shapefile…) to break areas down by")
    areas.add_argument("--zone-field", help="attribute naming each zone")
    areas.add_argument("--out", type=Path, default=Path("areas"), help="output folder")

    change = commands.add_parser("change", help="transitions between two maps of the same area")
    change.add_argument("map_a", type=Path, help="earlier map")
    change.add_argument("map_b", type=Path, help="later map")
    change.add_argument("--out", type=Path, required=True, help="change raster to write")
    change.add_argument("--report-dir", type=Path, help="folder of the CSV/JSON/PNG (default: beside --out)")

    imports = commands.add_parser(
        "import-weights", help="convert a published IGN FLAIR model into a flairlc checkpoint",
        description="Convert a model file published by IGN (FLAIR-1/FLAIR-INC U-Nets, FLAIR-HUB aerial "
                    "U-Nets) into a flairlc checkpoint that map, evaluate, predict and fit use like any other.",
    )
    imports.add_argument("file", type=Path, help="the published .pth, .ckpt or .safetensors file")
    imports.add_argument("--family", required=True, choices=("flair-inc", "flair-hub-aerial"))
    imports.add_argument("--out", type=Path, required=True, help="flairlc checkpoint to write (.ckpt)")
    imports.add_argument("--bands", help="the model's input bands in order (default: the family's, e.g. NIR,R,G for FLAIR-HUB IR files)")
    imports.add_argument("--classes", default="15",
                         help="classes the model predicts: 15 (default, the trained ones), 12 (FLAIR-INC 12-class), "
                              "all, or comma-separated class names")
    imports.add_argument("--encoder", help="FLAIR-HUB timm encoder, e.g. convnextv2_base (default: from the file name)")
    imports.add_argument("--arch", choices=("unet", "upernet"), help="FLAIR-HUB decoder (default: from the file name)")

    demo = commands.add_parser("demo", help="the whole FLAIR story on synthetic data, with an HTML report")
    demo.add_argument("--out", type=Path, default=Path("demo_output"))
    demo.add_argument("--quick", action="store_true", help="a smaller, faster run (for tests)")
    demo.add_argument("--seed", type=int, default=0)
    return parser


def _add_map_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``map`` and ``map-area`` that decide how windows go through the model: the
    fields of :class:`~flairlc.map_options.MapOptions` that have a help text, with its defaults and
    choices; then the survey date and the device, which are not options of the map."""
    import dataclasses
    import typing

    from flairlc.map_options import MapOptions

    types = typing.get_type_hints(MapOptions)
    for f in dataclasses.fields(MapOptions):
        if f.metadata["help"] is None:
            continue  # (Python only: prefetch, channels_last, band_width; probabilities: per command)
        default = "" if f.default is None else f" (default {f.default})"
        parser.add_argument(_map_flag(f.name), type=int if types[f.name] in (int, int | None) else str,
                            default=f.default, choices=f.metadata["choices"], help=f.metadata["help"] + default)
    parser.add_argument(
        "--aerial-date",
        help="the orthophoto's survey date or year (YYYY-MM-DD or YYYY) when its files do not say it "
             "(ACQUISITION_DATE tag, IGN BD ORTHO names): every Sentinel-2 date must fall in that year, "
             "else refused or a warning by --coverage-policy",
    )
    parser.add_argument("--device", default="cpu", help="torch device of the model: cpu, cuda, cuda:N, mps (default cpu)")


def _map_flag(name: str) -> str:
    """The command-line spelling of a map option: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _map_options(args: argparse.Namespace):
    """The :class:`~flairlc.map_options.MapOptions` of a parsed ``map`` or ``map-area`` command
    (a bad value: a ValueError naming the option as typed, ``--batch-size 0: …``)."""
    import dataclasses

    from flairlc.map_options import MapOptionError, MapOptions

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(MapOptions) if f.metadata["help"] is not None}
    try:  # (--probabilities: map's file or map-area's flag)
        return MapOptions(**given, probabilities=bool(args.probabilities))
    except MapOptionError as error:
        raise ValueError(error.message(_map_flag)) from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flairlc`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        return _lightning(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from flairlc.outputs import OutputError

    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning(args.command)
        try:
            return COMMANDS[args.command](args)
        except (ValueError, FileNotFoundError, OutputError) as error:
            return _error(args.command, str(error))


def _one_line_warning(command: str):
    """``warnings.showwarning`` for the commands: user warnings as one ``flairlc CMD: warning: …`` line."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, UserWarning):
            print(f"flairlc {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    return show


def _error(command: str, message: str) -> int:
    """Print ``flairlc CMD: error: MESSAGE`` on one line; the exit status of a refused command."""
    print(f"flairlc {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def _lightning(argv: list[str]) -> int:
    """Run a LightningCLI command; a data, checkpoint or output error ends it with one line, status 2."""
    from flairlc.data.errors import FlairDataError
    from flairlc.outputs import OutputError
    from flairlc.training.checkpoint import CheckpointError
    from flairlc.training.cli import run_lightning_cli

    try:
        run_lightning_cli(argv)
    except FlairDataError as error:
        return _data_error(argv[0], str(error))
    except (CheckpointError, OutputError) as error:
        return _error(argv[0], str(error))
    except RuntimeError as error:
        # A DataLoader worker re-raises the dataset's error as a RuntimeError holding its traceback.
        message = _worker_data_error(error)
        if message is None:
            raise
        return _data_error(argv[0], message)
    return 0


def _data_error(command: str, message: str) -> int:
    if "flairlc check" not in message:  # met while reading a sample: other files may be bad too
        message += "; run `flairlc check` on the dataset root to find every bad file"
    return _error(command, message)


def _worker_data_error(error: BaseException) -> str | None:
    """The message of a FlairDataError raised in a DataLoader worker, or None."""
    text = str(error)
    if not text.startswith("Caught FlairDataError"):
        return None
    marker = "FlairDataError: "
    return text.rsplit(marker, 1)[1].strip() if marker in text else None


def _synth(args: argparse.Namespace) -> int:
    from flairlc.data.synthetic import generate_dataset
    from flairlc.outputs import replaced_folder

    if args.layout == "flair-hub":
        import dataclasses

        from flairlc.data.synthetic.hub import (
            HUB_GENERATED_MODALITIES,
            generate_hub_dataset,
            hub_synth_modalities,
        )

        side = max(1, round(args.patches_per_area**0.5))
        modalities = HUB_GENERATED_MODALITIES if args.modalities == ["all"] else args.modalities
        hub_synth_modalities(modalities)  # an unknown modality fails before the output root is touched
        rois = args.domains * args.areas_per_domain
        asked = (args.test_rois, args.valid_rois) != (1, 1)  # by default a root too small to split is all train
        if min(args.test_rois, args.valid_rois) < 0 or (asked and args.test_rois + args.valid_rois >= rois):
            return _error("synth", f"--test-rois {args.test_rois} and --valid-rois {args.valid_rois} must be >= 0 "
                                   f"and leave at least one of the {rois} ROIs (domains x areas per domain) to train")
        with replaced_folder(args.out, args.overwrite, "dataset root") as work:
            hub = generate_hub_dataset(work, args.domains, args.areas_per_domain, side, args.patch_size,
                                       args.dates, args.seed, modalities=modalities, test_rois=args.test_rois,
                                       valid_rois=args.valid_rois)
        print(dataclasses.replace(hub, out=args.out).describe() + f"\nnext: flairlc check {args.out}")
        return 0
    if args.modalities is not None:
        raise ValueError("--modalities applies to --layout flair-hub (FLAIR #2's trees hold aerial, Sentinel-2 and labels)")
    with replaced_folder(args.out, args.overwrite, "dataset root") as work:
        s = generate_dataset(
            work, domains=args.domains, areas_per_domain=args.areas_per_domain,
            patches_per_area=args.patches_per_area, patch_size=args.patch_size, dates=args.dates,
            test_domains=args.test_domains, seed=args.seed, progress=True,
        )
    print(f"synthetic FLAIR #2 dataset written to {args.out} in {s.seconds:.1f} s: {s.n_patches} patches of "
          f"{s.patch_size} x {s.patch_size} px in {s.n_areas} areas, {s.n_dates} Sentinel-2 dates per area")
    print(f"  train: {s.n_train_patches} patches, {len(s.train_domains)} domains ({', '.join(s.train_domains)})")
    test = ", ".join(s.test_domains) or "none"
    print(f"  test:  {s.n_test_patches} patches, {len(s.test_domains)} domains ({test})")
    print(f"next: flairlc check {args.out}")
    return 0


def _synth_territory(args: argparse.Namespace) -> int:
    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.data.synthetic.zones import generate_zones
    from flairlc.outputs import replaced_folder

    if args.size < 64 or args.dates < 1:
        raise ValueError(f"--size must be at least 64 pixels and --dates at least 1 (got {args.size}, {args.dates})")
    tiles = {}
    with replaced_folder(args.out, args.overwrite, "territory folder") as work:
        years = generate_orthophoto(work, width=args.size, height=args.size, seed=args.seed,
                                    years=tuple(args.years), dates=args.dates, change_fraction=args.change_fraction)
        zones = generate_zones(work / "zones.gpkg", years[0].aerial)
        if args.tiles:
            from flairlc.data.synthetic.tiles import cut_into_tiles

            for y in years:
                ortho = cut_into_tiles(y.aerial, y.aerial.parent / "ortho_tiles", args.tiles, f"ORTHO_{y.year}",
                                       fmt=args.tile_format)
                # Elevation on its own grid: origin half a tile away (rounded to whole pixels).
                shift = round(args.tiles / 2 / 0.2) * 0.2
                elevation = cut_into_tiles(y.elevation, y.elevation.parent / "elevation_tiles", args.tiles,
                                           f"ELEVATION_{y.year}", origin_shift_m=(shift, shift))
                tiles[y.year] = (len(ortho), len(elevation))

    def final(path: Path) -> Path:  # a path written under `work`, which is now args.out
        return args.out / Path(path).relative_to(work)

    side_m = args.size * 0.2
    print(f"synthetic territory written to {args.out}: {side_m:g} x {side_m:g} m at 0.2 m (EPSG:2154), "
          f"{len(years)} survey years")
    for y in years:
        print(f"  {y.year}: {final(y.aerial)} (R, G, B, NIR), {final(y.elevation)}, {final(y.sentinel)}/ "
              f"({len(y.products)} dates with cloud masks), truth {final(y.truth)}")
    print(f"  zones: {final(zones)} (field 'name', 4 zones)")
    last = years[-1]
    aerial, elevation, sentinel = final(last.aerial), final(last.elevation), final(last.sentinel)
    print(f"next: flairlc map --checkpoint CKPT --aerial {aerial} --elevation {elevation} "
          f"--sentinel {sentinel} --out map_{last.year}.tif")
    if args.tiles:
        for y in years:
            print(f"  {y.year} tiles: {tiles[y.year][0]} orthophoto tiles in {final(y.aerial).parent / 'ortho_tiles'}, "
                  f"{tiles[y.year][1]} elevation tiles in {final(y.elevation).parent / 'elevation_tiles'}")
        print(f"next: flairlc map-area --checkpoint CKPT --aerial {aerial.parent / 'ortho_tiles'} "
              f"--elevation {elevation.parent / 'elevation_tiles'} --sentinel {sentinel} --zone {final(zones)} "
              f"--out job_{last.year}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from flairlc.data.check import check_dataset

    if not args.root.is_dir():
        problem = "does not exist" if not args.root.exists() else "is not a folder"
        raise FileNotFoundError(f"dataset root {args.root} {problem}")
    from flairlc.data.hub.check import check_hub, is_hub_root

    if is_hub_root(args.root):  # FLAIR-HUB layout: every file read, counts per split_1
        report = check_hub(args.root)
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
        return 0 if report.ok else 1
    report = check_dataset(
        args.root, toy=True if args.toy else None, sat_patch_size=args.sat_patch_size,
        progress=not args.json, quick=args.quick, workers=args.workers,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.to_text())
    return 0 if report.ok else 1


def _stats(args: argparse.Namespace) -> int:
    from flairlc.data.hub.check import is_hub_root
    from flairlc.data.stats import class_distribution
    from flairlc.outputs import check_writable_dir, refuse_inputs_as_outputs

    refuse_inputs_as_outputs({"--out": args.out}, {"ROOT": args.root})
    check_writable_dir(args.out, "statistics folder")
    if is_hub_root(args.root):
        if args.nomenclature is not None:
            raise ValueError(f"--nomenclature {args.nomenclature}: a FLAIR-HUB root's labels are CoSIA's 19 classes, counted as such")
        from flairlc.data.hub.stats import hub_class_distribution

        distribution = hub_class_distribution(args.root, args.split_column, progress=True)
    else:
        distribution = class_distribution(
            args.root, toy=True if args.toy else None, nomenclature=args.nomenclature or "baseline", progress=True
        )
    for name, path in distribution.write_all(args.out).items():
        print(f"{name}: {path}")
    return 0


def _models(args: argparse.Namespace) -> int:
    if args.info is not None:
        from flairlc.training.info import checkpoint_info, format_info

        info = checkpoint_info(args.info)
        print(json.dumps(info, indent=2) if args.json else format_info(info))
        return 0
    from flairlc.models.summary import describe_models, format_table

    print(format_table(describe_models()))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from flairlc.evaluation.runner import evaluate_checkpoint, evaluate_predictions
    from flairlc.outputs import check_writable_dir, refuse_inputs_as_outputs

    refuse_inputs_as_outputs({"--out": args.out}, {"--root": args.root, "--checkpoint": args.checkpoint,
                                                   "--predictions": args.predictions})
    if args.nomenclature is not None:
        if args.checkpoint:
            raise ValueError("--nomenclature goes with --predictions: a checkpoint carries its own classes")
        from flairlc.nomenclature import get as get_nomenclature

        get_nomenclature(args.nomenclature)  # an unknown name or a bad file: one line before any work
    for what, path, is_folder in (("dataset root", args.root, True), ("prediction folder", args.predictions, True),
                                  ("checkpoint", args.checkpoint, False)):
        if path is not None and not (path.is_dir() if is_folder else path.is_file()):
            # Before the output folder is made: a refused command leaves nothing behind.
            raise FileNotFoundError(f"{what} {path} does not exist" if not path.exists()
                                    else f"{what} {path} is not a {'folder' if is_folder else 'file'}")
    check_writable_dir(args.out, "evaluation folder")
    if args.checkpoint:
        result = evaluate_checkpoint(
            args.checkpoint, args.root, split=args.split, batch_size=args.batch_size,
            num_workers=args.num_workers, accelerator=args.accelerator, devices=args.devices,
            label=args.label, split_column=args.split_column,
        )
    else:
        result = evaluate_predictions(args.predictions, args.root, split=args.split, nomenclature=args.nomenclature,
                                      label=args.label, split_column=args.split_column)
    paths = result.write(args.out)
    print(result.summary_table())
    print(f"written: {', '.join(str(p) for p in paths.values())}")
    return 0


def _check_device(device: str, runtime: str = "torch") -> None:
    """Refuse, in one line and before any work, a device this machine lacks or a runtime that
    cannot run on it."""
    import torch

    try:
        kind = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device}: not a device (cpu, cuda, cuda:N, mps)") from None
    if kind.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: PyTorch sees no CUDA GPU on this machine (use --device cpu)")
        if kind.index is not None and kind.index >= count:
            raise ValueError(f"--device {device}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if kind.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: Apple's MPS is not available on this machine (use --device cpu)")
    if runtime == "onnx" and kind.type != "cpu":
        raise ValueError(f"--runtime onnx runs on the CPU: drop --device {device}")


def _map(args: argparse.Namespace) -> int:
    from flairlc.inference import load_trained_model
    from flairlc.mapping import map_raster, polygonize_map
    from flairlc.mapping.predictor import check_mapped_inputs
    from flairlc.outputs import check_writable, refuse_inputs_as_outputs

    options = _map_options(args)
    refuse_inputs_as_outputs({"--out": args.out, "--probabilities": args.probabilities, "--vector": args.vector},
                             {"--checkpoint": args.checkpoint, "--aerial": args.aerial, "--elevation": args.elevation,
                              "--dem": args.dem, "--sentinel": args.sentinel})

    # Under torchrun (or srun with the same variables) each process maps its share of the strips.
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = args.device
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        device = f"cuda:{os.environ['LOCAL_RANK']}"
    _check_device(device, options.runtime)
    predictor = load_trained_model(args.checkpoint, map_location=device)
    check_mapped_inputs(predictor, str(args.checkpoint))  # before a runtime exports the network
    if options.runtime != "torch":
        from flairlc.mapping.runtime import with_runtime

        predictor = with_runtime(predictor, options.runtime)
    predictor_id = f"{args.checkpoint.resolve()}:{args.checkpoint.stat().st_mtime_ns}"
    if args.vector and rank == 0:
        check_writable(args.vector, "GeoPackage output")  # before hours of inference, not after
    result = map_raster(
        predictor, args.aerial, args.out, args.elevation, args.sentinel, options=options, dem_path=args.dem,
        probabilities_path=args.probabilities, aerial_date=args.aerial_date, device=device,
        predictor_id=predictor_id, rank=rank, world_size=world_size,
    )
    if rank != 0:
        return 0
    print(f"map: {result.map_path} ({result.area_km2:.3f} km² in {result.seconds:.1f} s, {result.km2_per_hour:.2f} km²/h)")
    if result.probabilities_path:
        print(f"probabilities: {result.probabilities_path}")
    if args.vector:
        polygonize_map(result.map_path, args.vector, min_area_m2=args.min_area_m2)
        print(f"vector: {args.vector}")
    return 0


def _map_area(args: argparse.Namespace) -> int:
    from flairlc.mapping.job import MapJob, parse_shard, run_local
    from flairlc.outputs import check_writable, refuse_inputs_as_outputs

    options = _map_options(args)
    job_files = ("job.json", "inputs", "tiles", "failures", "map.vrt", "map.qml", "probabilities.vrt", "summary.json")
    refuse_inputs_as_outputs({"--out": [args.out, *(args.out / name for name in job_files)], "--single-cog": args.single_cog},
                             {"--checkpoint": args.checkpoint, "--aerial": args.aerial, "--elevation": args.elevation,
                              "--dem": args.dem, "--sentinel": args.sentinel, "--zone": args.zone})
    if args.single_cog:
        check_writable(args.single_cog, "single COG")  # before the tiles, not after them
    if args.engine == "local":
        _check_device(args.device, options.runtime)
    elif options.runtime == "onnx" and args.gpus_per_tile:
        raise ValueError("--runtime onnx runs on the CPU: drop --gpus-per-tile")

    aerial = args.aerial[0] if len(args.aerial) == 1 else args.aerial
    elevation = None if not args.elevation else args.elevation[0] if len(args.elevation) == 1 else args.elevation
    dem = None if not args.dem else args.dem[0] if len(args.dem) == 1 else args.dem
    if args.finish_only and not (args.out / "job.json").is_file():
        raise ValueError(f"--finish-only: {args.out} holds no map job (no job.json): nothing to finish; "
                         "map it first (the same command without --finish-only)")
    job = MapJob.create(args.out, args.checkpoint, aerial, elevation=elevation, sentinel=args.sentinel,
                        zone=args.zone, tile_px=args.tile_size, aerial_date=args.aerial_date, options=options,
                        dem=dem)
    shard = parse_shard(args.shard) if args.engine == "local" else None
    if args.shard and args.engine != "local":
        raise ValueError("--shard splits the tiles without an engine: use it with --engine local")
    pending = len(job.pending())
    print(f"job {args.out}: {len(job.tasks)} tiles of {args.tile_size} px ({job.grid.width} x {job.grid.height} px, "
          f"{sum(job.tile_km2(t) for t in job.tasks):.2f} km²), {len(job.tasks) - pending} already done"
          + (f"; shard {shard[0]}/{shard[1]}" if shard else ""))
    result = None
    if not args.finish_only:
        try:
            if args.engine == "ray":
                from flairlc.mapping.distributed import run_ray

                result = run_ray(job, address=args.ray_address, workers=args.workers,
                                 cpus_per_tile=args.cpus_per_tile, gpus_per_tile=args.gpus_per_tile,
                                 retries=args.retries)
            else:
                result = run_local(job, device=args.device, shard=shard, retries=args.retries, threads=args.threads)
        except KeyboardInterrupt:
            done = len(job.tasks) - len(job.pending())
            print(f"\nflairlc map-area: interrupted with {done}/{len(job.tasks)} tiles done: rerun the same "
                  "command to go on (finished tiles are kept, the interrupted one resumes)", file=sys.stderr)
            return 130
    summary = job.finish(args.engine, result.seconds if result else None, result.outcomes if result else (),
                         single_cog=args.single_cog)
    tiles, run = summary["tiles"], summary["this_run"]
    rate = f", {run['km2_per_hour']:.2f} km²/h" if run["km2_per_hour"] else ""
    print(f"tiles: {tiles['done']}/{tiles['total']} done, {tiles['failed']} failed, {tiles['pending']} pending; "
          f"this run: {run['tiles_computed']} tiles, {run['km2']:.3f} km²{rate}")
    for what, cells in summary["missing_input_tiles"].items():
        if cells:
            print(f"{what} tiles missing inside the area (mapped as nodata): {len(cells)}, at "
                  + "; ".join("({:.1f}, {:.1f}, {:.1f}, {:.1f})".format(*c) for c in cells[:5])
                  + (" …" if len(cells) > 5 else ""))
    if summary["tiles_without_aerial_data"]:
        print(f"tiles without aerial data (nodata): {', '.join(summary['tiles_without_aerial_data'])}")
    for failure in summary["failures"]:
        print(f"failed: tile {failure['tile']}: {failure['error']}", file=sys.stderr)
    print(f"mosaic: {summary['mosaic']}; summary: {job.summary_path}")
    if "single_cog_error" in summary:
        print(f"flairlc map-area: error: single COG {args.single_cog} not written ({summary['single_cog_error']}); "
              "the tiles and the mosaic are done: rerun the same command to write it", file=sys.stderr)
        return 1
    if args.single_cog:
        print(f"single COG: {summary['single_cog']}" if "single_cog" in summary else
              f"single COG {args.single_cog} not written: {tiles['total'] - tiles['done']} tile(s) not done yet")
    if summary["failures"]:
        print(f"flairlc map-area: {tiles['failed']} tile(s) failed (details in {job.root / 'failures'}): "
              "rerun the same command to retry them", file=sys.stderr)
    if args.finish_only and tiles["pending"]:
        # After a job array, a shard that did not run leaves tiles nobody mapped: say which.
        failed = {f["tile"] for f in summary["failures"]}
        pending = [t.name for t in job.pending() if t.name not in failed]
        print(f"flairlc map-area: {len(pending)}/{tiles['total']} tiles pending ({_some(pending)}): the mosaic "
              "holds the tiles done; map the rest (the same command without --finish-only), then finish again",
              file=sys.stderr)
    return 1 if summary["failures"] or (args.finish_only and tiles["pending"]) else 0


def _some(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, then how many more: ``a, b, c and 5 more``."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def _areas(args: argparse.Namespace) -> int:
    from flairlc.mapping import compute_areas
    from flairlc.outputs import refuse_inputs_as_outputs

    refuse_inputs_as_outputs({"--out": [args.out, *(args.out / f"areas.{ext}" for ext in ("csv", "json", "png"))]},
                             {"MAP": args.map, "--zones": args.zones})
    table = compute_areas(args.map, zones_path=args.zones, zone_field=args.zone_field, out_dir=args.out)
    print(table.to_csv())
    return 0


def _change(args: argparse.Namespace) -> int:
    from flairlc.mapping import compute_change
    from flairlc.outputs import refuse_inputs_as_outputs

    report_dir = args.report_dir or args.out.parent
    refuse_inputs_as_outputs({"--out": args.out, "--report-dir": [report_dir, *(report_dir / f"{args.out.stem}.{ext}"
                                                                               for ext in ("csv", "json", "png"))]},
                             {"MAP_A": args.map_a, "MAP_B": args.map_b})
    result = compute_change(args.map_a, args.map_b, args.out, out_dir=report_dir)
    print(json.dumps(result.summary(), indent=2))
    return 0


def _import_weights(args: argparse.Namespace) -> int:
    from flairlc.outputs import refuse_inputs_as_outputs
    from flairlc.training.published import import_published_model

    refuse_inputs_as_outputs({"--out": args.out}, {"FILE": args.file})
    result = import_published_model(args.file, args.family, args.out, bands=args.bands, classes=args.classes,
                                    encoder=args.encoder, arch=args.arch)
    dropped = ", ".join(f"{k} ({n})" for k, n in result.dropped.items()) or "nothing"
    print(f"checkpoint: {result.checkpoint_path} (dropped entries not used by the aerial prediction: {dropped})")
    print(f"next: flairlc models --info {result.checkpoint_path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from flairlc.demo import run_demo
    from flairlc.outputs import check_writable_dir

    check_writable_dir(args.out, "demo folder")
    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0


COMMANDS = {
    "synth": _synth, "synth-territory": _synth_territory, "check": _check, "stats": _stats, "models": _models, "evaluate": _evaluate,
    "map": _map, "map-area": _map_area, "areas": _areas, "change": _change, "demo": _demo,
    "import-weights": _import_weights,
}

if __name__ == "__main__":
    raise SystemExit(main())
