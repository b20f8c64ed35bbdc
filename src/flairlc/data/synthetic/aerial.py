"""Aerial radiometry: R, G, B, NIR and elevation (uint8) from a rasterized scene.

Each class has a colour range (``_LO`` → ``_HI``) traversed by the object's ``tone``; texture is
added as luminance noise, a canopy field for trees and stripes for tilled fields and vine rows.
Herbaceous vegetation, agricultural land and plowed land share *one* colour range and one texture
law on purpose: in FLAIR they are told apart by their Sentinel-2 seasonality, not locally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flairlc.data.synthetic.noise import ValueNoise
from flairlc.data.synthetic.scene import (
    AGRICULTURAL,
    BARE_SOIL,
    BRUSHWOOD,
    BUILDING,
    CLEAR_CUT,
    CONIFEROUS,
    DECIDUOUS,
    GREENHOUSE,
    HERBACEOUS,
    IMPERVIOUS,
    LIGNEOUS,
    MIXED,
    N_TABLE,
    OTHER,
    PERVIOUS,
    PLOWED,
    POOL,
    SNOW,
    VINEYARD,
    WATER,
    Grid,
    Scene,
    rasterize,
)

#: Elevation band digital numbers per metre of height above ground.
ELEVATION_DN_PER_M = 10.0
# Camera response applied to the class colours, set so that the channel statistics over a
# typical dataset come close to FLAIR's (means about 105, 111, 102, 106; stds 52, 45, 44, 40).
# One offset for R, G and B keeps greys grey.
_RESPONSE_GAIN = np.array([1.2, 1.25, 1.2, 1.1], dtype=np.float32)
_RESPONSE_OFFSET = np.array([-37.0, -40.0, -37.0, -41.0], dtype=np.float32)

_FIELD_LO, _FIELD_HI = (88, 118, 66, 178), (172, 152, 112, 122)
_COLOURS: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    BUILDING: ((168, 92, 74, 98), (178, 176, 180, 152)),
    PERVIOUS: ((92, 116, 74, 150), (142, 146, 106, 134)),
    IMPERVIOUS: ((88, 90, 96, 78), (158, 156, 154, 118)),
    BARE_SOIL: ((150, 128, 98, 122), (204, 182, 150, 162)),
    WATER: ((34, 54, 60, 14), (72, 96, 96, 36)),
    CONIFEROUS: ((46, 72, 48, 124), (76, 102, 66, 166)),
    DECIDUOUS: ((56, 86, 50, 150), (88, 118, 72, 192)),
    BRUSHWOOD: ((82, 100, 64, 130), (124, 126, 86, 166)),
    VINEYARD: ((140, 124, 94, 118), (178, 156, 122, 150)),  # soil between the rows
    HERBACEOUS: (_FIELD_LO, _FIELD_HI),
    AGRICULTURAL: (_FIELD_LO, _FIELD_HI),
    PLOWED: (_FIELD_LO, _FIELD_HI),
    POOL: ((50, 160, 190, 40), (92, 202, 222, 62)),
    SNOW: ((234, 238, 242, 218), (250, 250, 252, 236)),
    CLEAR_CUT: ((110, 104, 80, 118), (152, 136, 102, 152)),
    MIXED: ((44, 70, 50, 118), (76, 100, 66, 166)),
    LIGNEOUS: ((84, 96, 60, 128), (122, 122, 82, 160)),
    GREENHOUSE: ((190, 196, 200, 160), (236, 238, 240, 192)),
    OTHER: ((90, 90, 92, 80), (162, 152, 142, 132)),
}
_VINE = np.array([78, 108, 58, 172], dtype=np.float32)
#: Per-band weights of the chroma noise shared by the four bands (DN).
_SPECKLE = np.array([2.0, -1.5, 1.0, 2.5], dtype=np.float32)
_LO = np.zeros((N_TABLE, 4), dtype=np.float32)
_SPAN = np.zeros((N_TABLE, 4), dtype=np.float32)
for _v, (_lo, _hi) in _COLOURS.items():
    _LO[_v] = _lo
    _SPAN[_v] = np.subtract(_hi, _lo)
# aerial vegetation is greyer than its nominal colour: lift the blue of vegetated classes
_LO[
    [
        PERVIOUS,
        CONIFEROUS,
        DECIDUOUS,
        BRUSHWOOD,
        HERBACEOUS,
        AGRICULTURAL,
        PLOWED,
        MIXED,
        LIGNEOUS,
        CLEAR_CUT,
    ],
    2,
] += 20.0

# Luminance noise (DN, per pixel) and canopy texture amplitude (DN) per class.
_GRAIN = np.full(N_TABLE, 6.0, dtype=np.float32)
_GRAIN[[PERVIOUS, BRUSHWOOD, CLEAR_CUT, LIGNEOUS]] = 11.0
_GRAIN[[CONIFEROUS, DECIDUOUS, MIXED]] = 9.0
_GRAIN[[WATER, POOL, SNOW, GREENHOUSE]] = 3.0
_CANOPY = np.zeros(N_TABLE, dtype=np.float32)
_CANOPY[[CONIFEROUS, DECIDUOUS, MIXED]] = 26.0
_CANOPY[[BRUSHWOOD, LIGNEOUS]] = 16.0
_CANOPY[[CLEAR_CUT, PERVIOUS]] = 7.0
_TREE_LIKE = np.zeros(N_TABLE, dtype=bool)
_TREE_LIKE[[CONIFEROUS, DECIDUOUS, MIXED, BRUSHWOOD, LIGNEOUS, CLEAR_CUT]] = True


@dataclass(frozen=True)
class Radiometry:
    """Per-acquisition colour harmonization: ``dn * gain + offset`` on R, G, B, NIR."""

    gain: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    offset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Radiometry:
        """A random mild shift, as between two survey campaigns."""
        common = rng.uniform(0.92, 1.08)
        gain = tuple(float(common * g) for g in rng.uniform(0.95, 1.05, 4))
        offset = tuple(float(o) for o in rng.uniform(-8, 8, 4))
        return cls(gain, offset)  # type: ignore[arg-type]


def colourize(
    scene: Scene,
    grid: Grid,
    cls: np.ndarray,
    obj: np.ndarray,
    rng: np.random.Generator,
    radiometry: Radiometry,
) -> np.ndarray:
    """Aerial bands of a rasterized scene.

    Args:
        scene: the scene ``cls``/``obj`` were rasterized from.
        grid: their grid (any pixel size; textures are defined in metres).
        cls, obj: ``(H, W)`` raw classes and object ids from :func:`~.scene.rasterize`.
        rng: source of the per-pixel noise.
        radiometry: colour shift of the acquisition.

    Returns:
        uint8 ``(5, H, W)``: R, G, B, NIR, elevation.
    """
    xs, ys = grid.xs(), grid.ys()
    attrs = scene.attrs
    ocls = scene.object_cls
    # per-object tables first, then one gather per quantity
    colour = (_LO[ocls] + attrs["tone"][:, None] * _SPAN[ocls]).T  # (4, n_objects)
    rgbn = np.take(colour, obj, axis=1)  # (4, H, W)
    height = attrs["height_m"][obj]

    vine_obj = ocls == VINEYARD
    striped_obj = attrs["stripe_amp"] > 0
    if striped_obj[obj].any():
        ang = attrs["stripe_angle"]
        freq = np.float32(2 * np.pi) / attrs["stripe_m"]
        lx, ly = (xs - grid.x_min).astype(np.float32), (ys - grid.y_max).astype(np.float32)
        wave = np.sin(
            lx[None, :] * (np.cos(ang) * freq)[obj] + ly[:, None] * (np.sin(ang) * freq)[obj]
        )
        rgbn += np.where(striped_obj & ~vine_obj, attrs["stripe_amp"], 0)[obj] * wave
        vine = vine_obj[obj]
        if vine.any():
            row = vine & (wave > 0.1)  # vine rows over bare inter-rows
            rgbn[:, row] = _VINE[:, None] + 10.0 * (attrs["tone"][obj[row]] - 0.5)
            height = np.where(vine, np.where(row, np.float32(1.6), np.float32(0)), height)

    canopy = _CANOPY[ocls][obj]
    if canopy.any():
        crowns = ValueNoise(2.4, scene.seed * 4 + 5, 2).grid(xs, ys)
        rgbn += canopy * crowns
        height *= np.where(_TREE_LIKE[ocls][obj], 0.78 + 0.22 * crowns, np.float32(1))
    grain = rng.standard_normal(obj.shape, dtype=np.float32)
    speckle = rng.standard_normal(obj.shape, dtype=np.float32)
    rgbn += _GRAIN[ocls][obj] * grain
    rgbn += _SPECKLE[:, None, None] * speckle
    gain = _RESPONSE_GAIN * np.asarray(radiometry.gain, np.float32)
    offset = _RESPONSE_OFFSET * np.asarray(radiometry.gain, np.float32) + radiometry.offset
    rgbn *= gain[:, None, None]
    rgbn += offset.astype(np.float32)[:, None, None] + np.float32(0.5)

    out = np.empty((5, *obj.shape), dtype=np.uint8)
    np.clip(rgbn, 0, 255.4, out=rgbn)
    out[:4] = rgbn  # truncation of x + 0.5: rounding
    elev = height * np.float32(ELEVATION_DN_PER_M) + 1.5 * speckle + 0.5
    out[4] = np.clip(elev, 0, 255.4, out=elev)
    return out


def render_aerial(
    scene: Scene, grid: Grid, rng: np.random.Generator, radiometry: Radiometry
) -> tuple[np.ndarray, np.ndarray]:
    """Rasterize and colour a scene window.

    Returns:
        ``(image, mask)``: uint8 ``(5, H, W)`` (R, G, B, NIR, elevation) and uint8 ``(H, W)`` raw
        class values 1..19.
    """
    cls, obj = rasterize(scene, grid)
    return colourize(scene, grid, cls, obj, rng, radiometry), cls
