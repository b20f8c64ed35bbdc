"""The demo end to end in its quick mode: files, and report numbers equal to the JSON metrics."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flairlc.demo import run_demo


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, quick=True, seed=0)


def test_quick_demo_writes_the_report_and_its_files(quick_demo) -> None:
    out, summary = quick_demo
    assert (out / "report.html").is_file() and (out / "results.json").is_file()
    for model in ("unet", "utt"):
        evaluation = out / model / "evaluation"
        for name in ("evaluation.json", "per_class.csv", "confusion_matrix.png", "per_class_iou.png"):
            assert (evaluation / name).is_file(), evaluation / name
    assert (out / "stats" / "class_distribution.png").is_file()
    for name in ("sample_patches.png", "seasonal_profiles.png", "map_2019.png", "map_2022.png", "areas.png"):
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "mapping" / "map_2022.tif").is_file() and (out / "mapping" / "change.tif").is_file()
    assert summary["best_model"] in ("unet", "utt")
    assert json.loads((out / "results.json").read_text())["models"].keys() == {"unet", "utt"}


def test_report_numbers_equal_the_json_metrics(quick_demo) -> None:
    out, _ = quick_demo
    html = (out / "report.html").read_text()
    shown = dict(re.findall(r'<td data-model="([^"]+)" class="miou">(?:<strong>)?([0-9.]+)', html))
    for model, label in (("unet", "U-Net"), ("utt", "U-T&amp;T")):
        evaluation = json.loads((out / model / "evaluation" / "evaluation.json").read_text())
        assert shown[label] == f"{evaluation['scores']['miou']:.4f}"


def test_report_is_self_contained(quick_demo) -> None:
    out, _ = quick_demo
    html = (out / "report.html").read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) >= 8
    for source in images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:4] == b"\x89PNG"
    assert "http://" not in html and "https://" not in html.replace("https://github.com", "")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(quick_demo, tmp_path: Path) -> None:
    out, _ = quick_demo
    script = Path(__file__).parents[1] / "scripts" / "screenshot_report.sh"
    shot = tmp_path / "report.png"
    subprocess.run([str(script), str(out / "report.html"), str(shot), "3000"], check=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
