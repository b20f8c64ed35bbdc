"""Tests of the demo figures and the self-contained HTML report (``flairlc.demo``)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from flairlc.demo.figures import (
    block_majority,
    footprint_pixels,
    least_cloudy_date,
    nice_scale_length,
    plot_area_table,
    plot_sample_patches,
    plot_seasonal_profiles,
    render_map_png,
    seasonal_profiles,
)
from flairlc.demo.report import (
    ModelResult,
    ReportContext,
    format_miou,
    markdown_to_html,
    terminal_table,
    write_report,
)
from flairlc.nomenclature import class_names

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = Path(path).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


# -- a tiny FLAIR-like root ---------------------------------------------------------------------

MASK_SIZE = 105  # footprint round(105 × 0.02) = 2 S2 pixels of 52 aerial pixels; 1 row/col cropped
DATES = [dt.date(2021, 3, 2), dt.date(2021, 5, 20), dt.date(2021, 7, 14), dt.date(2021, 9, 1)]
CENTROID = (3, 4)  # footprint window rows 2..3, cols 3..4


def _write_tif(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    count, height, width = array.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype="uint8",
        crs="EPSG:2154",
        transform=from_origin(700000, 6600000, 0.2, 0.2),
    ) as ds:
        ds.write(array)


def _make_root(root: Path, raw_mask: np.ndarray, data: np.ndarray, masks: np.ndarray) -> Path:
    area = Path("D001_2021") / "Z1_AA"
    _write_tif(
        root / "flair_aerial_train" / area / "img" / "IMG_000001.tif",
        np.zeros((5, MASK_SIZE, MASK_SIZE), dtype=np.uint8),
    )
    _write_tif(root / "flair_labels_train" / area / "msk" / "MSK_000001.tif", raw_mask[None])
    sen = root / "flair_sen_train" / area / "sen"
    sen.mkdir(parents=True)
    np.save(sen / "SEN2_sp_D001_2021-Z1_AA_data.npy", data)
    np.save(sen / "SEN2_sp_D001_2021-Z1_AA_masks.npy", masks)
    names = [f"SENTINEL2A_{d:%Y%m%d}-105852-000_L2A_T31TFJ_C_V2-2" for d in DATES]
    (sen / "SEN2_sp_D001_2021-Z1_AA_products.txt").write_text("\n".join(names) + "\n")
    (root / "flair-2_centroids_sp_to_patch.json").write_text(
        json.dumps({"IMG_000001.tif": list(CENTROID)})
    )
    return root


@pytest.fixture
def profile_case(tmp_path: Path) -> tuple[Path, dict]:
    """A patch whose footprint is 2×2 S2 pixels: the left column deciduous, the right herbaceous.

    Known NDVI per date and pixel; date 2 is cloudy everywhere, and at date 3 one deciduous pixel
    has snow probability exactly 60 (left out) and the other 59 (kept).
    """
    raw = np.full((MASK_SIZE, MASK_SIZE), 10, dtype=np.uint8)  # herbaceous vegetation
    raw[:, :52] = 7  # deciduous: the left S2 column (cols 0..51 after a 0-pixel crop offset)
    raw[:, 52] = 7  # one extra column: not enough to change the right column's majority
    raw[104, :] = 1  # the cropped last row must not count
    t, h, w = len(DATES), 8, 9
    data = np.full((t, 10, h, w), 1000, dtype=np.uint16)
    masks = np.zeros((t, 2, h, w), dtype=np.uint8)
    r0, c0 = 2, 3  # top-left of the footprint window
    # red (B4, index 2) and NIR (B8, index 6) per date, pixel (row, col) inside the footprint.
    red = np.array(
        [
            [[100, 300], [200, 300]],
            [[500, 500], [500, 500]],
            [[100, 400], [300, 400]],
            [[200, 600], [100, 200]],
        ],
        dtype=np.uint16,
    )
    nir = np.array(
        [
            [[900, 500], [600, 700]],
            [[500, 500], [500, 500]],
            [[900, 600], [700, 600]],
            [[800, 600], [900, 600]],
        ],
        dtype=np.uint16,
    )
    data[:, 2, r0 : r0 + 2, c0 : c0 + 2] = red
    data[:, 6, r0 : r0 + 2, c0 : c0 + 2] = nir
    masks[1, 1] = 95  # cloudy date (channel 1: cloud)
    masks[2, 0, r0, c0] = 60  # snow (channel 0) at threshold: excluded
    masks[2, 0, r0 + 1, c0] = 59  # below threshold: kept
    ndvi = (nir.astype(float) - red) / (nir.astype(float) + red)  # (T, 2, 2)
    keep = np.ones_like(ndvi, dtype=bool)
    keep[1] = False
    keep[2, 0, 0] = False
    expected = {}
    for name, col in (("deciduous", 0), ("herbaceous vegetation", 1)):
        doys, means, stds = [], [], []
        for i, d in enumerate(DATES):
            values = ndvi[i, :, col][keep[i, :, col]]
            if values.size:
                doys.append(d.timetuple().tm_yday)
                means.append(values.mean())
                stds.append(values.std())
        expected[name] = {"doy": doys, "mean": means, "std": stds}
    return _make_root(tmp_path / "flair", raw, data, masks), expected


def test_footprint_pixels() -> None:
    assert footprint_pixels(512) == 10
    assert footprint_pixels(105) == 2
    assert footprint_pixels(10) == 1


def test_block_majority_crops_centred_and_takes_the_majority() -> None:
    mask = np.zeros((7, 7), dtype=np.uint8)
    mask[0, :] = 5  # kept: the crop 7 → 6 starts at offset (7 - 6) // 2 = 0 ...
    mask[6, :] = 4  # ... so the last row is the one left out
    mask[1:4, 3:6] = 2  # top-right block entirely class 2
    mask[4:6, 0:2] = 1  # 4 of the 9 pixels of the bottom-left block: class 0 keeps the majority
    out = block_majority(mask, 2, 13)
    # top-left block: rows 0..2 cols 0..2 → three 5s, six 0s → 0
    np.testing.assert_array_equal(out, [[0, 2], [0, 0]])
    assert block_majority(np.full((4, 4), 255, np.uint8), 2, 13).tolist() == [[-1, -1], [-1, -1]]


def test_seasonal_profiles_match_a_hand_computation(profile_case: tuple[Path, dict]) -> None:
    root, expected = profile_case
    profiles = seasonal_profiles(root, min_pixels=1)
    assert set(profiles) == set(expected)
    for name, exp in expected.items():
        got = profiles[name]
        assert got["doy"] == exp["doy"]
        np.testing.assert_allclose(got["mean"], exp["mean"], rtol=1e-9)
        np.testing.assert_allclose(got["std"], exp["std"], atol=1e-9)
    # the cloudy date (20 May) is absent; the snowy pixel leaves one deciduous value on 14 July.
    assert DATES[1].timetuple().tm_yday not in profiles["deciduous"]["doy"]
    assert profiles["deciduous"]["count"] == [2, 1, 2]
    assert profiles["deciduous"]["std"][1] == 0.0
    # min_pixels drops classes with too few pixel-dates (5 deciduous, 6 herbaceous here).
    assert list(seasonal_profiles(root, min_pixels=6)) == ["herbaceous vegetation"]
    assert seasonal_profiles(root, min_pixels=7) == {}


def test_plot_seasonal_profiles_writes_png_and_numbers(profile_case, tmp_path: Path) -> None:
    root, expected = profile_case
    out = tmp_path / "figs" / "seasonal.png"
    path, numbers = plot_seasonal_profiles(root, out, min_pixels=1)
    assert path == out
    width, height = _png_size(out)
    assert 400 < width < 2500 and 200 < height < 1500
    np.testing.assert_allclose(numbers["deciduous"]["mean"], expected["deciduous"]["mean"])
    assert _no_temp_files(out.parent)
    with pytest.raises(ValueError, match="no test patch"):
        plot_seasonal_profiles(root, tmp_path / "x.png", split="test")


# -- sample patches, maps, areas ----------------------------------------------------------------


def _samples(n: int = 2, size: int = 32, rng=None) -> list[dict]:
    rng = rng or np.random.default_rng(0)
    return [
        {
            "aerial": rng.integers(0, 256, (5, size, size), dtype=np.uint8),
            "mask": rng.integers(0, 13, (size, size)),
            "sentinel": rng.uniform(0, 4000, (5, 10, 8, 8)).astype(np.float32),
            "id": f"00000{i}",
            "domain": "D001_2021",
        }
        for i in range(n)
    ]


def test_plot_sample_patches(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    samples = _samples(rng=rng)
    predictions = {
        "U-Net": [rng.integers(0, 13, (32, 32)) for _ in samples],
        "U-T&T": [rng.integers(0, 13, (32, 32)) for _ in samples],
    }
    out = plot_sample_patches(samples, predictions, tmp_path / "samples.png")
    width, height = _png_size(out)
    assert width > height > 200 and width < 3000  # 7 columns, 2 rows, legend below
    with pytest.raises(ValueError, match="U-Net"):
        plot_sample_patches(samples, {"U-Net": predictions["U-Net"][:1]}, tmp_path / "bad.png")


def test_least_cloudy_date() -> None:
    series = np.full((4, 10, 3, 3), 800, dtype=np.float32)
    series[0] = 0  # padding
    series[1, 0] = 5000  # bright blue: cloud
    series[3, 0] = 300  # clearest
    assert least_cloudy_date(series) == 3
    masks = np.zeros((4, 2, 3, 3), dtype=np.uint8)
    masks[3, 0] = 90
    assert least_cloudy_date(series, masks) == 1  # masks win over the blue heuristic


def test_render_map_and_area_chart(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    classes = rng.integers(0, 13, (300, 200), dtype=np.uint8)
    classes[:50] = 255
    map_path = tmp_path / "map.tif"
    with rasterio.open(
        map_path,
        "w",
        driver="GTiff",
        width=200,
        height=300,
        count=1,
        dtype="uint8",
        nodata=255,
        crs="EPSG:2154",
        transform=from_origin(700000, 6600000, 0.2, 0.2),
    ) as ds:
        ds.write(classes[None])
    out = render_map_png(map_path, tmp_path / "map.png", max_size=64)
    width, height = _png_size(out)
    assert 200 < width < 2500 and 200 < height < 2500
    areas = {name: float(i) * 1.5 for i, name in enumerate(class_names())}
    out = plot_area_table(areas, tmp_path / "areas.png")
    assert min(_png_size(out)) > 150
    assert _no_temp_files(tmp_path)


def test_nice_scale_length() -> None:
    assert nice_scale_length(9.9) == 5.0
    assert nice_scale_length(250.0) == 200.0
    assert nice_scale_length(1000.0) == 1000.0
    assert nice_scale_length(0.013) == pytest.approx(0.01)


# -- the HTML report ----------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.img_src: list[str] = []
        self.miou: dict[str, str] = {}
        self._model: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.img_src.append(a.get("src") or "")
        if a.get("class") == "miou":
            self._model = a.get("data-model")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._model = None

    def handle_data(self, data: str) -> None:
        if self._model is not None:
            self.miou[self._model] = self.miou.get(self._model, "") + data


@pytest.fixture
def report_context(tmp_path: Path) -> ReportContext:
    figs = tmp_path / "figs"
    area_png = plot_area_table({"building": 3.0, "water": 1.0}, figs / "areas.png")
    names = class_names()
    iou_a = {n: 0.5 + 0.01 * i for i, n in enumerate(names)}
    iou_b = dict(iou_a, building=0.9, water=None)
    iou_a["water"] = float("nan")
    return ReportContext(
        title="Demo <b>report</b>",
        synthetic=True,
        budget_note="CPU, 2 cores, 1 epoch",
        results=[
            ModelResult(
                "U-Net", "aerial", 0.612345, iou_a, confusion_png=area_png, iou_png=area_png
            ),
            ModelResult(
                "U-T&T <script>",
                "aerial + Sentinel-2",
                0.7,
                iou_b,
                confusion_png=figs / "missing.png",
            ),
        ],
        figures={"Area chart": area_png, "Not a PNG": tmp_path / "report_inputs.txt"},
        tables={
            "Areas": [
                {"class": "building", "ha": 1234.5678, "pixels": 123456},
                {"class": "water", "ha": None, "pixels": 7},
            ]
        },
        paper_results=[("U-T&T", "aerial + Sentinel-2", 0.6375), ("U-Net", "aerial", 62.70)],
        how_to_real="# Real data\nRun `flairlc fit --config x.yaml` on <GPU>.\n\n- step one\n"
        "```\ntorchrun --nproc_per_node 4 <cmd>\n```\nSee https://ignf.github.io/FLAIR/",
        timings={"train": 12.345, "evaluate": 75.0},
    )


def test_report_is_self_contained_and_correct(
    report_context: ReportContext, tmp_path: Path
) -> None:
    (tmp_path / "report_inputs.txt").write_text("not a png")
    out_dir = tmp_path / "out"
    path = write_report(out_dir, report_context)
    assert path == out_dir / "report.html" and _no_temp_files(out_dir)
    text = path.read_text(encoding="utf-8")

    # self-contained: no external resources at all
    assert 'src="http' not in text and "<link" not in text and "<script" not in text
    assert "url(" not in text and "@import" not in text
    parser = _Collector()
    parser.feed(text)
    assert len(parser.img_src) == 3  # confusion + IoU of U-Net, the area chart
    for src in parser.img_src:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    assert "figure not available" in text  # the missing and the non-PNG files

    # mIoU cells: 4 decimals, the same as the JSON rounded to 4 decimals
    assert parser.miou == {"U-Net": "0.6123", "U-T&T <script>": "0.7000"}
    assert parser.miou["U-Net"] == f"{round(0.612345, 4):.4f}"
    # best per column bold, undefined as '—'
    assert "<strong>0.7000</strong>" in text and "<strong>0.900</strong>" in text
    assert "—" in text
    # escaping
    assert "U-T&amp;T &lt;script&gt;" in text and "Demo &lt;b&gt;report&lt;/b&gt;" in text
    assert "&lt;GPU&gt;" in text and "<code>flairlc fit --config x.yaml</code>" in text
    assert "SYNTHETIC" in text and "CPU, 2 cores, 1 epoch" in text
    # paper numbers in percent are shown as fractions; tables and timings formatted
    assert "0.6270" in text and "1,234.57" in text and "123,456" in text
    assert "1 min 15 s" in text and "12.3 s" in text


def test_markdown_is_escaped_and_minimal() -> None:
    out = markdown_to_html("## Title <x>\npara `a<b`\n\n- one\n- two & three\n```\n<raw>\n```")
    assert "<h4>Title &lt;x&gt;</h4>" in out
    assert "<code>a&lt;b</code>" in out
    assert "<li>two &amp; three</li>" in out
    assert "<pre><code>&lt;raw&gt;</code></pre>" in out
    assert "<raw>" not in out


def test_terminal_table(report_context: ReportContext) -> None:
    table = terminal_table(report_context.results)
    assert "U-Net" in table and "0.6123" in table and "0.7000" in table
    assert "0.900" in table and "—" in table
    assert not re.search(r"\x1b\[", table)  # no colour codes
    assert format_miou(None) == "—"
