"""Scoring a folder of written predictions (``PRED_{id}.tif``) against FLAIR masks, offline.

Predictions are GeoTIFFs ``PRED_{id}.tif``: one band of zero-based class indices (uint8), on the
grid of ``IMG_{id}.tif``, anywhere under the prediction folder. Those of ``flairlc predict`` carry
the model's nomenclature (tags :func:`flairlc.nomenclature.to_tags`, as maps do) and the classes
its mean scores leave out (:data:`EXCLUDED_TAG`): they are scored with them, as
``evaluate --checkpoint`` scores the model. Files without tags (older, or of other tools) are
scored with the nomenclature given, else the baseline (with a warning). Masks are FLAIR
``MSK_{id}.tif`` (raw values 1..19), or a FLAIR-HUB label (``AERIAL_LABEL-COSIA``, band 1 of
``ALL_LABEL-LPIS``), folded to the nomenclature with :func:`flairlc.nomenclature.raw_to_index`;
mask values of no class are not counted. Patches are matched by id, never by file order.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from flairlc import nomenclature as nomenclature_module
from flairlc.evaluation.confusion import ConfusionAccumulator, confusion_matrix
from flairlc.evaluation.report import EvaluationResult
from flairlc.nomenclature import NODATA_VALUE, Nomenclature, NomenclatureSpec, raw_to_index

#: File name of a prediction; group 1 is the patch id.
PREDICTION_PATTERN = re.compile(r"^PRED_(.+)\.tif$")
#: How many offending files an error message names before giving a count.
MAX_LISTED = 10
#: Tag of a prediction: the names of the classes the model's mean scores leave out (JSON list).
EXCLUDED_TAG = "FLAIRLC_EXCLUDED_CLASSES"


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


def _described_classes(path: Path) -> tuple[Nomenclature, tuple[int, ...]] | None:
    """The nomenclature and excluded class indices a prediction's tags give, or None without tags
    (or for a file that cannot be opened: the scoring pass names it)."""
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
    except (RasterioError, OSError):
        return None
    nomen = nomenclature_module.from_tags(tags)
    if nomen is None:
        return None
    try:
        names = json.loads(tags[EXCLUDED_TAG]) if EXCLUDED_TAG in tags else None
        excluded = nomen.unlabeled if names is None else tuple(nomen.index_of(n) for n in names)
    except (ValueError, TypeError) as error:
        raise PredictionFolderError(f"{path}: tag {EXCLUDED_TAG} is not a list of its classes: {error}") from None
    return nomen, tuple(sorted(excluded))


def tagged_nomenclature(predictions: Mapping[str, Path]) -> Nomenclature | None:
    """The nomenclature the first tagged prediction (by patch id) carries, or None when none is tagged."""
    for _, path in sorted(predictions.items()):
        described = _described_classes(path)
        if described is not None:
            return described[0]
    return None


def _describe(nomen: Nomenclature, excluded: tuple[int, ...]) -> str:
    left_out = ", ".join(nomen.names[k] for k in excluded) or "none"
    return f"{nomen.name!r} ({nomen.num_classes} classes, left out of the means: {left_out})"


def prediction_nomenclature(
    predictions: Mapping[str, Path], given: NomenclatureSpec | None = None, where: Path | str = "",
) -> tuple[Nomenclature, tuple[int, ...]]:
    """The classes to score a set of predictions with: their nomenclature and excluded classes.

    From the files' tags when they carry them (all the same, and the same as ``given`` if it is
    not None); else ``given``; else the baseline, with a warning.

    Args:
        predictions: patch id → ``PRED_{id}.tif``.
        given: a nomenclature for files without tags (see :func:`flairlc.nomenclature.get`).
        where: the prediction folder, for messages.

    Returns:
        ``(nomenclature, excluded)``: excluded are the indices left out of the mean scores.

    Raises:
        PredictionFolderError: files of different nomenclatures (or some without tags among
            tagged ones), or tags that contradict ``given``; one line naming the files.
    """
    described = {pid: _described_classes(path) for pid, path in sorted(predictions.items())}
    tagged = {pid: d for pid, d in described.items() if d is not None}
    if tagged:
        first, (nomen, excluded) = next(iter(tagged.items()))
        for pid, d in described.items():
            if d is None:
                raise PredictionFolderError(
                    f"{predictions[pid]} carries no nomenclature tags, but {predictions[first]} carries "
                    f"{_describe(nomen, excluded)}: score each model's predictions in a folder of their own"
                )
            other, other_excluded = d
            if not nomenclature_module.same(other, nomen) or other_excluded != excluded:
                raise PredictionFolderError(
                    f"{predictions[pid]} was written with the nomenclature {_describe(other, other_excluded)}, "
                    f"{predictions[first]} with {_describe(nomen, excluded)}: score each model's predictions "
                    "in a folder of their own"
                )
        if given is not None and not nomenclature_module.same(given, nomen):
            given_nomen = nomenclature_module.get(given)
            raise PredictionFolderError(
                f"{predictions[first]} was written with the nomenclature {nomen.name!r} ({nomen.num_classes} "
                f"classes: {', '.join(nomen.names)}), not the {given_nomen.name!r} given "
                f"({given_nomen.num_classes} classes: {', '.join(given_nomen.names)})"
            )
        return nomen, excluded
    if given is not None:
        nomen = nomenclature_module.get(given)
        return nomen, nomen.unlabeled
    nomen = nomenclature_module.get("baseline")
    if predictions:
        warnings.warn(
            f"the predictions in {where or 'the folder'} carry no nomenclature tags: scored with the "
            f"baseline's {nomen.num_classes} classes (give --nomenclature if they are of other classes)",
            stacklevel=3,
        )
    return nomen, nomen.unlabeled


def _read_band(path: Path, band: int | None = None) -> np.ndarray:
    """Band ``band`` of a raster, ``(H, W)``; ``None``: band 1 of a single-band raster (raises
    ValueError for a multi-band file, or one without band ``band``)."""
    with rasterio.open(path) as src:
        if band is None and src.count != 1:
            raise ValueError(f"{src.count} bands, expected 1")
        if band is not None and not 1 <= band <= src.count:
            raise ValueError(f"{src.count} band(s), no band {band}")
        return src.read(band or 1)


def _progress(items: list[str], enabled: bool) -> Iterable[str]:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="scoring predictions", unit="patch")


def evaluate_prediction_folder(
    pred_dir: Path | str,
    masks: Mapping[str, Path | str],
    domains: Mapping[str, str] | None = None,
    nomenclature: NomenclatureSpec | None = None,
    progress: bool = False,
    mask_band: int | None = None,
) -> EvaluationResult:
    """Score every ``PRED_{id}.tif`` under ``pred_dir`` against its mask ``masks[id]``.

    Args:
        pred_dir: folder searched recursively for ``PRED_{id}.tif``.
        masks: patch id (e.g. ``"077413"``) → path of ``MSK_{id}.tif``; one prediction is expected
            per mask, and none other.
        domains: patch id → domain (e.g. ``"D004_2021"``) for per-domain scores; every id of
            ``masks`` must have one. ``None``: overall scores only.
        nomenclature: the classes of predictions without nomenclature tags (see
            :func:`flairlc.nomenclature.get`); tagged predictions are scored with their own, which
            must then be the same. ``None``: the tags', else the baseline (with a warning).
        progress: show a progress bar.
        mask_band: the band of the masks that holds the label (FLAIR-HUB's ``ALL_LABEL-LPIS``:
            1); ``None``: masks must have one band (FLAIR #2's ``MSK_{id}.tif``).

    Returns:
        :class:`EvaluationResult` with the overall and per-domain confusion matrices.

    Raises:
        PredictionFolderError: missing predictions, predictions without a mask, predictions of
            different nomenclatures or of another than ``nomenclature`` (see
            :func:`prediction_nomenclature`), unreadable files, a prediction whose size differs
            from its mask, or prediction values outside the nomenclature's ``0..K-1``; the message
            names the files (up to :data:`MAX_LISTED`, then a count).
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

    nomen, excluded = prediction_nomenclature(predictions, nomenclature, pred_dir)
    k = nomen.num_classes
    acc = ConfusionAccumulator(k, ignore_index=NODATA_VALUE, class_names=nomen.names, exclude=excluded)
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
            truth = raw_to_index(_read_band(mask_path, mask_band), nomen)
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
            out_of_range.append(f"{pred_path}: values {values} outside 0..{k - 1}, the classes of {nomen.name!r}")
            continue
        if not (unreadable or mis_sized or out_of_range):
            cm = confusion_matrix(truth, pred, k, ignore_index=NODATA_VALUE)
            acc.add(cm, domains[pid] if domains is not None else None)

    for items, what in (
        (unreadable, "files could not be read"),
        (mis_sized, "predictions differ in size from their mask"),
        (out_of_range, f"predictions hold values that are not class indices 0..{k - 1} of the nomenclature "
                       f"{nomen.name!r} (predictions of another model? give its --nomenclature)"),
    ):
        if items:
            problems.append(_listing(items, what))
    if problems:
        raise PredictionFolderError("cannot score predictions:\n" + "\n".join(problems))
    return acc.result(
        metadata={
            "prediction_folder": str(pred_dir),
            "nomenclature": nomen.name,
            "num_patches": len(masks),
        }
    )
