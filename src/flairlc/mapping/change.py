"""Land-cover change between two class maps of the same area (e.g. two survey years).

The change raster holds, for every pixel valid in both maps, the transition code
``a * K + b`` (``a`` = class in map A, ``b`` = class in map B, ``K`` classes), so an unchanged
pixel of class ``c`` has code ``c * (K + 1)``; pixels nodata in either map hold the nodata value.
It is uint8 with nodata 255 when ``K * K <= 255`` (baseline, K = 13: codes 0..168), else uint16
with nodata 65535 (raw nomenclature, K = 19).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from flairlc import nomenclature
from flairlc.mapping._common import area_decimals, map_class_names, row_strips
from flairlc.mapping.cog import finalize_cog, working_profile
from flairlc.mapping.inputs import MappingInputError
from flairlc.outputs import check_writable, check_writable_dir, same_file, save_figure, write_text

M2_PER_HA = 10_000.0
#: Decimals of the percentages written to JSON.
PERCENT_DECIMALS = 4


@dataclass
class ChangeResult:
    """Result of :func:`compute_change`.

    Attributes:
        class_names: names in index order (``K``).
        matrix_ha: float64 ``(K, K)`` transition areas in ha, rows = map A, columns = map B.
        pixel_area_m2: area of one pixel of A's grid, m².
        change_path: the change raster (codes ``a * K + b``).
        change_nodata: its nodata value.
        paths: tables and figure written (``csv``, ``json``, ``png``).
    """

    class_names: list[str]
    matrix_ha: np.ndarray
    pixel_area_m2: float
    change_path: Path
    change_nodata: int
    paths: dict[str, Path] = field(default_factory=dict)

    def _sum(self, rows, cols) -> float:
        return float(self.matrix_ha[np.ix_(rows, cols)].sum())

    def _split(self, group: tuple[int, ...]) -> tuple[list[int], list[int]]:
        k = len(self.class_names)
        inside = [i for i in group if i < k]
        return inside, [i for i in range(k) if i not in inside]

    @property
    def newly_artificialized_ha(self) -> float:
        """Non-artificial in A, artificial in B, ha."""
        art, other = self._split(nomenclature.indices_named(nomenclature.ARTIFICIAL_CLASS_NAMES, self.class_names))
        return self._sum(other, art)

    @property
    def forest_loss_ha(self) -> float:
        """Forest in A, non-forest in B, ha."""
        forest, other = self._split(nomenclature.indices_named(nomenclature.FOREST_CLASS_NAMES, self.class_names))
        return self._sum(forest, other)

    @property
    def forest_gain_ha(self) -> float:
        """Non-forest in A, forest in B, ha."""
        forest, other = self._split(nomenclature.indices_named(nomenclature.FOREST_CLASS_NAMES, self.class_names))
        return self._sum(other, forest)

    @property
    def compared_ha(self) -> float:
        """Area valid in both maps, ha."""
        return float(self.matrix_ha.sum())

    @property
    def changed_ha(self) -> float:
        """Area whose class differs between A and B, ha."""
        return self.compared_ha - float(np.trace(self.matrix_ha))

    @property
    def changed_percent(self) -> float:
        """Changed share of the compared area, %."""
        return 100.0 * self.changed_ha / self.compared_ha if self.compared_ha else 0.0

    @property
    def ha_decimals(self) -> int:
        """Decimals of an area in ha that write whole pixels exactly (6 for 0.2 m pixels)."""
        return area_decimals(self.pixel_area_m2 / M2_PER_HA)

    def summary(self) -> dict[str, float]:
        """The headline figures (ha rounded to the pixel area's precision, % to 4 decimals)."""
        d = self.ha_decimals
        return {
            "compared_ha": round(self.compared_ha, d),
            "changed_ha": round(self.changed_ha, d),
            "changed_percent": round(self.changed_percent, PERCENT_DECIMALS),
            "newly_artificialized_ha": round(self.newly_artificialized_ha, d),
            "forest_loss_ha": round(self.forest_loss_ha, d),
            "forest_gain_ha": round(self.forest_gain_ha, d),
        }

    def to_csv(self) -> str:
        """The transition matrix (ha) as CSV, rows = A, columns = B."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["from_A \\ to_B", *self.class_names])
        for name, row in zip(self.class_names, self.matrix_ha):
            w.writerow([name, *(f"{v:.{self.ha_decimals}f}" for v in row)])
        return buf.getvalue()


def _open_b_on_a_grid(a, b, path_a: Path, path_b: Path):
    """Map B itself when on A's grid, else a nearest-neighbour WarpedVRT of B onto A's grid."""
    if b.crs == a.crs and b.transform.almost_equals(a.transform) and b.shape == a.shape:
        return b
    if a.crs is None or b.crs is None:
        raise MappingInputError(f"cannot align {path_b} onto {path_a}: {'both have' if a.crs is None and b.crs is None else 'one has'} no CRS")
    try:
        bb = transform_bounds(b.crs, a.crs, *b.bounds)
    except Exception as exc:  # noqa: BLE001
        raise MappingInputError(f"cannot reproject {path_b} ({b.crs}) onto {path_a} ({a.crs}): {exc}") from exc
    ab = a.bounds
    if bb[0] >= ab[2] or bb[2] <= ab[0] or bb[1] >= ab[3] or bb[3] <= ab[1]:
        raise MappingInputError(f"maps {path_a} and {path_b} do not overlap")
    warnings.warn(
        f"map {path_b} is not on the grid of {path_a}: resampling it onto that grid (nearest neighbour)",
        stacklevel=3,
    )
    return WarpedVRT(b, crs=a.crs, transform=a.transform, width=a.width, height=a.height,
                     resampling=Resampling.nearest, nodata=nomenclature.NODATA_VALUE)


def compute_change(
    map_a: str | Path,
    map_b: str | Path,
    out_path: str | Path,
    out_dir: str | Path | None = None,
) -> ChangeResult:
    """Compare two class maps: transition matrix (ha), change raster and summaries.

    Args:
        map_a: class map of the earlier year (defines the grid).
        map_b: class map of the later year; resampled onto A's grid (nearest, with a warning)
            if its grid differs.
        out_path: change raster to write (COG; codes described in the module docstring).
        out_dir: folder for ``change.csv`` (matrix, ha), ``change.json`` (matrix + summaries) and
            ``change.png`` (heat map); default: the folder of ``out_path``.

    Returns:
        a :class:`ChangeResult`.

    Raises:
        MappingInputError: a map is missing, not single-band, or the two cannot be aligned.
    """
    path_a, path_b, out_path = Path(map_a), Path(map_b), Path(out_path)
    for p in (path_a, path_b):
        if not p.exists():
            raise MappingInputError(f"class map {p} does not exist")
        if same_file(p, out_path):
            raise MappingInputError(f"the change raster {out_path} would replace the input map {p}: give another name")
    report_dir = Path(out_dir) if out_dir else out_path.parent
    check_writable(out_path, "change raster")
    check_writable_dir(report_dir, "change report folder")
    with rasterio.open(path_a) as a, rasterio.open(path_b) as b_raw:
        for ds, p in ((a, path_a), (b_raw, path_b)):
            if ds.count != 1:
                raise MappingInputError(f"class map {p} has {ds.count} bands, expected 1")
        names_a, names_b = map_class_names(a), map_class_names(b_raw)
        if len(names_a) != len(names_b):
            raise MappingInputError(f"maps {path_a} ({len(names_a)} classes) and {path_b} ({len(names_b)}) differ in nomenclature")
        k = len(names_a)
        dtype, nodata = ("uint8", 255) if k * k <= 255 else ("uint16", 65535)
        b = _open_b_on_a_grid(a, b_raw, path_a, path_b)
        work = out_path.with_name(out_path.name + ".partial")
        grid = {"crs": a.crs, "transform": a.transform, "width": a.width, "height": a.height}
        counts = np.zeros(k * k, dtype=np.int64)
        try:
            with rasterio.open(work, "w", **working_profile(grid, 1, dtype, nodata)) as dst:
                dst.update_tags(FLAIRLC_CHANGE_CODES=f"a*{k}+b", FLAIRLC_NUM_CLASSES=str(k))
                for w in row_strips(a.height, a.width):
                    va = a.read(1, window=w).astype(np.int64)
                    vb = b.read(1, window=w).astype(np.int64)
                    valid = (va < k) & (vb < k)
                    code = np.where(valid, va * k + vb, nodata)
                    counts += np.bincount(code[valid], minlength=k * k)
                    dst.write(code.astype(dtype), 1, window=w)
        finally:
            if b is not b_raw:
                b.close()
        pixel_m2 = abs(a.transform.a * a.transform.e - a.transform.b * a.transform.d)
    finalize_cog(work, out_path, resampling="nearest")
    work.unlink(missing_ok=True)
    result = ChangeResult(names_a, counts.reshape(k, k) * pixel_m2 / M2_PER_HA, pixel_m2, out_path, nodata)
    result.paths = _write_change_outputs(result, report_dir, out_path.stem)
    return result


def _write_change_outputs(result: ChangeResult, out_dir: Path, stem: str) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    d = result.ha_decimals
    payload = {"rows": "map A", "columns": "map B", "unit": "ha", "class_names": result.class_names,
               "matrix_ha": np.round(result.matrix_ha, d).tolist(),
               "pixel_area_m2": round(result.pixel_area_m2, area_decimals(result.pixel_area_m2)),
               "summary": result.summary(), "change_raster": str(result.change_path)}
    paths = {
        "csv": write_text(out_dir / f"{stem}.csv", result.to_csv()),
        "json": write_text(out_dir / f"{stem}.json", json.dumps(payload, indent=1)),
    }
    k = len(result.class_names)
    fig, ax = plt.subplots(figsize=(0.5 * k + 3, 0.5 * k + 2))
    m = np.where(result.matrix_ha > 0, result.matrix_ha, np.nan)
    positive = result.matrix_ha[result.matrix_ha > 0]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size and positive.min() < positive.max() else None
    im = ax.imshow(m, cmap="viridis", norm=norm)
    ax.set_xticks(range(k), result.class_names, rotation=90)
    ax.set_yticks(range(k), result.class_names)
    ax.set_xlabel("map B (later)")
    ax.set_ylabel("map A (earlier)")
    s = result.summary()
    ax.set_title(f"Transitions (ha): {s['changed_ha']:.2f} ha changed ({s['changed_percent']:.1f} %)")
    fig.colorbar(im, ax=ax, label="ha")
    paths["png"] = save_figure(fig, out_dir / f"{stem}.png", bbox_inches="tight")
    plt.close(fig)
    return paths
