"""Scoring a folder of written predictions (``PRED_{id}.tif``) against FLAIR masks, offline.

Predictions are GeoTIFFs ``PRED_{id}.tif``: one band of zero-based class indices (uint8), on the
grid of ``IMG_{id}.tif``, anywhere under the prediction folder. Masks are FLAIR ``MSK_{id}.tif``
(raw values 1..19), folded to the chosen nomenclature with
:func:`flairlc.nomenclature.raw_to_index`; mask pixels outside 1..19 are not counted. Patches are
matched by id, never by file order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from flairlc.evaluation.confusion import ConfusionAccumulator, confusion_matrix
from flairlc.evaluation.report import EvaluationResult
from flairlc.nomenclature import NODATA_VALUE, class_names, num_classes, raw_to_index

#: File name of a prediction; group 1 is the patch id.
PREDICTION_PATTERN = re.compile(r"^PRED_(.+)\.tif$")
#: How many offending files an error message names before giving a count.
MAX_LISTED = 10


class PredictionFolderError(ValueError):
    """A prediction folder that cannot be scored; the message names the offending files."""


def _listing(items: list[str], what: str) -> str:
    shown = "\n".join(f"  - {x}" for x in items[:MAX_LISTED])
    more = f"\n  … and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"{len(items)} {what}:\n{shown}{more}"


def find_predictions(pred_dir: Path | str) -> dict[str, Path]:
    """Find ``PRED_{id}.tif`` files under ``pred_dir`` (recursively): patch id → path.

    Raises:
        PredictionFolderError: the folder does not exist, or an id occurs in more than one file.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise PredictionFolderError(f"prediction folder {pred_dir} does not exist")
    found: dict[str, list[Path]] = {}
    for path in sorted(pred_dir.rglob("PRED_*.tif")):
        match = PREDICTION_PATTERN.match(path.name)
        if match and path.is_file():
            found.setdefault(match.group(1), []).append(path)
    duplicates = [f"{i}: {', '.join(map(str, ps))}" for i, ps in found.items() if len(ps) > 1]
    if duplicates:
        raise PredictionFolderError(
            f"prediction folder {pred_dir}: "
            + _listing(duplicates, "patch ids with more than one prediction file")
        )
    return {i: ps[0] for i, ps in found.items()}


def _read_band(path: Path) -> np.ndarray:
    """Band 1 of a single-band raster, ``(H, W)``; raises ValueError for a multi-band file."""
    with rasterio.open(path) as src:
        if src.count != 1:
            raise ValueError(f"{src.count} bands, expected 1")
        return src.read(1)


def _progress(items: list[str], enabled: bool) -> Iterable[str]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="scoring predictions", unit="patch")


def evaluate_prediction_folder(
    pred_dir: Path | str,
    masks: Mapping[str, Path | str],
    domains: Mapping[str, str] | None = None,
    nomenclature: str = "baseline",
    progress: bool = False,
) -> EvaluationResult:
    """Score every ``PRED_{id}.tif`` under ``pred_dir`` against its mask ``masks[id]``.

    Args:
        pred_dir: folder searched recursively for ``PRED_{id}.tif``.
        masks: patch id (e.g. ``"077413"``) → path of ``MSK_{id}.tif``; one prediction is expected
            per mask, and none other.
        domains: patch id → domain (e.g. ``"D004_2021"``) for per-domain scores; every id of
            ``masks`` must have one. ``None``: overall scores only.
        nomenclature: ``"baseline"`` (13 classes, 'other' excluded from mIoU) or ``"raw"`` (19).
        progress: show a progress bar.

    Returns:
        :class:`EvaluationResult` with the overall and per-domain confusion matrices.

    Raises:
        PredictionFolderError: missing predictions, predictions without a mask, unreadable files,
            a prediction whose size differs from its mask, or prediction values outside
            ``0..K-1``; the message names the files (up to :data:`MAX_LISTED`, then a count).
    """
    pred_dir = Path(pred_dir)
    masks = {str(i): Path(p) for i, p in masks.items()}
    predictions = find_predictions(pred_dir)

    problems: list[str] = []
    missing = sorted(set(masks) - set(predictions))
    extra = sorted(set(predictions) - set(masks))
    if missing:
        problems.append(
            _listing(
                [f"PRED_{i}.tif (for mask {masks[i]})" for i in missing],
                f"masks have no prediction in {pred_dir}",
            )
        )
    if extra:
        problems.append(_listing([str(predictions[i]) for i in extra], "predictions have no mask"))
    if domains is not None:
        no_domain = sorted(i for i in masks if i not in domains)
        if no_domain:
            problems.append(_listing(no_domain, "patch ids have no domain"))
    if problems:
        raise PredictionFolderError("cannot score predictions:\n" + "\n".join(problems))

    k = num_classes(nomenclature)
    acc = ConfusionAccumulator(k, ignore_index=NODATA_VALUE, class_names=class_names(nomenclature))
    unreadable: list[str] = []
    mis_sized: list[str] = []
    out_of_range: list[str] = []
    for pid in _progress(sorted(masks), progress):
        pred_path, mask_path = predictions[pid], masks[pid]
        try:
            pred = _read_band(pred_path)
        except (RasterioError, ValueError, OSError) as err:
            unreadable.append(f"{pred_path}: {err}")
            continue
        try:
            truth = raw_to_index(_read_band(mask_path), nomenclature)
        except (RasterioError, ValueError, OSError) as err:
            unreadable.append(f"{mask_path}: {err}")
            continue
        if pred.shape != truth.shape:
            mis_sized.append(
                f"{pred_path} is {pred.shape[0]}×{pred.shape[1]} but its mask {mask_path} is "
                f"{truth.shape[0]}×{truth.shape[1]} (rows×cols)"
            )
            continue
        if not np.issubdtype(pred.dtype, np.integer):
            out_of_range.append(f"{pred_path}: data type {pred.dtype}, expected integers")
            continue
        bad = (pred < 0) | (pred >= k)
        if bad.any():
            values = np.unique(pred[bad])[:10].tolist()
            out_of_range.append(f"{pred_path}: values {values} outside 0..{k - 1}")
            continue
        if not (unreadable or mis_sized or out_of_range):
            cm = confusion_matrix(truth, pred, k, ignore_index=NODATA_VALUE)
            acc.add(cm, domains[pid] if domains is not None else None)

    for items, what in (
        (unreadable, "files could not be read"),
        (mis_sized, "predictions differ in size from their mask"),
        (out_of_range, f"predictions hold values that are not class indices 0..{k - 1}"),
    ):
        if items:
            problems.append(_listing(items, what))
    if problems:
        raise PredictionFolderError("cannot score predictions:\n" + "\n".join(problems))
    return acc.result(
        metadata={
            "prediction_folder": str(pred_dir),
            "nomenclature": nomenclature,
            "num_patches": len(masks),
        }
    )
