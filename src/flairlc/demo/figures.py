"""Figures of the ``flairlc demo`` report: sample patches, seasonal profiles, class maps, areas.

Every figure is a :class:`matplotlib.figure.Figure` drawn on its own Agg canvas (never pyplot, so
no global state changes and no figure leaks) and written as a PNG atomically: to a temporary file
in the target folder, then renamed over the target. Class maps always use the nomenclature
colours of :mod:`flairlc.nomenclature`, with fixed colour limits so a colour never shifts between
panels.

Seasonal profiles follow the idea of Figure 2 of the FLAIR #2 paper (Garioud et al., 2023, "FLAIR:
a Country-Scale Land Cover Semantic Segmentation Dataset From Multi-Source Optical Imagery"): the
NDVI of the Sentinel-2 pixels of each class over the year, mean ± standard deviation.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from rasterio.enums import Resampling

from flairlc import nomenclature as nom
from flairlc.data.layout import discover_patches
from flairlc.data.readers import AERIAL_PIXEL_SIZE_M, read_mask
from flairlc.data.sentinel import SENTINEL_PIXEL_SIZE_M, SuperArea, cloud_cover, window_slice
from flairlc.evaluation.report import atomic_write_bytes

#: Cloud or snow probability (0–100) at or above which a Sentinel-2 pixel is left out.
CLOUD_PROB_THRESHOLD = 60
#: Reflectance (×10 000) shown as full brightness in Sentinel-2 true-colour panels.
S2_DISPLAY_MAX_REFLECTANCE = 3000.0
#: Indices of B2, B3, B4 (blue, green, red) and B8 (near infrared) in FLAIR Sentinel-2 arrays.
S2_BLUE, S2_GREEN, S2_RED, S2_NIR = 0, 1, 2, 6
#: Day of year of the first day of each month (non-leap year), for month ticks.
_MONTH_START_DOY = (1, 32, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335)
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DPI = 110


# -- shared helpers ------------------------------------------------------------------------------


def save_figure(fig: Figure, out_path: Path, dpi: int = _DPI) -> Path:
    """Render ``fig`` with the Agg canvas and write it as a PNG atomically; returns the path."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return atomic_write_bytes(Path(out_path), buf.getvalue())


def class_colormap(nomenclature: str = "baseline") -> ListedColormap:
    """A colormap of the nomenclature colours, index ``k`` → colour of class ``k``.

    Use with ``vmin=-0.5, vmax=K-0.5`` (see :func:`_class_norm_kwargs`); masked pixels (nodata)
    are transparent.
    """
    cmap = ListedColormap(nom.class_colors(nomenclature), name=f"flair_{nomenclature}")
    return cmap.with_extremes(bad=(1.0, 1.0, 1.0, 0.0))


def _class_norm_kwargs(nomenclature: str) -> dict[str, Any]:
    k = nom.num_classes(nomenclature)
    return {
        "cmap": class_colormap(nomenclature),
        "vmin": -0.5,
        "vmax": k - 0.5,
        "interpolation": "nearest",
    }


def _color_by_name(name: str) -> str:
    """Nomenclature colour of a class name (grey when no nomenclature knows the name)."""
    for cls in (*nom.BASELINE_CLASSES, *nom.RAW_CLASSES):
        if cls.name == name:
            return cls.color
    return "#808080"


def _is_light(color: str) -> bool:
    """Whether a colour is light enough to vanish on a white background."""
    r, g, b = to_rgb(color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.75


def _class_legend_handles(nomenclature: str, indices: Sequence[int] | None = None) -> list[Patch]:
    chosen = nom.classes(nomenclature)
    if indices is not None:
        wanted = set(int(i) for i in indices)
        chosen = tuple(c for c in chosen if c.index in wanted)
    return [
        Patch(facecolor=c.color, edgecolor="black", linewidth=0.5, label=c.name) for c in chosen
    ]


def footprint_pixels(patch_size_px: int) -> int:
    """Side, in 10 m Sentinel-2 pixels, of an aerial patch of ``patch_size_px`` 0.2 m pixels.

    ``round(patch_size_px × 0.2 / 10)``, at least 1 (a 512-pixel patch covers 10 S2 pixels).
    """
    return max(1, round(patch_size_px * AERIAL_PIXEL_SIZE_M / SENTINEL_PIXEL_SIZE_M))


def block_majority(mask: np.ndarray, footprint: int, num_classes: int) -> np.ndarray:
    """The majority class of the aerial pixels under each Sentinel-2 pixel of a footprint.

    The mask is cropped (centred) to ``footprint × block`` pixels per side, ``block =
    min(H, W) // footprint``, then cut into ``block × block`` blocks. Ties go to the smallest index.

    Args:
        mask: ``(H, W)`` zero-based class indices (values ``≥ num_classes`` are ignored).
        footprint: side of the footprint in Sentinel-2 pixels.
        num_classes: ``K``.

    Returns:
        int64 ``(footprint, footprint)`` class indices; ``-1`` where no pixel had a valid class.
    """
    mask = np.asarray(mask)
    size = min(mask.shape)
    block = size // footprint
    if block < 1:
        raise ValueError(f"a {mask.shape} mask cannot cover a {footprint}-pixel footprint")
    side = block * footprint
    top, left = (mask.shape[0] - side) // 2, (mask.shape[1] - side) // 2
    crop = mask[top : top + side, left : left + side].astype(np.int64)
    blocks = crop.reshape(footprint, block, footprint, block).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(footprint * footprint, block * block)
    valid = (blocks >= 0) & (blocks < num_classes)
    block_ids = np.broadcast_to(np.arange(footprint * footprint)[:, None], blocks.shape)
    counts = np.bincount(
        (block_ids * num_classes + blocks)[valid], minlength=footprint * footprint * num_classes
    ).reshape(footprint * footprint, num_classes)
    majority = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)
    return majority.reshape(footprint, footprint)


def _as_numpy(x: Any) -> np.ndarray:
    """A NumPy view of an array or a CPU torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _stretch(image: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` uint8 bands → ``(H, W, 3)`` float in [0, 1] for display."""
    return np.moveaxis(image.astype(np.float32) / 255.0, 0, -1)


# -- sample patches ------------------------------------------------------------------------------


def least_cloudy_date(sentinel: np.ndarray, masks: np.ndarray | None = None) -> int:
    """Index of the date to show from a Sentinel-2 window.

    Args:
        sentinel: ``(T, 10, S, S)`` reflectance ×10 000 (dates of zeros are padding).
        masks: optional ``(T, 2, S, S)`` snow and cloud probabilities (0–100), channel 0 snow, 1 cloud.

    Returns:
        With masks, the date of least cloud/snow cover; without, the non-padding date of lowest
        median blue (B2) reflectance (clouds and haze are bright in the blue band); ties → the
        earliest such date.
    """
    t = sentinel.shape[0]
    present = np.abs(sentinel.reshape(t, -1)).sum(axis=1) > 0
    if not present.any():
        return t // 2
    if masks is not None:
        score = cloud_cover(masks, CLOUD_PROB_THRESHOLD)
    else:
        score = np.median(sentinel[:, S2_BLUE].reshape(t, -1), axis=1).astype(np.float64)
    score = np.where(present, score, np.inf)
    return int(np.argmin(score))


def plot_sample_patches(
    samples: list[dict],
    predictions: Mapping[str, list[np.ndarray]],
    out_path: Path,
    nomenclature: str = "baseline",
    dpi: int = _DPI,
) -> Path:
    """A grid of test patches: inputs, ground truth and each model's prediction.

    One row per sample; columns: RGB, false-colour infrared (NIR, R, G), elevation, one
    Sentinel-2 date in true colour with the patch footprint outlined (when samples hold
    ``sentinel``), ground truth (when they hold ``mask``), then one column per model. A legend of
    the classes goes below.

    Args:
        samples: dataset samples (NumPy arrays or CPU tensors): ``aerial`` uint8 ``(5, H, W)``;
            optional ``sentinel`` float ``(T, 10, S, S)`` reflectance ×10 000, optional
            ``sentinel_masks`` ``(T, 2, S, S)`` snow/cloud probabilities (channel 0 snow, 1 cloud), ``mask`` ``(H, W)``
            zero-based indices, ``id`` and ``domain`` (row labels).
        predictions: model name → one ``(H, W)`` index map per sample, in the order of
            ``samples``.
        out_path: PNG to write.
        nomenclature: ``"baseline"`` or ``"raw"``.
        dpi: resolution of the PNG.

    Returns:
        ``out_path``.
    """
    if not samples:
        raise ValueError("plot_sample_patches needs at least one sample")
    for name, maps in predictions.items():
        if len(maps) != len(samples):
            raise ValueError(f"model {name!r}: {len(maps)} predictions for {len(samples)} samples")
    has_s2 = all("sentinel" in s for s in samples)
    has_mask = all("mask" in s for s in samples)
    columns = ["RGB", "IRC (NIR, R, G)", "elevation"]
    columns += ["Sentinel-2 (true colour)"] if has_s2 else []
    columns += ["ground truth"] if has_mask else []
    columns += list(predictions)

    n_rows, n_cols = len(samples), len(columns)
    fig = Figure(figsize=(2.2 * n_cols, 2.2 * n_rows + 0.9))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    class_kwargs = _class_norm_kwargs(nomenclature)
    for r, sample in enumerate(samples):
        aerial = _as_numpy(sample["aerial"])
        height = aerial.shape[-2]
        panels: list[tuple[str, Any]] = [
            ("rgb", _stretch(aerial[[0, 1, 2]])),
            ("rgb", _stretch(aerial[[3, 0, 1]])),
            ("grey", aerial[4]),
        ]
        if has_s2:
            panels.append(("s2", sample))
        if has_mask:
            panels.append(("classes", _as_numpy(sample["mask"])))
        panels += [("classes", _as_numpy(maps[r])) for maps in predictions.values()]
        for c, (kind, data) in enumerate(panels):
            ax = axes[r, c]
            if kind == "rgb":
                ax.imshow(data, interpolation="nearest")
            elif kind == "grey":
                ax.imshow(data, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            elif kind == "s2":
                _draw_sentinel_panel(ax, data, height)
            else:
                ax.imshow(
                    np.ma.masked_greater_equal(data, nom.num_classes(nomenclature)), **class_kwargs
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
        label = " ".join(str(sample[k]) for k in ("domain", "id") if k in sample)
        if label:
            axes[r, 0].set_ylabel(label, fontsize=8)
    handles = _class_legend_handles(nomenclature)
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=min(7, len(handles)),
        fontsize=7,
        frameon=False,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.subplots_adjust(bottom=0.9 / (2.2 * n_rows + 0.9) + 0.02, wspace=0.05, hspace=0.08)
    return save_figure(fig, out_path, dpi)


def _draw_sentinel_panel(ax: Any, sample: dict, aerial_size_px: int) -> None:
    """Draw one true-colour date of ``sample['sentinel']`` with the patch footprint outlined."""
    sentinel = _as_numpy(sample["sentinel"]).astype(np.float32)
    masks = sample.get("sentinel_masks")
    t = least_cloudy_date(sentinel, None if masks is None else _as_numpy(masks))
    rgb = sentinel[t, [S2_RED, S2_GREEN, S2_BLUE]] / S2_DISPLAY_MAX_REFLECTANCE
    ax.imshow(np.clip(np.moveaxis(rgb, 0, -1), 0.0, 1.0), interpolation="nearest")
    size = sentinel.shape[-1]
    side = aerial_size_px * AERIAL_PIXEL_SIZE_M / SENTINEL_PIXEL_SIZE_M
    # The window is centred on pixel size // 2 (see flairlc.data.sentinel.window_slice).
    centre = size // 2
    ax.add_patch(
        Rectangle(
            (centre - side / 2, centre - side / 2),
            side,
            side,
            fill=False,
            edgecolor="red",
            linewidth=1.2,
        )
    )
    if "dates_days" in sample:
        days = _as_numpy(sample["dates_days"])
        if days.shape[0] > t:
            ax.set_xlabel(f"date {t + 1}/{sentinel.shape[0]} ({int(days[t]):+d} d)", fontsize=7)


# -- seasonal profiles ---------------------------------------------------------------------------


def seasonal_profiles(
    root: Path,
    split: str = "train",
    index: str = "ndvi",
    max_patches: int = 200,
    nomenclature: str = "baseline",
    min_pixels: int = 20,
    bin_days: int = 1,
) -> dict[str, dict[str, list]]:
    """NDVI of the Sentinel-2 pixels of each class through the year, mean and std per day.

    For each patch (at most ``max_patches``, evenly spread over the split's patches that have a
    mask, a super-area and a centroid): the footprint window (``footprint_pixels(H)`` pixels,
    centred on the centroid) of the super-area is read; each of its pixels takes the majority
    class of the aerial pixels under it (:func:`block_majority`); pixels whose cloud or snow
    probability is ``≥ 60`` at a date are left out for that date. Values are pooled over
    patches by day of year (the year itself is ignored).

    Args:
        root: FLAIR dataset root.
        split: ``"train"`` or ``"test"``.
        index: spectral index; only ``"ndvi"`` (``(B8 − B4) / (B8 + B4)``) is available.
        max_patches: upper bound on patches read.
        nomenclature: ``"baseline"`` or ``"raw"``.
        min_pixels: a class is kept when it has at least this many valid pixel-dates in all.
        bin_days: width of the day-of-year bins (1: one point per day of year).

    Returns:
        ``{class name: {"doy": [...], "mean": [...], "std": [...], "count": [...]}}`` for the
        classes kept, in nomenclature order; ``doy`` are day-of-year bin centres (1..366), ``std``
        the population standard deviation, ``count`` the pixel-dates of each bin.

    Raises:
        ValueError: on an unknown index, or when no patch of the split has what is needed.
    """
    if index.lower() != "ndvi":
        raise ValueError(f"unknown spectral index {index!r}: only 'ndvi' is available")
    if bin_days < 1:
        raise ValueError(f"bin_days must be at least 1, got {bin_days}")
    records = [
        r
        for r in discover_patches(root, splits=(split,))
        if r.mask_path is not None and r.sentinel is not None and r.centroid is not None
    ]
    if not records:
        raise ValueError(
            f"no {split} patch under {root} has a mask, a Sentinel-2 super-area and a centroid: "
            "seasonal profiles need all three (run `flairlc check` on the root)"
        )
    if len(records) > max_patches:
        chosen = np.unique(np.linspace(0, len(records) - 1, max_patches).round().astype(int))
        records = [records[i] for i in chosen]

    k = nom.num_classes(nomenclature)
    n_bins = 366 // bin_days + 1
    count = np.zeros(n_bins * k, dtype=np.float64)
    total = np.zeros(n_bins * k, dtype=np.float64)
    total_sq = np.zeros(n_bins * k, dtype=np.float64)
    super_areas: dict[Path, SuperArea] = {}
    for record in records:
        assert record.sentinel is not None and record.centroid is not None  # filtered above
        area = super_areas.get(record.sentinel.data)
        if area is None:
            area = super_areas[record.sentinel.data] = SuperArea(record.sentinel)
        mask = read_mask(record.mask_path, nomenclature)
        fp = footprint_pixels(min(mask.shape))
        classes = block_majority(mask, fp, k).reshape(-1)  # (P,)
        row, col = record.centroid
        data = window_slice(area.data, row, col, fp)  # (T, 10, fp, fp)
        probs = window_slice(area.masks, row, col, fp)  # (T, 2, fp, fp)
        nir = data[:, S2_NIR].reshape(len(area.dates), -1).astype(np.float64)
        red = data[:, S2_RED].reshape(len(area.dates), -1).astype(np.float64)
        denom = nir + red
        with np.errstate(divide="ignore", invalid="ignore"):
            ndvi = np.where(denom > 0, (nir - red) / denom, np.nan)  # (T, P)
        clear = (probs < CLOUD_PROB_THRESHOLD).all(axis=1).reshape(ndvi.shape)
        valid = clear & np.isfinite(ndvi) & (classes >= 0)[None, :]
        doy = np.asarray([d.timetuple().tm_yday for d in area.dates], dtype=np.int64)
        bins = (doy - 1) // bin_days  # (T,)
        idx = (bins[:, None] * k + classes[None, :])[valid]
        values = ndvi[valid]
        count += np.bincount(idx, minlength=count.size)
        total += np.bincount(idx, weights=values, minlength=count.size)
        total_sq += np.bincount(idx, weights=values * values, minlength=count.size)

    count, total, total_sq = (a.reshape(n_bins, k) for a in (count, total, total_sq))
    names = nom.class_names(nomenclature)
    profiles: dict[str, dict[str, list]] = {}
    for c in range(k):
        if count[:, c].sum() < max(min_pixels, 1):
            continue
        present = np.flatnonzero(count[:, c] > 0)
        n = count[present, c]
        mean = total[present, c] / n
        var = np.maximum(total_sq[present, c] / n - mean * mean, 0.0)
        profiles[names[c]] = {
            "doy": [int(b * bin_days + 1 + (bin_days - 1) // 2) for b in present],
            "mean": mean.tolist(),
            "std": np.sqrt(var).tolist(),
            "count": n.astype(np.int64).tolist(),
        }
    return profiles


def plot_seasonal_profiles(
    root: Path,
    out_path: Path,
    split: str = "train",
    index: str = "ndvi",
    max_patches: int = 200,
    nomenclature: str = "baseline",
    min_pixels: int = 20,
    bin_days: int = 1,
    dpi: int = _DPI,
) -> tuple[Path, dict[str, dict[str, list]]]:
    """Plot the yearly NDVI profile of each class (mean line, ± std band), as the paper's Fig. 2.

    The numbers come from :func:`seasonal_profiles` (same arguments); the x axis is the day of
    year with month ticks, one line per class in its nomenclature colour (light colours get a dark
    outline so they stay visible on white).

    Returns:
        ``out_path`` and the profiles dictionary of :func:`seasonal_profiles`.
    """
    profiles = seasonal_profiles(
        root, split, index, max_patches, nomenclature, min_pixels, bin_days
    )
    fig = Figure(figsize=(10, 5))
    ax = fig.add_subplot()
    outline = [patheffects.withStroke(linewidth=3.0, foreground="#333333")]
    for name, prof in profiles.items():
        color = _color_by_name(name)
        doy, mean, std = (np.asarray(prof[key], dtype=np.float64) for key in ("doy", "mean", "std"))
        ax.fill_between(doy, mean - std, mean + std, color=color, alpha=0.18, linewidth=0)
        (line,) = ax.plot(
            doy, mean, color=color, linewidth=1.6, marker="o", markersize=2.5, label=name
        )
        if _is_light(color):
            line.set_path_effects(outline)
    ax.set_xlim(1, 366)
    ax.set_xticks(_MONTH_START_DOY, labels=_MONTH_NAMES)
    ax.set_xlabel("month (day of year)")
    ax.set_ylabel(f"{index.upper()} (mean ± std)")
    ax.set_title(f"Seasonal {index.upper()} profile per class (Sentinel-2, {split} split)")
    ax.grid(alpha=0.3)
    if profiles:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    else:
        ax.text(
            0.5,
            0.5,
            "no class has enough cloud-free Sentinel-2 pixels",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    return save_figure(fig, out_path, dpi), profiles


# -- maps and areas ------------------------------------------------------------------------------


def plot_area_table(
    areas: Mapping[str, float], out_path: Path, title: str = "Area per class", dpi: int = _DPI
) -> Path:
    """Horizontal bars of the area of each class, in hectares, in the nomenclature colours.

    Args:
        areas: class name → area in hectares, drawn top to bottom in the mapping's order.
        out_path: PNG to write.
        title: figure title.
        dpi: resolution of the PNG.

    Returns:
        ``out_path``.
    """
    names = list(areas)
    values = np.asarray([float(areas[n]) for n in names], dtype=np.float64)
    fig = Figure(figsize=(7.5, 1.0 + 0.32 * max(len(names), 1)))
    ax = fig.add_subplot()
    ax.barh(
        range(len(names)),
        values,
        color=[_color_by_name(n) for n in names],
        edgecolor="black",
        linewidth=0.5,
    )
    ax.set_yticks(range(len(names)), labels=names)
    ax.invert_yaxis()
    top = float(values.max()) if values.size else 0.0
    for i, v in enumerate(values):
        ax.text(v + 0.01 * max(top, 1e-9), i, f"{v:,.2f} ha", va="center", fontsize=7)
    ax.set_xlim(0, top * 1.18 if top > 0 else 1.0)
    ax.set_xlabel("area (ha)")
    ax.set_title(title)
    return save_figure(fig, out_path, dpi)


def nice_scale_length(max_length: float) -> float:
    """The largest 1, 2 or 5 × 10ⁿ not above ``max_length`` (> 0), for a scale bar."""
    if max_length <= 0:
        raise ValueError(f"scale bar length must be positive, got {max_length}")
    exponent = math.floor(math.log10(max_length))
    for step in (5.0, 2.0, 1.0):
        length = step * 10.0**exponent
        if length <= max_length * (1 + 1e-9):
            return length
    return 10.0**exponent


def render_map_png(
    map_path: Path,
    out_path: Path,
    max_size: int = 1024,
    nomenclature: str | None = None,
    dpi: int = _DPI,
) -> Path:
    """Draw a class-map GeoTIFF in the nomenclature colours, with a legend and a scale bar.

    The map is read decimated (nearest neighbour, rasterio ``out_shape``) so its longer side is at
    most ``max_size`` pixels; nodata (255, or the file's nodata value) is transparent on white.
    The scale bar is in metres from the transform (drawn only for a projected CRS).

    Args:
        map_path: single-band uint8 map of zero-based class indices.
        out_path: PNG to write.
        max_size: longest side of the displayed raster, pixels.
        nomenclature: ``"baseline"`` or ``"raw"``; None picks ``"raw"`` when a valid value above
            12 occurs, else ``"baseline"``.
        dpi: resolution of the PNG.

    Returns:
        ``out_path``.
    """
    with rasterio.open(map_path) as ds:
        scale = max(ds.height, ds.width) / max_size
        shape = (ds.height, ds.width)
        if scale > 1:
            shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        classes = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        nodata = nom.NODATA_VALUE if ds.nodata is None else int(ds.nodata)
        pixel_m = abs(ds.transform.a) * ds.width / shape[1]
        projected = ds.crs is not None and ds.crs.is_projected
    valid = classes != nodata
    if nomenclature is None:
        high = valid & (classes >= nom.NUM_BASELINE_CLASSES) & (classes < nom.NUM_RAW_CLASSES)
        nomenclature = "raw" if high.any() else "baseline"
    k = nom.num_classes(nomenclature)
    shown = np.ma.masked_where(~valid | (classes >= k), classes)

    height, width = shown.shape
    fig_w = 8.0
    fig = Figure(figsize=(fig_w + 2.8, max(2.5, fig_w * height / width)))
    ax = fig.add_subplot()
    ax.set_facecolor("white")
    ax.imshow(shown, **_class_norm_kwargs(nomenclature))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(Path(map_path).name, fontsize=9)
    if projected and pixel_m > 0:
        _draw_scale_bar(ax, width, height, pixel_m)
    present = np.unique(shown.compressed()) if shown.count() else np.array([], dtype=int)
    handles = _class_legend_handles(nomenclature, present.tolist())
    if handles:
        ax.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            fontsize=8,
            frameon=False,
        )
    return save_figure(fig, out_path, dpi)


def _draw_scale_bar(ax: Any, width: int, height: int, pixel_m: float) -> None:
    """A black-and-white scale bar in the lower left, about a quarter of the map wide."""
    length_m = nice_scale_length(0.25 * width * pixel_m)
    length_px = length_m / pixel_m
    x0, y0 = 0.04 * width, 0.95 * height
    bar_h = max(0.012 * height, 0.5)
    ax.add_patch(
        Rectangle(
            (x0, y0 - bar_h), length_px, bar_h, facecolor="black", edgecolor="white", linewidth=0.8
        )
    )
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    text = ax.text(
        x0 + length_px / 2,
        y0 - 1.8 * bar_h,
        label,
        ha="center",
        va="bottom",
        fontsize=8,
        color="black",
    )
    text.set_path_effects([patheffects.withStroke(linewidth=2.5, foreground="white")])
