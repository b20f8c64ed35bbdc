"""Procedural land-cover scenes defined in map coordinates (Lambert-93 metres).

A :class:`Scene` is a small vector world: a tessellation of parcels (a jittered Voronoi diagram:
fields, gardens, forests...), rivers and roads as thick polylines, and rotated rectangles or
ellipses (buildings, pools, greenhouses, ponds). It is rasterized on any north-up :class:`Grid`:
at 0.2 m for an aerial patch, at 2 m then averaged to 10 m for Sentinel-2. Because everything is
defined in metres, the two renderings agree geometrically.

Every drawn thing is an *object* with an id; per-object attributes (tone, height, stripe pattern,
phenology shift) drive the radiometry in :mod:`.aerial` and :mod:`.sentinel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from rasterio.transform import Affine

from flairlc.data.synthetic.noise import ValueNoise

#: Aerial pixel size of FLAIR patches, metres.
AERIAL_PIXEL_M = 0.2
#: Sentinel-2 pixel size, metres.
SENTINEL_PIXEL_M = 10.0

# Raw class values (flairlc.nomenclature.RAW_CLASSES) used by the generator.
BUILDING, PERVIOUS, IMPERVIOUS, BARE_SOIL, WATER = 1, 2, 3, 4, 5
CONIFEROUS, DECIDUOUS, BRUSHWOOD, VINEYARD, HERBACEOUS = 6, 7, 8, 9, 10
AGRICULTURAL, PLOWED, POOL, SNOW, CLEAR_CUT = 11, 12, 13, 14, 15
MIXED, LIGNEOUS, GREENHOUSE, OTHER = 16, 17, 18, 19
#: Size of per-class lookup tables indexed by raw value (row 0 unused).
N_TABLE = 20

#: Classes whose parcel edges are irregular (drawn on a warped tessellation).
NATURAL_CLASSES = (WATER, CONIFEROUS, DECIDUOUS, BRUSHWOOD, CLEAR_CUT, MIXED, LIGNEOUS)
#: Field-like classes that share one aerial appearance and differ only in seasonality.
FIELD_CLASSES = (HERBACEOUS, AGRICULTURAL, PLOWED)
#: Land-cover letters of area tags: urban, agricultural, natural, forest.
TAG_LETTERS = "UANF"

# Parcel class priors per land-cover letter: (raw values, weights).
_PRIORS: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
    "U": (
        (PERVIOUS, IMPERVIOUS, BARE_SOIL, HERBACEOUS, DECIDUOUS, OTHER),
        (0.46, 0.26, 0.05, 0.12, 0.08, 0.03),
    ),
    "A": (
        (
            AGRICULTURAL,
            PLOWED,
            HERBACEOUS,
            VINEYARD,
            DECIDUOUS,
            CONIFEROUS,
            BRUSHWOOD,
            BARE_SOIL,
            LIGNEOUS,
        ),
        (0.28, 0.22, 0.22, 0.0, 0.09, 0.03, 0.07, 0.04, 0.05),
    ),
    "N": (
        (
            HERBACEOUS,
            BRUSHWOOD,
            DECIDUOUS,
            CONIFEROUS,
            BARE_SOIL,
            WATER,
            AGRICULTURAL,
            PLOWED,
            LIGNEOUS,
            MIXED,
        ),
        (0.24, 0.16, 0.16, 0.08, 0.05, 0.04, 0.11, 0.08, 0.04, 0.04),
    ),
    "F": (
        (DECIDUOUS, CONIFEROUS, MIXED, BRUSHWOOD, HERBACEOUS, CLEAR_CUT, AGRICULTURAL, PLOWED),
        (0.32, 0.26, 0.05, 0.10, 0.11, 0.06, 0.06, 0.04),
    ),
}


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid in Lambert-93.

    Attributes:
        x_min: west edge, metres.
        y_max: north edge, metres.
        width, height: size in pixels.
        pixel_m: pixel size, metres.
    """

    x_min: float
    y_max: float
    width: int
    height: int
    pixel_m: float

    @property
    def transform(self) -> Affine:
        """The rasterio affine transform of the grid."""
        return Affine(self.pixel_m, 0.0, self.x_min, 0.0, -self.pixel_m, self.y_max)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(x_min, y_min, x_max, y_max)`` in metres."""
        return (
            self.x_min,
            self.y_max - self.height * self.pixel_m,
            self.x_min + self.width * self.pixel_m,
            self.y_max,
        )

    def xs(self) -> np.ndarray:
        """Pixel-centre eastings ``(width,)``, metres."""
        return self.x_min + (np.arange(self.width) + 0.5) * self.pixel_m

    def ys(self) -> np.ndarray:
        """Pixel-centre northings ``(height,)``, metres (decreasing with the row)."""
        return self.y_max - (np.arange(self.height) + 0.5) * self.pixel_m

    def pixel_of(self, x: float, y: float) -> tuple[int, int]:
        """The ``(row, col)`` of the pixel containing the point ``(x, y)``."""
        return int(np.floor((self.y_max - y) / self.pixel_m)), int(
            np.floor((x - self.x_min) / self.pixel_m)
        )

    def window(self, row: int, col: int, height: int, width: int) -> Grid:
        """A sub-grid starting at pixel ``(row, col)``."""
        return replace(
            self,
            x_min=self.x_min + col * self.pixel_m,
            y_max=self.y_max - row * self.pixel_m,
            width=width,
            height=height,
        )


@dataclass
class Shapes:
    """Rotated rectangles (``kind`` 0) or ellipses (``kind`` 1), arrays of equal length.

    ``cx, cy`` centre (metres), ``hw, hh`` half sizes along and across ``angle`` (radians).
    """

    cx: np.ndarray
    cy: np.ndarray
    hw: np.ndarray
    hh: np.ndarray
    angle: np.ndarray
    kind: np.ndarray
    cls: np.ndarray

    def __len__(self) -> int:
        return len(self.cx)


@dataclass
class Segments:
    """Thick line segments ``(x1, y1) → (x2, y2)`` with a half width (metres) and a class."""

    x1: np.ndarray
    y1: np.ndarray
    x2: np.ndarray
    y2: np.ndarray
    half_width: np.ndarray
    cls: np.ndarray

    def __len__(self) -> int:
        return len(self.x1)


@dataclass
class Scene:
    """A procedural land-cover scene.

    Object ids: parcels ``0..P-1``, then segments, then shapes (painted in that order).

    Attributes:
        bounds: ``(x_min, y_min, x_max, y_max)``, metres.
        cell_m: parcel tessellation cell, metres (a pixel's parcel seed lies within
            ``cell_m * sqrt(2)`` of it).
        seeds: ``(P, 2)`` parcel seeds (x, y), metres.
        parcel_cls: ``(P,)`` raw class of each parcel.
        segments: rivers and roads.
        shapes: buildings, pools, greenhouses, ponds...
        attrs: per-object float32 attributes ``tone`` (0..1), ``height_m``, ``stripe_amp``,
            ``stripe_m`` (stripe period, metres), ``stripe_angle`` (radians), ``shift_days``
            (phenology shift, days).
        seed: seed of the scene's noise fields.
    """

    bounds: tuple[float, float, float, float]
    cell_m: float
    seeds: np.ndarray
    parcel_cls: np.ndarray
    segments: Segments
    shapes: Shapes
    attrs: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int = 0

    @property
    def n_parcels(self) -> int:
        return len(self.seeds)

    @property
    def object_cls(self) -> np.ndarray:
        """Raw class of every object ``(n_objects,)``."""
        return np.concatenate([self.parcel_cls, self.segments.cls, self.shapes.cls]).astype(
            np.uint8
        )

    def warp(self) -> tuple[ValueNoise, ValueNoise]:
        """Displacement fields that make natural parcel edges irregular."""
        return ValueNoise(45.0, self.seed * 4 + 1, 2), ValueNoise(45.0, self.seed * 4 + 2, 2)


# --------------------------------------------------------------------------------------------
# Building a scene


def _draw(rng: np.random.Generator, letter: str, n: int, vineyard_weight: float) -> np.ndarray:
    values, weights = _PRIORS[letter]
    w = np.array(weights, dtype=np.float64)
    if letter == "A":
        w[values.index(VINEYARD)] = vineyard_weight
    return rng.choice(np.array(values, dtype=np.uint8), size=n, p=w / w.sum())


def _parcels(
    rng: np.random.Generator,
    bounds: tuple[float, float, float, float],
    cell_m: float,
    town: tuple[float, float, float] | None,
) -> np.ndarray:
    """Jittered-grid seeds (one per cell; four per cell inside the town disk), ``(P, 2)``."""
    x0, y0, x1, y1 = bounds
    # one extra ring of cells so that pixels near the border still find their nearest seed
    gx = np.arange(x0 - cell_m, x1 + cell_m, cell_m)
    gy = np.arange(y0 - cell_m, y1 + cell_m, cell_m)
    cx, cy = (a.ravel() for a in np.meshgrid(gx, gy))
    seeds = [
        np.stack([cx + rng.uniform(0, cell_m, cx.size), cy + rng.uniform(0, cell_m, cy.size)], 1)
    ]
    if town is not None:
        tx, ty, tr = town
        inside = np.hypot(cx + cell_m / 2 - tx, cy + cell_m / 2 - ty) < tr
        half = cell_m / 2
        for dx in (0.0, half):
            for dy in (0.0, half):
                k = int(inside.sum())
                seeds.append(
                    np.stack(
                        [
                            cx[inside] + dx + rng.uniform(0, half, k),
                            cy[inside] + dy + rng.uniform(0, half, k),
                        ],
                        1,
                    )
                )
        # the coarse seeds inside the town are replaced by the four finer ones
        seeds[0] = seeds[0][~inside]
    return np.concatenate(seeds).astype(np.float64)


def _roads(
    rng: np.random.Generator,
    bounds: tuple[float, float, float, float],
    town: tuple[float, float, float] | None,
) -> list[tuple[float, float, float, float, float, int]]:
    """Road segments: a few long rural roads, and a rotated street grid clipped to the town."""
    x0, y0, x1, y1 = bounds
    cxm, cym = (x0 + x1) / 2, (y0 + y1) / 2
    span = max(x1 - x0, y1 - y0)
    out: list[tuple[float, float, float, float, float, int]] = []
    for _ in range(int(rng.integers(1, 3))):
        a = rng.uniform(0, np.pi)
        px, py = cxm + rng.uniform(-0.3, 0.3) * span, cym + rng.uniform(-0.3, 0.3) * span
        dx, dy = np.cos(a) * span, np.sin(a) * span
        out.append((px - dx, py - dy, px + dx, py + dy, rng.uniform(2.5, 4.5), IMPERVIOUS))
    if town is not None:
        tx, ty, tr = town
        a = rng.uniform(0, np.pi / 2)
        spacing = rng.uniform(55, 85)
        for theta in (a, a + np.pi / 2):
            ux, uy = np.cos(theta), np.sin(theta)  # street direction
            nx, ny = -uy, ux
            for off in np.arange(-tr + spacing / 2, tr, spacing):
                half_len = np.sqrt(max(tr * tr - off * off, 0.0))
                if half_len < 20:
                    continue
                mx, my = tx + nx * off, ty + ny * off
                out.append(
                    (
                        mx - ux * half_len,
                        my - uy * half_len,
                        mx + ux * half_len,
                        my + uy * half_len,
                        rng.uniform(3.0, 5.0),
                        IMPERVIOUS,
                    )
                )
    return out


def _river(
    rng: np.random.Generator, bounds: tuple[float, float, float, float]
) -> list[tuple[float, float, float, float, float, int]]:
    """A meandering river crossing the scene, as a chain of segments."""
    x0, y0, x1, y1 = bounds
    span = max(x1 - x0, y1 - y0)
    a = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    t = np.linspace(-span, span, 40)
    phase, wavelength, amp = rng.uniform(0, 2 * np.pi), rng.uniform(150, 400), rng.uniform(10, 40)
    lateral = amp * np.sin(2 * np.pi * t / wavelength + phase)
    xs = cx + np.cos(a) * t - np.sin(a) * lateral
    ys = cy + np.sin(a) * t + np.cos(a) * lateral
    hw = rng.uniform(4, 15)
    return [(xs[i], ys[i], xs[i + 1], ys[i + 1], hw, WATER) for i in range(len(t) - 1)]


def _distance_to_segments(px: np.ndarray, py: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distance ``(N, S)`` from points to segments given as rows ``x1, y1, x2, y2, ...``."""
    x1, y1, x2, y2 = (segs[:, i][None, :] for i in range(4))
    dx, dy = x2 - x1, y2 - y1
    t = ((px[:, None] - x1) * dx + (py[:, None] - y1) * dy) / np.maximum(dx * dx + dy * dy, 1e-9)
    t = np.clip(t, 0, 1)
    return np.hypot(px[:, None] - (x1 + t * dx), py[:, None] - (y1 + t * dy))


def _nearest_seed(px: np.ndarray, py: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Index of the nearest seed for a few points (no pruning; for placement, not rendering)."""
    out = np.empty(px.size, dtype=np.int64)
    for start in range(0, px.size, 2048):
        sl = slice(start, start + 2048)
        d = (px[sl, None] - seeds[None, :, 0]) ** 2 + (py[sl, None] - seeds[None, :, 1]) ** 2
        out[sl] = d.argmin(1)
    return out


def _buildings(
    rng: np.random.Generator,
    roads: np.ndarray,
    seeds: np.ndarray,
    urban: np.ndarray,
) -> list[tuple[float, float, float, float, float, int, int]]:
    """Houses along the streets of urban parcels, with a swimming pool behind some."""
    out: list[tuple[float, float, float, float, float, int, int]] = []
    if len(roads) == 0:
        return out
    cand_x, cand_y, cand_a, cand_w, cand_d, side_n = [], [], [], [], [], []
    for x1, y1, x2, y2, hw, _ in roads:
        length = np.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        steps = np.arange(rng.uniform(5, 15), length, rng.uniform(16, 26))
        for side in (-1.0, 1.0):
            w = rng.uniform(4.0, 9.0, steps.size)  # half size along the street
            d = rng.uniform(4.0, 7.5, steps.size)  # half depth
            off = hw + rng.uniform(3.0, 8.0, steps.size) + d
            cand_x.append(x1 + ux * steps - side * uy * off)
            cand_y.append(y1 + uy * steps + side * ux * off)
            cand_a.append(np.full(steps.size, np.arctan2(uy, ux)))
            cand_w.append(w)
            cand_d.append(d)
            side_n.append(
                np.stack([-side * uy * np.ones(steps.size), side * ux * np.ones(steps.size)], 1)
            )
    bx, by = np.concatenate(cand_x), np.concatenate(cand_y)
    ba, bw, bd = np.concatenate(cand_a), np.concatenate(cand_w), np.concatenate(cand_d)
    normal = np.concatenate(side_n)
    # keep houses in urban parcels, clear of every street, most of the plots built
    in_town = urban[_nearest_seed(bx, by, seeds)]
    # every corner clear of every street (the own street included)
    clear = np.ones(bx.size, dtype=bool)
    ca, sa = np.cos(ba), np.sin(ba)
    for su, sv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
        kx = bx + su * bw * ca - sv * bd * sa
        ky = by + su * bw * sa + sv * bd * ca
        dist = _distance_to_segments(kx, ky, roads) - roads[None, :, 4]
        clear &= dist.min(1) > 0.5
    keep = in_town & clear & (rng.random(bx.size) < 0.85)
    for x, y, a, w, d, n in zip(
        bx[keep], by[keep], ba[keep], bw[keep], bd[keep], normal[keep], strict=True
    ):
        out.append((x, y, w, d, a, 0, BUILDING))
        if rng.random() < 0.15:  # a pool in the garden, behind the house
            gap = d + rng.uniform(5, 8)
            out.append(
                (
                    x + n[0] * gap,
                    y + n[1] * gap,
                    rng.uniform(2.5, 4.5),
                    rng.uniform(1.5, 2.5),
                    a,
                    0,
                    POOL,
                )
            )
    return out


def _rural_shapes(
    rng: np.random.Generator,
    bounds: tuple[float, float, float, float],
    seeds: np.ndarray,
    parcel_cls: np.ndarray,
) -> list[tuple[float, float, float, float, float, int, int]]:
    """Farm buildings, greenhouses, ponds and odd objects scattered over the countryside."""
    x0, y0, x1, y1 = bounds
    area_km2 = (x1 - x0) * (y1 - y0) / 1e6
    out = []
    fields = np.isin(parcel_cls, FIELD_CLASSES)
    for _ in range(rng.poisson(4 * area_km2)):  # farmsteads: a few sheds around a yard
        cx, cy, a = rng.uniform(x0, x1), rng.uniform(y0, y1), rng.uniform(0, np.pi)
        out.append((cx, cy, rng.uniform(12, 25), rng.uniform(10, 20), a, 0, IMPERVIOUS))
        for _ in range(int(rng.integers(1, 4))):
            ox, oy = rng.uniform(-15, 15, 2)
            out.append((cx + ox, cy + oy, rng.uniform(5, 14), rng.uniform(4, 8), a, 0, BUILDING))
    for _ in range(rng.poisson(1.5 * area_km2)):  # greenhouses in rows, on fields
        k = int(rng.choice(np.flatnonzero(fields))) if fields.any() else 0
        cx, cy, a = seeds[k, 0], seeds[k, 1], rng.uniform(0, np.pi)
        ux, uy = -np.sin(a), np.cos(a)
        for j in range(int(rng.integers(2, 6))):
            out.append(
                (cx + ux * 9 * j, cy + uy * 9 * j, rng.uniform(15, 30), 3.5, a, 0, GREENHOUSE)
            )
    for _ in range(rng.poisson(1.5 * area_km2)):  # ponds
        out.append(
            (
                rng.uniform(x0, x1),
                rng.uniform(y0, y1),
                rng.uniform(8, 30),
                rng.uniform(6, 20),
                rng.uniform(0, np.pi),
                1,
                WATER,
            )
        )
    for _ in range(rng.poisson(1.0 * area_km2)):  # odd objects ('other'), bare patches
        out.append(
            (
                rng.uniform(x0, x1),
                rng.uniform(y0, y1),
                rng.uniform(4, 12),
                rng.uniform(3, 8),
                rng.uniform(0, np.pi),
                0,
                int(rng.choice([OTHER, BARE_SOIL])),
            )
        )
    return out


def draw_attributes(rng: np.random.Generator, cls: np.ndarray) -> dict[str, np.ndarray]:
    """Per-object attributes; field classes draw them from one shared distribution."""
    n = cls.size
    tone = rng.random(n)
    height = np.zeros(n)
    trees = np.isin(cls, (CONIFEROUS, DECIDUOUS, MIXED))
    height[trees] = rng.uniform(12, 24, trees.sum())
    shrubs = np.isin(cls, (BRUSHWOOD, LIGNEOUS))
    height[shrubs] = rng.uniform(2, 6, shrubs.sum())
    height[cls == BUILDING] = rng.uniform(9, 20, (cls == BUILDING).sum())
    height[cls == GREENHOUSE] = rng.uniform(2.5, 4, (cls == GREENHOUSE).sum())
    height[cls == CLEAR_CUT] = rng.uniform(0.5, 2, (cls == CLEAR_CUT).sum())
    # tractor lines on fields (same law for herbaceous, agricultural and plowed), vine rows
    stripe_amp = np.where(rng.random(n) < 0.6, rng.uniform(3, 12, n), 0.0)
    stripe_amp[~np.isin(cls, (*FIELD_CLASSES, VINEYARD))] = 0.0
    stripe_m = rng.uniform(0.8, 3.0, n)
    vine = cls == VINEYARD
    stripe_m[vine] = rng.uniform(1.8, 2.6, vine.sum())
    stripe_amp[vine] = 1.0
    return {
        "tone": tone.astype(np.float32),
        "height_m": height.astype(np.float32),
        "stripe_amp": stripe_amp.astype(np.float32),
        "stripe_m": stripe_m.astype(np.float32),
        "stripe_angle": rng.uniform(0, np.pi, n).astype(np.float32),
        "shift_days": rng.uniform(-12, 12, n).astype(np.float32),
    }


def make_scene(
    bounds: tuple[float, float, float, float],
    tag: str,
    seed: int,
    vineyard_weight: float = 0.0,
) -> Scene:
    """Draw a random scene covering ``bounds`` (metres).

    Args:
        bounds: ``(x_min, y_min, x_max, y_max)`` in Lambert-93 metres.
        tag: two land-cover letters from ``"UANF"`` (urban, agricultural, natural, forest);
            the first dominates. ``U`` puts a town (street grid, houses, gardens) in the scene.
        seed: seed of every random choice and noise field of the scene.
        vineyard_weight: share of vineyards among agricultural parcels' draws (0 for none).
    """
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds
    cell_m = float(rng.uniform(70, 130))
    town = None
    if "U" in tag:
        r = rng.uniform(0.25, 0.45) if tag[0] == "U" else rng.uniform(0.12, 0.22)
        span = min(x1 - x0, y1 - y0)
        town = (
            rng.uniform(x0 + 0.3 * span, x1 - 0.3 * span),
            rng.uniform(y0 + 0.3 * span, y1 - 0.3 * span),
            r * span * 1.4,
        )
    seeds = _parcels(rng, bounds, cell_m, town)
    p = len(seeds)
    # two letters mixed in large patches: a low-frequency field decides each parcel's letter
    letters = [c for c in tag if c != "U"] or ["A"]
    mix = ValueNoise(400.0, seed * 4 + 3).points(seeds[:, 0], seeds[:, 1])
    use_first = mix > (-0.25 if len(letters) > 1 else -2.0)
    cls = np.where(
        use_first,
        _draw(rng, letters[0], p, vineyard_weight),
        _draw(rng, letters[-1], p, vineyard_weight),
    )
    urban = np.zeros(p, dtype=bool)
    if town is not None:
        urban = np.hypot(seeds[:, 0] - town[0], seeds[:, 1] - town[1]) < town[2]
        cls[urban] = _draw(rng, "U", int(urban.sum()), 0.0)

    seg_rows = _roads(rng, bounds, town)
    if rng.random() < 0.35:
        seg_rows = _river(rng, bounds) + seg_rows  # rivers first: roads cross on bridges
    segs = np.array(seg_rows, dtype=np.float64).reshape(-1, 6)
    roads = segs[segs[:, 5] == IMPERVIOUS]
    shape_rows = _rural_shapes(rng, bounds, seeds, cls)
    if town is not None:
        shape_rows += _buildings(rng, roads, seeds, urban)
    sh = np.array(shape_rows, dtype=np.float64).reshape(-1, 7)
    shapes = Shapes(
        sh[:, 0],
        sh[:, 1],
        sh[:, 2],
        sh[:, 3],
        sh[:, 4],
        sh[:, 5].astype(np.uint8),
        sh[:, 6].astype(np.uint8),
    )
    segments = Segments(
        segs[:, 0], segs[:, 1], segs[:, 2], segs[:, 3], segs[:, 4], segs[:, 5].astype(np.uint8)
    )
    scene = Scene(bounds, cell_m, seeds, cls.astype(np.uint8), segments, shapes, seed=seed)
    scene.attrs = draw_attributes(rng, scene.object_cls)
    return scene


# --------------------------------------------------------------------------------------------
# Rasterizing a scene


def _voronoi(
    gx: np.ndarray, gy: np.ndarray, seeds: np.ndarray, warped: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Nearest seed of every pixel; ``gx (W,)``/``gy (H,)`` or full warped ``(H, W)`` coords."""
    best_d = np.full((gy.size, gx.size), np.inf, dtype=np.float32)
    best = np.zeros((gy.size, gx.size), dtype=np.int32)
    if warped is None:  # separable squared distances: one addition per pixel and seed
        dx = (gx[None, :] - seeds[:, 0, None]) ** 2
        dy = (gy[None, :] - seeds[:, 1, None]) ** 2
    for k, (sx, sy) in enumerate(seeds):
        if warped is None:
            d = dy[k][:, None] + dx[k][None, :]
        else:
            d = (warped[1] - sy) ** 2
            d += (warped[0] - sx) ** 2
        closer = d < best_d
        np.copyto(best_d, d, where=closer)
        np.copyto(best, k, where=closer)
    return best


_WARP_M = 22.0  # amplitude of the edge warp of natural parcels, metres
_BLOCK_M = 160.0  # parcels are painted by blocks of this size, each with its nearby seeds


def _paint_parcels(scene: Scene, grid: Grid) -> np.ndarray:
    """Parcel id per pixel ``(H, W)``: straight edges for fields, irregular ones for nature."""
    step = max(int(_BLOCK_M / grid.pixel_m), 32)
    out = np.empty((grid.height, grid.width), dtype=np.int32)
    for r in range(0, grid.height, step):
        for c in range(0, grid.width, step):
            sub = grid.window(r, c, min(step, grid.height - r), min(step, grid.width - c))
            out[r : r + sub.height, c : c + sub.width] = _paint_block(scene, sub)
    return out


def _paint_block(scene: Scene, grid: Grid) -> np.ndarray:
    xs, ys = grid.xs(), grid.ys()
    x0, y0, x1, y1 = grid.bounds
    # a pixel's own-cell seed is within cell * sqrt(2); warping moves the pixel by < _WARP_M
    reach = scene.cell_m * 1.42 + _WARP_M + 1.0
    s = scene.seeds
    near = np.flatnonzero(
        (s[:, 0] > x0 - reach)
        & (s[:, 0] < x1 + reach)
        & (s[:, 1] > y0 - reach)
        & (s[:, 1] < y1 + reach)
    )
    ox, oy = x0, y0  # local origin keeps float32 precise
    lx, ly = (xs - ox).astype(np.float32), (ys - oy).astype(np.float32)
    local = (s[near] - [ox, oy]).astype(np.float32)
    ids = near[_voronoi(lx, ly, local, None)]
    natural = np.isin(scene.parcel_cls[near], NATURAL_CLASSES)
    if not natural.any():
        return ids
    wx, wy = scene.warp()
    amp = np.float32(_WARP_M)
    warped = (lx[None, :] + amp * wx.grid(xs, ys), ly[:, None] + amp * wy.grid(xs, ys))
    ids_w = near[_voronoi(lx, ly, local, warped)]
    nat = np.isin(scene.parcel_cls, NATURAL_CLASSES)
    use_w = nat[ids] | nat[ids_w]
    return np.where(use_w, ids_w, ids)


def _subwindow(grid: Grid, xmin: float, ymin: float, xmax: float, ymax: float):
    """Pixel slices of ``grid`` covering a box, or ``None`` when it misses the grid."""
    c0 = max(int(np.floor((xmin - grid.x_min) / grid.pixel_m)), 0)
    c1 = min(int(np.ceil((xmax - grid.x_min) / grid.pixel_m)), grid.width)
    r0 = max(int(np.floor((grid.y_max - ymax) / grid.pixel_m)), 0)
    r1 = min(int(np.ceil((grid.y_max - ymin) / grid.pixel_m)), grid.height)
    if c0 >= c1 or r0 >= r1:
        return None
    return slice(r0, r1), slice(c0, c1)


def rasterize(scene: Scene, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize a scene on a grid (pixel centres decide).

    Returns:
        ``(cls, obj)``: raw class values uint8 ``(H, W)`` (1..19) and object ids int32 ``(H, W)``.
    """
    xs, ys = grid.xs(), grid.ys()
    obj = _paint_parcels(scene, grid)
    base = scene.n_parcels
    sg = scene.segments
    for i in range(len(sg)):
        pad = sg.half_width[i]
        win = _subwindow(
            grid,
            min(sg.x1[i], sg.x2[i]) - pad,
            min(sg.y1[i], sg.y2[i]) - pad,
            max(sg.x1[i], sg.x2[i]) + pad,
            max(sg.y1[i], sg.y2[i]) + pad,
        )
        if win is None:
            continue
        px, py = xs[win[1]] - sg.x1[i], ys[win[0]] - sg.y1[i]
        dx, dy = sg.x2[i] - sg.x1[i], sg.y2[i] - sg.y1[i]
        t = np.clip((px[None, :] * dx + py[:, None] * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        d2 = (px[None, :] - t * dx) ** 2 + (py[:, None] - t * dy) ** 2
        obj[win][d2 <= pad * pad] = base + i
    base += len(sg)
    sh = scene.shapes
    reach = np.hypot(sh.hw, sh.hh)
    x0, y0, x1, y1 = grid.bounds
    hit = np.flatnonzero(
        (sh.cx + reach > x0) & (sh.cx - reach < x1) & (sh.cy + reach > y0) & (sh.cy - reach < y1)
    )
    for i in hit:
        win = _subwindow(
            grid, sh.cx[i] - reach[i], sh.cy[i] - reach[i], sh.cx[i] + reach[i], sh.cy[i] + reach[i]
        )
        if win is None:
            continue
        px, py = xs[win[1]][None, :] - sh.cx[i], ys[win[0]][:, None] - sh.cy[i]
        c, s = np.cos(sh.angle[i]), np.sin(sh.angle[i])
        u = (px * c + py * s) / sh.hw[i]
        v = (-px * s + py * c) / sh.hh[i]
        inside = (u * u + v * v <= 1) if sh.kind[i] == 1 else ((np.abs(u) <= 1) & (np.abs(v) <= 1))
        obj[win][inside] = base + i
    return scene.object_cls[obj], obj


def class_fractions(scene: Scene, grid: Grid, factor: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Area fraction of each class in every pixel of a coarse grid (e.g. 10 m Sentinel-2).

    The scene is rasterized at ``grid.pixel_m / factor`` and averaged over ``factor × factor``
    blocks, so mixed pixels mix classes by area.

    Returns:
        ``(fractions, shift_days)``: float32 ``(N_TABLE, H, W)`` indexed by raw value (row 0 is
        zero), and the mean phenology shift in days ``(H, W)``.
    """
    fine = replace(
        grid, width=grid.width * factor, height=grid.height * factor, pixel_m=grid.pixel_m / factor
    )
    cls, obj = rasterize(scene, fine)
    h, w = grid.height, grid.width
    cell = (np.arange(h * factor)[:, None] // factor) * w + np.arange(w * factor)[None, :] // factor
    counts = np.bincount((cell * N_TABLE + cls).ravel(), minlength=h * w * N_TABLE)
    frac = counts.reshape(h, w, N_TABLE).transpose(2, 0, 1).astype(np.float32) / factor**2
    shift = scene.attrs["shift_days"][obj].reshape(h, factor, w, factor).mean((1, 3))
    return frac, shift.astype(np.float32)
