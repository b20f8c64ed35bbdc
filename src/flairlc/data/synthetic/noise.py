"""Smooth value noise defined in map coordinates (metres), evaluable on any regular grid.

Lattice values come from an integer hash of the lattice indices and a seed, so the same noise is
reproduced exactly whatever window or resolution it is evaluated on: a field of blobs drawn at
0.2 m for an aerial patch and at 2 m for a Sentinel-2 super-area agree. Evaluation on a regular
grid is separable: interpolate along x on the few lattice rows, then along y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M3 = np.uint64(0xFF51AFD7ED558CCD)
_M4 = np.uint64(0xC4CEB9FE1A85EC53)


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Uniform pseudo-random numbers in [0, 1) from integer coordinates and a seed.

    Args:
        ix, iy: integer arrays (broadcastable) of lattice indices, may be negative.
        seed: any non-negative integer.

    Returns:
        float64 array of the broadcast shape.
    """
    ix, iy = np.broadcast_arrays(np.asarray(ix, dtype=np.int64), np.asarray(iy, dtype=np.int64))
    with np.errstate(over="ignore"):
        h = ix.astype(np.uint64) * _M1
        h ^= iy.astype(np.uint64) * _M2
        h ^= np.uint64((seed * 0x165667B19E3779F9 + 0x27D4EB2F) % (1 << 64))
        h ^= h >> np.uint64(33)
        h *= _M3
        h ^= h >> np.uint64(33)
        h *= _M4
        h ^= h >> np.uint64(33)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _axis(coords: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Lattice interval index (from the first node), smoothstep weight, first node, node count."""
    u = np.asarray(coords, dtype=np.float64) / cell_m
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    f = (f * f * (3.0 - 2.0 * f)).astype(np.float32)  # C1-continuous blobs, no lattice creases
    first = int(i0.min())
    return i0 - first, f, first, int(i0.max()) - first + 2


@dataclass(frozen=True)
class ValueNoise:
    """Smooth noise in [-1, 1] with features of about ``cell_m`` metres.

    Attributes:
        cell_m: lattice spacing in metres.
        seed: hash seed; distinct seeds give independent fields.
        octaves: number of octaves summed (each half the cell size and half the amplitude).
    """

    cell_m: float
    seed: int
    octaves: int = 1

    def grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Evaluate on the grid ``ys × xs`` (metres) and return a float32 ``(len(ys), len(xs))``."""
        out = np.zeros((len(ys), len(xs)), dtype=np.float32)
        total = 0.0
        for k in range(self.octaves):
            cell = self.cell_m / 2**k
            amp = np.float32(0.5**k)
            jx, fx, x0, nx = _axis(xs, cell)
            jy, fy, y0, ny = _axis(ys, cell)
            iy = np.arange(y0, y0 + ny)[:, None]
            ix = np.arange(x0, x0 + nx)[None, :]
            lattice = (2.0 * hash01(ix, iy, self.seed * 7919 + k) - 1.0).astype(np.float32)
            # separable linear interpolation: along x on the few lattice rows, then along y
            rows = lattice[:, jx] * (1 - fx) + lattice[:, jx + 1] * fx  # (ny, W)
            rows *= amp
            step = rows[1:] - rows[:-1]
            out += rows[jy]
            out += step[jy] * fy[:, None]
            total += float(amp)
        return out / np.float32(total)

    def points(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """Evaluate at scattered points ``(xs[i], ys[i])`` (metres); float32 of their shape."""
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        out = np.zeros(xs.shape, dtype=np.float64)
        total = 0.0
        for k in range(self.octaves):
            cell = self.cell_m / 2**k
            amp = 0.5**k
            u, v = xs / cell, ys / cell
            i0, j0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
            fu, fv = u - i0, v - j0
            fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
            s = self.seed * 7919 + k
            v00 = hash01(i0, j0, s)
            v10 = hash01(i0 + 1, j0, s)
            v01 = hash01(i0, j0 + 1, s)
            v11 = hash01(i0 + 1, j0 + 1, s)
            val = (v00 * (1 - fu) + v10 * fu) * (1 - fv) + (v01 * (1 - fu) + v11 * fu) * fv
            out += amp * (2.0 * val - 1.0)
            total += amp
        return (out / total).astype(np.float32)
