"""Write a synthetic dataset in the FLAIR #2 layout (see ``shared/spec/flair-format.md``).

Each area is one procedural :class:`~.scene.Scene`, rendered at 0.2 m for its aerial patches and
at 10 m (from a 2 m rendering, mixed by area) for its Sentinel-2 super-area, so the centroid of a
patch in the super-area shows that patch's land cover.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from flairlc.data.synthetic.aerial import Radiometry, render_aerial
from flairlc.data.synthetic.io import write_geotiff, write_json, write_npy, write_text
from flairlc.data.synthetic.scene import (
    AERIAL_PIXEL_M,
    SENTINEL_PIXEL_M,
    TAG_LETTERS,
    Grid,
    Scene,
    class_fractions,
    make_scene,
)
from flairlc.data.synthetic.sentinel import acquisition_dates, product_name, render_series

#: Half the default Sentinel-2 window (40 px) plus a safety margin: pixels between a patch
#: centroid and the super-area border.
SUPER_AREA_MARGIN_PX = 28
#: Smallest super-area side, pixels at 10 m (the default; real FLAIR super-areas are of the order
#: of 100–250 px, see ``min_super_area_px``).
MIN_SUPER_AREA_PX = 100
#: Fine rendering factor for Sentinel-2 class fractions (10 m / 5 = 2 m).
FRACTION_FACTOR = 5

TREES = {
    "train": ("flair_aerial_train", "flair_labels_train", "flair_sen_train"),
    "test": ("flair_2_aerial_test", "flair_2_labels_test", "flair_2_sen_test"),
}
CENTROIDS_JSON = "flair-2_centroids_sp_to_patch.json"
METADATA_JSON = "flair-2_aerial_metadata.json"

# Metropolitan département numbers (Corsica's 2A/2B left out) and camera ids seen in FLAIR.
_DEPARTEMENTS = [d for d in range(1, 96) if d != 20]
_CAMERAS = ("UCE-M3-f120", "UCE-M3-f100", "UCE-M3-f100", "CAMERA#017", "CAMERA#034", "CAMERA#023")
_S2_TILES = ("T31TFJ", "T31UDQ", "T30TXQ", "T31TCJ", "T32ULU", "T30UVU", "T31TGL", "T30TYN")
_TAGS = tuple(a + b for a in TAG_LETTERS for b in TAG_LETTERS)


@dataclass
class SyntheticSummary:
    """What :func:`generate_dataset` wrote.

    Attributes:
        out: dataset root.
        train_domains, test_domains: domain names (``D004_2021``) of each split.
        n_areas: number of areas (super-areas).
        n_patches, n_train_patches, n_test_patches: patch counts.
        patch_size: aerial patch side, pixels.
        n_dates: Sentinel-2 dates per area.
        seconds: wall time of the generation.
    """

    out: Path
    train_domains: list[str]
    test_domains: list[str]
    n_areas: int
    n_patches: int
    n_train_patches: int
    n_test_patches: int
    patch_size: int
    n_dates: int
    seconds: float = 0.0


@dataclass
class DomainPlan:
    """A domain: a département surveyed in one year."""

    name: str
    year: int
    split: str
    camera: str
    tile: str
    radiometry: Radiometry
    altitude_m: float
    vineyard_weight: float
    flight_days: list[dt.date]


@dataclass
class PatchPlan:
    """An aerial patch: id, 0.2 m grid and centroid pixel ``(row, col)`` in its super-area."""

    id: str
    grid: Grid
    centroid: tuple[int, int]


@dataclass
class AreaPlan:
    """An area (zone) of a domain with its super-area grid, scene seed and patches."""

    index: int
    domain: DomainPlan
    zone: str
    tag: str
    scene_seed: int
    sat_grid: Grid
    patches: list[PatchPlan] = field(default_factory=list)

    def scene(self) -> Scene:
        """The area's procedural scene (covering the super-area)."""
        return make_scene(
            self.sat_grid.bounds, self.tag, self.scene_seed, self.domain.vineyard_weight
        )

    @property
    def sen_stem(self) -> str:
        return f"SEN2_sp_{self.domain.name}-{self.zone}"


def _n_test(domains: int, test_domains: int | None) -> int:
    if test_domains is None:
        return max(1, round(0.2 * domains)) if domains >= 2 else 0
    if not 0 <= test_domains <= domains:
        raise ValueError(f"test_domains must be within 0..{domains}, got {test_domains}")
    return test_domains


def _domains(rng: np.random.Generator, domains: int, n_test: int) -> list[DomainPlan]:
    if not 1 <= domains <= len(_DEPARTEMENTS):
        raise ValueError(f"domains must be within 1..{len(_DEPARTEMENTS)}, got {domains}")
    codes = rng.choice(_DEPARTEMENTS, size=domains, replace=False)
    test = set(rng.choice(domains, size=n_test, replace=False).tolist())
    out = []
    for i, code in enumerate(codes):
        year = int(rng.integers(2018, 2022))
        first = dt.date(year, 4, 1) + dt.timedelta(days=int(rng.integers(0, 150)))
        days = sorted({first + dt.timedelta(days=int(k)) for k in rng.integers(0, 30, 3)})
        out.append(
            DomainPlan(
                name=f"D{int(code):03d}_{year}",
                year=year,
                split="test" if i in test else "train",
                camera=str(rng.choice(_CAMERAS)),
                tile=str(rng.choice(_S2_TILES)),
                radiometry=Radiometry.draw(rng),
                altitude_m=float(rng.choice([rng.uniform(0, 300), rng.uniform(200, 1500)])),
                vineyard_weight=float(rng.choice([0.0, 0.0, 0.12, 0.3])),
                flight_days=days,
            )
        )
    return out


def plan_dataset(
    domains: int = 6,
    areas_per_domain: int = 2,
    patches_per_area: int = 4,
    patch_size: int = 512,
    test_domains: int | None = None,
    seed: int = 0,
    area_tags: Sequence[str] | None = None,
    min_super_area_px: int = MIN_SUPER_AREA_PX,
) -> list[AreaPlan]:
    """Draw domains, areas, super-area grids and patch grids (no rendering, no I/O).

    Patches of an area are cells of a regular tiling (like the real FLAIR patches) inside the
    super-area, at least :data:`SUPER_AREA_MARGIN_PX` pixels (10 m) from its border. The
    super-area is square, its side (10 m pixels) the larger of ``min_super_area_px`` and what
    the tiling needs; the tiling stays centred in it. Draws do not depend on
    ``min_super_area_px``: the same seed gives the same domains, areas and patch ids.
    """
    if patch_size < 8 or areas_per_domain < 1 or patches_per_area < 1:
        raise ValueError("patch_size >= 8, areas_per_domain >= 1 and patches_per_area >= 1 needed")
    if min_super_area_px < 1:
        raise ValueError(f"min_super_area_px must be >= 1, got {min_super_area_px}")
    tags = tuple(area_tags) if area_tags else _TAGS
    bad = [t for t in tags if len(t) != 2 or set(t) - set(TAG_LETTERS)]
    if bad:
        raise ValueError(f"area tags must be two letters of {TAG_LETTERS!r}, got {bad}")
    rng = np.random.default_rng([seed, 1])
    plans = _domains(rng, domains, _n_test(domains, test_domains))
    patch_m = patch_size * AERIAL_PIXEL_M
    k = math.ceil(math.sqrt(patches_per_area * 1.6))  # tiling side, cells
    side_px = max(
        min_super_area_px, math.ceil(k * patch_m / SENTINEL_PIXEL_M) + 2 * SUPER_AREA_MARGIN_PX
    )
    ids = iter(
        f"{i:06d}"
        for i in np.sort(
            rng.choice(
                np.arange(1, 1_000_000),
                size=domains * areas_per_domain * patches_per_area,
                replace=False,
            )
        )
    )
    areas: list[AreaPlan] = []
    for dom in plans:
        cx, cy = rng.uniform(250_000, 1_000_000), rng.uniform(6_250_000, 7_050_000)
        zones = np.sort(
            rng.choice(np.arange(1, 3 * areas_per_domain + 1), areas_per_domain, replace=False)
        )
        for z in zones:
            x0 = round((cx + rng.uniform(-15_000, 15_000)) / SENTINEL_PIXEL_M) * SENTINEL_PIXEL_M
            y1 = round((cy + rng.uniform(-15_000, 15_000)) / SENTINEL_PIXEL_M) * SENTINEL_PIXEL_M
            tag = str(rng.choice(tags))
            sat = Grid(x0, y1, side_px, side_px, SENTINEL_PIXEL_M)
            area = AreaPlan(len(areas), dom, f"Z{z}_{tag}", tag, int(rng.integers(2**31)), sat)
            # centre the tiling, offset by a few metres so patch edges miss the 10 m grid
            free_m = side_px * SENTINEL_PIXEL_M - k * patch_m
            ox = x0 + round((free_m / 2 + rng.uniform(-3, 3)) / AERIAL_PIXEL_M) * AERIAL_PIXEL_M
            oy = y1 - round((free_m / 2 + rng.uniform(-3, 3)) / AERIAL_PIXEL_M) * AERIAL_PIXEL_M
            for cell in np.sort(rng.choice(k * k, size=patches_per_area, replace=False)):
                r, c = divmod(int(cell), k)
                grid = Grid(
                    round(ox + c * patch_m, 3),
                    round(oy - r * patch_m, 3),
                    patch_size,
                    patch_size,
                    AERIAL_PIXEL_M,
                )
                x_mid, y_mid = grid.x_min + patch_m / 2, grid.y_max - patch_m / 2
                area.patches.append(PatchPlan(next(ids), grid, sat.pixel_of(x_mid, y_mid)))
            areas.append(area)
    return areas


def _leaf(root: Path, area: AreaPlan, tree: int, leaf: str) -> Path:
    path = root / TREES[area.domain.split][tree] / area.domain.name / area.zone / leaf
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_area(root: Path, area: AreaPlan, dates: int, seed: int) -> dict[str, dict]:
    """Render and write one area; return its centroid and metadata entries."""
    rng = np.random.default_rng([seed, 2, area.index])
    dom = area.domain
    scene = area.scene()
    frac, shift = class_fractions(scene, area.sat_grid, FRACTION_FACTOR)
    when = acquisition_dates(rng, dom.year, dates)
    names = [product_name(rng, d, dom.tile) for d in when]
    data, masks = render_series(frac, shift, when, area.sat_grid, rng, area.scene_seed)
    sen = _leaf(root, area, 2, "sen")
    write_npy(sen / f"{area.sen_stem}_data.npy", data)
    write_npy(sen / f"{area.sen_stem}_masks.npy", masks)
    write_text(sen / f"{area.sen_stem}_products.txt", "\n".join(names) + "\n")

    img_dir, msk_dir = _leaf(root, area, 0, "img"), _leaf(root, area, 1, "msk")
    day = dom.flight_days[int(rng.integers(len(dom.flight_days)))]
    minutes = int(rng.integers(8 * 60, 15 * 60))
    centroids, meta = {}, {}
    for j, patch in enumerate(area.patches):
        prng = np.random.default_rng([seed, 3, area.index, j])
        image, mask = render_aerial(scene, patch.grid, prng, dom.radiometry)
        write_geotiff(img_dir / f"IMG_{patch.id}.tif", image, patch.grid.transform)
        write_geotiff(msk_dir / f"MSK_{patch.id}.tif", mask[None], patch.grid.transform)
        half = patch.grid.width * AERIAL_PIXEL_M / 2
        t = minutes + 2 * j
        centroids[f"IMG_{patch.id}.tif"] = [int(patch.centroid[0]), int(patch.centroid[1])]
        meta[f"IMG_{patch.id}"] = {
            "domain": dom.name,
            "zone": area.zone,
            "patch_centroid_x": round(patch.grid.x_min + half, 1),
            "patch_centroid_y": round(patch.grid.y_max - half, 1),
            "patch_centroid_z": round(dom.altitude_m + float(rng.normal(0, 12)), 1),
            "date": day.isoformat(),
            "time": f"{t // 60:02d}h{t % 60:02d}",
            "camera": dom.camera,
        }
    return {"centroids": centroids, "metadata": meta}


def generate_dataset(
    out: Path,
    domains: int = 6,
    areas_per_domain: int = 2,
    patches_per_area: int = 4,
    patch_size: int = 512,
    dates: int = 20,
    test_domains: int | None = None,
    seed: int = 0,
    progress: bool = False,
    area_tags: Sequence[str] | None = None,
    min_super_area_px: int = MIN_SUPER_AREA_PX,
) -> SyntheticSummary:
    """Write a synthetic FLAIR #2 dataset (train and test trees, Sentinel-2, JSONs) under ``out``.

    Args:
        out: dataset root (created; existing files of the same names are replaced).
        domains: number of domains (distinct départements, survey years 2018–2021).
        areas_per_domain: areas (zones, each with its Sentinel-2 super-area) per domain.
        patches_per_area: aerial patches per area.
        patch_size: patch side in pixels of 0.2 m (512 in FLAIR: 102.4 m).
        dates: Sentinel-2 dates per area, spread over the survey year.
        test_domains: domains in the test trees; default about 20 % (at least 1 when
            ``domains >= 2``).
        seed: same seed, byte-identical arrays.
        progress: show a progress bar over areas.
        area_tags: land-cover tags the areas are drawn from, two letters of ``"UANF"`` (urban,
            agricultural, natural, forest; the first dominates); default: all 16 pairs.
        min_super_area_px: smallest side of a Sentinel-2 super-area, pixels at 10 m (default
            :data:`MIN_SUPER_AREA_PX`, 100). Real FLAIR super-areas are of the order of 100–250
            px; 200 gives ``(T, 10, 200, 200)`` uint16 arrays, 40 MB at T = 50, for loading
            benchmarks. Rendering time grows with the area.

    Returns:
        A :class:`SyntheticSummary`.
    """
    start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    areas = plan_dataset(
        domains, areas_per_domain, patches_per_area, patch_size, test_domains, seed, area_tags,
        min_super_area_px,
    )
    centroids: dict[str, list[int]] = {}
    metadata: dict[str, dict] = {}
    iterator = areas
    if progress:
        from tqdm import tqdm

        iterator = tqdm(areas, desc="synthetic areas", unit="area")
    for area in iterator:
        entries = _write_area(out, area, dates, seed)
        centroids.update(entries["centroids"])
        metadata.update(entries["metadata"])
    write_json(out / CENTROIDS_JSON, centroids)
    write_json(out / METADATA_JSON, metadata)

    split_of = {a.domain.name: a.domain.split for a in areas}
    n_test = sum(len(a.patches) for a in areas if a.domain.split == "test")
    return SyntheticSummary(
        out=out,
        train_domains=sorted(d for d, s in split_of.items() if s == "train"),
        test_domains=sorted(d for d, s in split_of.items() if s == "test"),
        n_areas=len(areas),
        n_patches=len(centroids),
        n_train_patches=len(centroids) - n_test,
        n_test_patches=n_test,
        patch_size=patch_size,
        n_dates=dates,
        seconds=time.perf_counter() - start,
    )
