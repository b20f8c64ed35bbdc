"""A Sentinel-2 series must come from the orthophoto's survey year: read, checked, by the policy.

The territory is a small synthetic one flown in 2019 and 2022 (one Sentinel-2 series per year);
its orthophotos carry their acquisition date, as ``flairlc synth-territory`` writes them.
"""

from __future__ import annotations

import datetime
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from flairlc.cli import main
from flairlc.data.sentinel import SeriesPreprocessing, product_date
from flairlc.mapping import MapOptions, map_raster
from flairlc.mapping.acquisition import AerialAcquisition, read_acquisition
from flairlc.mapping.coverage import CoverageError, SeriesDatesWarning
from flairlc.mapping.errors import MappingInputError
from flairlc.mapping.job import MapJob
from flairlc.mapping.mosaic import scan_tiles, write_vrt
from flairlc.training.finetune import file_sha256

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def territory(tmp_path_factory) -> dict:
    from flairlc.data.synthetic import generate_orthophoto
    from flairlc.data.synthetic.tiles import cut_into_tiles
    from flairlc.training.checkpoint import save_task
    from flairlc.training.task import SegmentationTask

    d = tmp_path_factory.mktemp("territory")
    years = {y.year: y for y in generate_orthophoto(d, width=128, height=128, seed=5, years=(2019, 2022), dates=2)}
    tiles = cut_into_tiles(years[2022].aerial, d / "ortho", 12.8, "ORTHO_2022")
    torch.manual_seed(0)
    utt = save_task(SegmentationTask(model="utt"), d / "utt.ckpt")
    return {"years": years, "tiles": tiles, "utt": utt, "root": d}


def _span(year) -> str:
    dates = [product_date(p) for p in year.products]
    return f"{dates[0]} to {dates[-1]}"


def _hashes(root: Path) -> dict[str, str]:
    return {str(p): file_sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


class SeriesPredictor:
    """A constant model reading the aerial image and a Sentinel-2 series (checks run before it)."""

    num_classes = 13
    uses_sentinel = True
    sat_patch_size = 8
    reference_date = datetime.date(2021, 5, 15)
    series_preprocessing = SeriesPreprocessing()

    def predict_proba(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        b, _, h, w = batch["aerial"].shape
        return torch.full((b, self.num_classes, h, w), 1.0 / self.num_classes)


def test_the_survey_year_is_read_from_the_tag_ign_names_or_given(territory, tmp_path):
    y2022 = territory["years"][2022]
    assert y2022.acquired.year == 2022 and datetime.date(2022, 4, 1) <= y2022.acquired <= datetime.date(2022, 9, 30)
    with rasterio.open(y2022.aerial) as ds:
        assert ds.tags()["ACQUISITION_DATE"] == y2022.acquired.isoformat()
    assert read_acquisition(y2022.aerial) == AerialAcquisition((2022,), "ACQUISITION_DATE of aerial.tif")
    assert read_acquisition(territory["tiles"]).years == (2022,)  # the tiles keep the tag
    ign = [Path("75-2021-0645-6865-LA93-0M20-E080.jp2"), Path("2A-2020-1175-6145-LA93-0M20-E080.jp2")]
    assert read_acquisition(ign).years == (2020, 2021)  # the names only: the files are not opened
    assert read_acquisition(y2022.aerial, "2019-06-01") == AerialAcquisition((2019,), "--aerial-date")
    with pytest.raises(MappingInputError, match=r"^--aerial-date: 'June 2019' is not a date \(YYYY-MM-DD\) or a year"):
        read_acquisition(y2022.aerial, "June 2019")
    # TIFFTAG_DATETIME is when the file was made, not flown: not read.
    untagged = tmp_path / "untagged.tif"
    with rasterio.open(y2022.aerial) as src:
        profile, data = src.profile, src.read()
    with rasterio.open(untagged, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(TIFFTAG_DATETIME="2023:01:10 12:00:00")
    assert read_acquisition(untagged) is None
    # A VRT of BD ORTHO tiles that carry no tag: the names of its files.
    ign_tiles = []
    for i, tile in enumerate(territory["tiles"][:2]):
        ign_tiles.append(shutil.copy(tile, tmp_path / f"75-2021-{i:04d}-6865-LA93-0M20-E080.tif"))
        with rasterio.open(ign_tiles[-1], "r+") as ds:
            ds.update_tags(ACQUISITION_DATE="")
    mosaic = scan_tiles(ign_tiles)
    vrt = write_vrt(tmp_path / "ign.vrt", mosaic.grid, mosaic.tiles, mosaic.count)
    assert read_acquisition(vrt) == AerialAcquisition((2021,), "IGN names of the files of ign.vrt")


def _map(territory, tmp_path, series_year: int, aerial: Path | None = None, coverage_policy: str = "error",
         aerial_date: str | None = None):
    years = territory["years"]
    return map_raster(SeriesPredictor(), aerial or years[2022].aerial, tmp_path / "m.tif",
                      elevation_path=years[2022].elevation, sentinel_dir=years[series_year].sentinel,
                      options=MapOptions(window=128, overlap=0, coverage_policy=coverage_policy),
                      aerial_date=aerial_date, progress=False)


def test_a_series_of_another_year_is_refused_or_warned_by_the_policy(territory, tmp_path):
    years = territory["years"]
    where = (f"Sentinel-2 series {years[2019].sentinel}: 2 of 2 dates ({_span(years[2019])}) are not in 2022, the "
             f"survey year of the aerial image {years[2022].aerial} (ACQUISITION_DATE of aerial.tif)")
    with pytest.raises(CoverageError) as refused:
        _map(territory, tmp_path, 2019)
    assert str(refused.value) == (f"{where}; give the series of that year, or pass --coverage-policy warn to map "
                                  "with these dates")
    assert not (tmp_path / "m.tif").exists()
    with pytest.warns(SeriesDatesWarning) as warned:
        _map(territory, tmp_path, 2019, coverage_policy="warn")
    assert [str(w.message) for w in warned if w.category is SeriesDatesWarning] == [f"{where}: mapped with them"]
    assert (tmp_path / "m.tif").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeriesDatesWarning)
        _map(territory, tmp_path, 2022)  # the series of the survey year: not a word


def test_an_unknown_survey_year_is_one_warning_and_aerial_date_decides(territory, tmp_path):
    years = territory["years"]
    untagged = tmp_path / "untagged.tif"
    shutil.copy(years[2022].aerial, untagged)
    with rasterio.open(untagged, "r+") as ds:
        ds.update_tags(ACQUISITION_DATE="")
    assert read_acquisition(untagged) is None
    with pytest.warns(SeriesDatesWarning) as warned:
        _map(territory, tmp_path, 2019, aerial=untagged)
    assert [str(w.message) for w in warned if w.category is SeriesDatesWarning] == [
        f"the survey year of the aerial image {untagged} is unknown (no ACQUISITION_DATE tag, no IGN BD ORTHO "
        f"name): the Sentinel-2 dates of {years[2019].sentinel} ({_span(years[2019])}) are not checked against it; "
        "pass --aerial-date YYYY to check them"]
    with pytest.raises(CoverageError, match=r"are not in 2022, the survey year .* \(--aerial-date\)"):
        _map(territory, tmp_path, 2019, aerial=untagged, aerial_date="2022")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeriesDatesWarning)
        _map(territory, tmp_path, 2019, aerial=untagged, aerial_date="2019-07-01")


def test_map_command_refuses_a_series_of_another_year_in_one_line(territory, tmp_path, capsys):
    years = territory["years"]
    before = _hashes(territory["root"])
    out = tmp_path / "map.tif"
    assert main(["map", "--checkpoint", str(territory["utt"]), "--aerial", str(years[2022].aerial),
                 "--elevation", str(years[2022].elevation), "--sentinel", str(years[2019].sentinel),
                 "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"flairlc map: error: Sentinel-2 series {years[2019].sentinel}: 2 of 2 dates ({_span(years[2019])}) are not "
        f"in 2022, the survey year of the aerial image {years[2022].aerial} (ACQUISITION_DATE of aerial.tif); give the "
        "series of that year, or pass --coverage-policy warn to map with these dates"]
    assert not out.exists() and _hashes(territory["root"]) == before


def test_map_area_checks_the_series_year_once_before_the_job_folder(territory, tmp_path, capsys):
    years, tiles = territory["years"], territory["tiles"]
    before = _hashes(territory["root"])
    args = ["map-area", "--checkpoint", str(territory["utt"]), "--aerial", str(tiles[0].parent),
            "--elevation", str(years[2022].elevation), "--sentinel", str(years[2019].sentinel), "--tile-size", "64"]
    assert main([*args, "--out", str(tmp_path / "job")]) == 2
    first = scan_tiles(tiles[0].parent).tiles[0].path.name  # the tile whose tag is read
    assert capsys.readouterr().err.splitlines() == [
        f"flairlc map-area: error: Sentinel-2 series {years[2019].sentinel}: 2 of 2 dates ({_span(years[2019])}) are "
        f"not in 2022, the survey year of the aerial image {tiles[0].parent} (ACQUISITION_DATE of {first}); "
        "give the series of that year, or pass --coverage-policy warn to map with these dates"]
    assert not (tmp_path / "job").exists() and _hashes(territory["root"]) == before
    # Under "warn": one warning when the job is made; the job's mosaic carries the year for its tiles.
    with pytest.warns(SeriesDatesWarning) as warned:
        job = MapJob.create(tmp_path / "job", territory["utt"], tiles[0].parent, elevation=years[2022].elevation,
                            sentinel=years[2019].sentinel, tile_px=64, options=MapOptions(coverage_policy="warn"))
    assert sum(w.category is SeriesDatesWarning for w in warned) == 1
    with rasterio.open(job.aerial_vrt) as ds:
        assert ds.tags()["ACQUISITION_DATE"] == "2022"
    assert read_acquisition(job.aerial_vrt).years == (2022,)
    np.testing.assert_array_equal(sorted(t.name for t in job.tasks), sorted(t.name for t in MapJob.open(job.root).tasks))
