"""Tests of flairlc.evaluation: confusion matrices, scores, reports, prediction-folder scoring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine

from flairlc.evaluation import (
    ConfusionAccumulator,
    EvaluationResult,
    PredictionFolderError,
    Scores,
    compute_scores,
    confusion_matrix,
    confusion_matrix_torch,
    evaluate_prediction_folder,
)
from flairlc.nomenclature import OTHER_INDEX, class_names

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- confusion matrices ---------------------------------------------------------------------------


def _loop_confusion(truth: np.ndarray, pred: np.ndarray, k: int, ignore: int) -> np.ndarray:
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(truth.ravel().tolist(), pred.ravel().tolist()):
        if t != ignore:
            cm[t, p] += 1
    return cm


def test_confusion_matrix_matches_double_loop() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 13, size=(3, 20, 20)).astype(np.uint8)
    truth[0, :5] = 255
    pred = rng.integers(0, 13, size=(3, 20, 20)).astype(np.uint8)
    cm = confusion_matrix(truth, pred, 13)
    assert cm.dtype == np.int64 and cm.shape == (13, 13)
    np.testing.assert_array_equal(cm, _loop_confusion(truth, pred, 13, 255))
    assert cm.sum() == truth.size - 5 * 20  # ignored pixels not counted


def test_confusion_matrix_orientation_rows_truth() -> None:
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([1, 1, 1]), 2)
    np.testing.assert_array_equal(cm, [[0, 2], [0, 1]])


def test_confusion_matrix_accepts_tensors_and_rejects_bad_values() -> None:
    truth = torch.tensor([[0, 1], [2, 255]])
    pred = torch.tensor([[0, 2], [2, 1]])
    np.testing.assert_array_equal(
        confusion_matrix(truth, pred, 3), [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    )
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros(3, int), np.zeros(4, int), 3)


def test_torch_and_numpy_confusion_agree() -> None:
    gen = torch.Generator().manual_seed(1)
    truth = torch.randint(0, 19, (2, 32, 32), generator=gen, dtype=torch.uint8)
    truth[1, 3:9, 4:20] = 255
    pred = torch.randint(0, 19, (2, 32, 32), generator=gen)
    cm_t = confusion_matrix_torch(truth, pred, 19)
    assert cm_t.dtype == torch.int64 and cm_t.device == truth.device
    np.testing.assert_array_equal(cm_t.numpy(), confusion_matrix(truth.numpy(), pred.numpy(), 19))
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix_torch(torch.tensor([0]), torch.tensor([19]), 19)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_torch_confusion_on_gpu() -> None:
    truth = torch.randint(0, 13, (2, 16, 16))
    pred = torch.randint(0, 13, (2, 16, 16))
    cm = confusion_matrix_torch(truth.cuda(), pred.cuda(), 13)
    assert cm.is_cuda
    np.testing.assert_array_equal(cm.cpu().numpy(), confusion_matrix(truth, pred, 13))


# -- scores ---------------------------------------------------------------------------------------

# Hand-made 4-class matrix (rows truth, cols prediction), no exclusion.
HAND_CM = np.array(
    [
        [5, 1, 0, 0],  # class 0: support 6
        [2, 3, 1, 0],  # class 1: support 6
        [0, 0, 4, 0],  # class 2: support 4
        [0, 0, 0, 0],  # class 3: absent from truth and prediction
    ]
)


def test_scores_by_hand() -> None:
    s = compute_scores(HAND_CM, ["a", "b", "c", "d"], exclude=())
    pc = s["per_class"]
    # class a: TP 5, FP 2, FN 1 ; class b: TP 3, FP 1, FN 3 ; class c: TP 4, FP 1, FN 0
    assert pc["a"]["iou"] == pytest.approx(5 / 8)
    assert pc["b"]["iou"] == pytest.approx(3 / 7)
    assert pc["c"]["iou"] == pytest.approx(4 / 5)
    assert pc["a"]["precision"] == pytest.approx(5 / 7)
    assert pc["a"]["recall"] == pytest.approx(5 / 6)
    assert pc["b"]["precision"] == pytest.approx(3 / 4)
    assert pc["b"]["recall"] == pytest.approx(3 / 6)
    assert pc["c"]["precision"] == pytest.approx(4 / 5)
    assert pc["c"]["recall"] == pytest.approx(1.0)
    assert pc["a"]["f1"] == pytest.approx(10 / 13)
    assert pc["b"]["f1"] == pytest.approx(6 / 10)
    assert pc["c"]["f1"] == pytest.approx(8 / 9)
    assert [pc[n]["support"] for n in "abcd"] == [6, 6, 4, 0]
    assert s["overall_accuracy"] == pytest.approx(12 / 16)
    # class d is absent: undefined, skipped in the means (not 0, not 1)
    assert pc["d"]["iou"] is None and pc["d"]["f1"] is None and pc["d"]["precision"] is None
    assert s["miou"] == pytest.approx((5 / 8 + 3 / 7 + 4 / 5) / 3)
    assert s["mean_f1"] == pytest.approx((10 / 13 + 6 / 10 + 8 / 9) / 3)
    assert s["mean_classes"] == ["a", "b", "c"]
    norm = s["normalized_confusion"]
    assert norm[0] == pytest.approx([5 / 6, 1 / 6, 0, 0])
    assert norm[3] == [None] * 4


def test_class_in_truth_never_predicted_counts_as_zero() -> None:
    cm = np.array([[4, 0, 0], [2, 0, 0], [0, 0, 0]])  # class 1 never predicted, class 2 absent
    s = Scores.from_confusion(cm, ["a", "b", "c"], exclude=())
    assert s.iou[1] == 0.0 and math.isnan(s.iou[2])
    assert math.isnan(s.precision[1]) and s.recall[1] == 0.0
    assert s.miou == pytest.approx((4 / 6 + 0.0) / 2)


def test_other_excluded_from_miou() -> None:
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 13, size=(40, 40))
    pred = truth.copy()
    flip = rng.random(truth.shape) < 0.3
    pred[flip] = rng.integers(0, 12, size=int(flip.sum()))  # errors among real classes
    base = compute_scores(confusion_matrix(truth, pred, 13), class_names())
    assert base["excluded"] == ["other"] and "other" not in base["mean_classes"]
    # change only the pixels that are 'other' in both truth and prediction
    other = (truth == OTHER_INDEX) & (pred == OTHER_INDEX)
    assert other.any()
    truth2, pred2 = truth.copy(), pred.copy()
    truth2[other] = 255
    changed = compute_scores(confusion_matrix(truth2, pred2, 13), class_names())
    assert changed["miou"] == base["miou"]
    assert changed["per_class"]["other"]["iou"] != base["per_class"]["other"]["iou"]
    # and the mean over every class does differ
    all_classes = compute_scores(confusion_matrix(truth, pred, 13), class_names(), exclude=())
    assert all_classes["miou"] != base["miou"]


def test_raw_nomenclature_excludes_index_18() -> None:
    cm = np.eye(19, dtype=np.int64)
    s = compute_scores(cm, class_names("raw"))
    assert s["excluded_indices"] == [18] and s["excluded"] == ["other"]
    assert len(s["mean_classes"]) == 18 and s["miou"] == 1.0


def test_empty_matrix_scores_are_undefined() -> None:
    s = compute_scores(np.zeros((13, 13), dtype=np.int64))
    assert s["miou"] is None and s["overall_accuracy"] is None and s["num_pixels"] == 0


# -- accumulation and reports ---------------------------------------------------------------------


def _random_result(seed: int = 0) -> EvaluationResult:
    rng = np.random.default_rng(seed)
    acc = ConfusionAccumulator(13)
    for i in range(6):
        truth = rng.integers(0, 12, size=(2, 16, 16))  # class 12 ('other') never in truth
        truth[:, :2] = 255
        pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 13, truth.shape))
        pred[truth == 255] = 0
        domains = [f"D0{i % 3:02d}_2021", f"D0{(i + 1) % 3:02d}_2020"]
        acc.update(truth, pred, domains)
    return acc.result(metadata={"seed": seed})


def test_accumulator_domains_sum_to_overall() -> None:
    res = _random_result()
    assert len(res.domain_confusion) == 6
    np.testing.assert_array_equal(sum(res.domain_confusion.values()), res.confusion)
    assert res.confusion.sum() == 6 * 2 * 14 * 16  # ignore_index rows dropped
    acc = ConfusionAccumulator(13)
    acc.update(torch.zeros(4, 4, dtype=torch.long), torch.zeros(4, 4, dtype=torch.long), "D001")
    assert acc.result().confusion[0, 0] == 16


def test_evaluation_is_deterministic() -> None:
    a, b = _random_result(5), _random_result(5)
    assert a.to_dict() == b.to_dict()
    assert json.dumps(a.to_dict()) == json.dumps(b.to_dict())


def test_json_round_trip(tmp_path: Path) -> None:
    res = _random_result()
    path = res.to_json(tmp_path / "e.json")
    back = EvaluationResult.from_json(path)
    np.testing.assert_array_equal(back.confusion, res.confusion)
    assert back.domain_confusion.keys() == res.domain_confusion.keys()
    for d in res.domain_confusion:
        np.testing.assert_array_equal(back.domain_confusion[d], res.domain_confusion[d])
    assert back.to_dict() == res.to_dict()
    assert back.to_json(tmp_path / "f.json").read_bytes() == path.read_bytes()
    data = json.loads(path.read_text())
    assert data["scores"]["per_class"]["other"]["iou"] == res.scores()["per_class"]["other"]["iou"]
    assert set(data["domain_scores"]) == set(res.domain_confusion)


def test_write_all_files(tmp_path: Path) -> None:
    res = _random_result()
    paths = res.write(tmp_path / "report")
    expected = {"json", "per_class_csv", "per_domain_csv", "confusion_png", "iou_png", "domain_png"}
    assert set(paths) == expected
    for key in ("confusion_png", "iou_png", "domain_png"):
        data = paths[key].read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        import matplotlib.image

        img = matplotlib.image.imread(paths[key])
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    per_class = paths["per_class_csv"].read_text().splitlines()
    assert per_class[0].startswith("index,name,excluded,iou") and len(per_class) == 14
    per_domain = paths["per_domain_csv"].read_text().splitlines()
    assert per_domain[0].split(",")[:3] == ["domain", "miou", "overall_accuracy"]
    assert len(per_domain) == 1 + len(res.domain_confusion)
    assert not [p for p in (tmp_path / "report").iterdir() if p.name.endswith(".tmp")]
    table = res.summary_table()
    assert "mIoU" in table and "building" in table and "D000_2021" in table


def test_summary_table_prints_percent_labelled() -> None:
    # Every score in percent, and said so: 'mIoU 61.79 %', columns 'IoU %' (not 0.6179 nor a bare 61.79).
    cm = HAND_CM.copy()
    cm[3, 3] = 4  # class d: 4 pixels, all right, left out of the means
    table = EvaluationResult(cm, {"D1": cm}, ["a", "b", "c", "d"], exclude=(3,)).summary_table().splitlines()
    assert table[0].split() == ["class", "IoU", "%", "prec.", "%", "recall", "%", "F1", "%", "support"]
    assert table[2].split() == ["a", f"{100 * 5 / 8:.2f}", f"{100 * 5 / 7:.2f}", f"{100 * 5 / 6:.2f}", f"{100 * 10 / 13:.2f}", "6"]
    miou, mean_f1 = 100 * (5 / 8 + 3 / 7 + 4 / 5) / 3, 100 * (10 / 13 + 6 / 10 + 8 / 9) / 3
    assert table[7] == f"mIoU {miou:.2f} %   mean F1 {mean_f1:.2f} %   OA {100 * 16 / 20:.2f} %   over 3 classes, 20 pixels"
    assert table[10].split() == ["domain", "mIoU", "%", "OA", "%", "pixels"]
    assert table[11].split() == ["D1", f"{miou:.2f}", f"{100 * 16 / 20:.2f}", "20"]


# -- prediction folders ---------------------------------------------------------------------------


def _write_tif(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=array.shape[1],
        height=array.shape[0],
        count=1,
        dtype="uint8",
        crs="EPSG:2154",
        transform=Affine(0.2, 0.0, 800000.0, 0.0, -0.2, 6500000.0),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array.astype(np.uint8), 1)
    return path


@pytest.fixture()
def flair_patches(tmp_path: Path) -> tuple[dict[str, Path], dict[str, str], dict[str, np.ndarray]]:
    """Three 16×16 masks (raw values) under a FLAIR-like tree; ids, domains, folded truths."""
    rng = np.random.default_rng(7)
    masks, domains, truths = {}, {}, {}
    for pid, domain in (("000011", "D004_2021"), ("000012", "D004_2021"), ("000103", "D013_2020")):
        raw = rng.integers(1, 13, size=(16, 16))  # real classes 1..12
        raw[0, :4] = 15  # clear cut → 'other'
        path = _write_tif(tmp_path / "labels" / domain / "Z1_UA" / "msk" / f"MSK_{pid}.tif", raw)
        masks[pid], domains[pid], truths[pid] = path, domain, raw - 1
        truths[pid][0, :4] = OTHER_INDEX
    return masks, domains, truths


def test_perfect_predictions_score_one(tmp_path: Path, flair_patches) -> None:
    masks, domains, truths = flair_patches
    # written in reverse order and nested folders: matching must be by id
    for i, pid in enumerate(sorted(truths, reverse=True)):
        _write_tif(tmp_path / "pred" / f"sub{i}" / f"PRED_{pid}.tif", truths[pid])
    res = evaluate_prediction_folder(tmp_path / "pred", masks, domains)
    s = res.scores()
    assert s["miou"] == 1.0 and s["overall_accuracy"] == 1.0
    assert s["num_pixels"] == 3 * 16 * 16
    assert set(res.domain_confusion) == {"D004_2021", "D013_2020"}
    assert all(d["miou"] == 1.0 for d in res.domain_scores().values())
    np.testing.assert_array_equal(sum(res.domain_confusion.values()), res.confusion)
    again = evaluate_prediction_folder(tmp_path / "pred", masks, domains)
    assert again.to_dict() == res.to_dict()


def test_wrong_predictions_match_by_id(tmp_path: Path, flair_patches) -> None:
    masks, _, truths = flair_patches
    ids = sorted(truths)
    for pid in ids:
        _write_tif(tmp_path / "pred" / f"PRED_{pid}.tif", truths[pid])
    # spoil one patch entirely: predict class 0 everywhere
    _write_tif(tmp_path / "pred" / f"PRED_{ids[1]}.tif", np.zeros((16, 16)))
    res = evaluate_prediction_folder(tmp_path / "pred", masks, progress=True)
    expected = sum(
        confusion_matrix(truths[p], truths[p] if p != ids[1] else np.zeros((16, 16), int), 13)
        for p in ids
    )
    np.testing.assert_array_equal(res.confusion, expected)
    assert res.domain_confusion == {}


def test_missing_prediction_is_named(tmp_path: Path, flair_patches) -> None:
    masks, _, truths = flair_patches
    for pid in ("000011", "000103"):
        _write_tif(tmp_path / "pred" / f"PRED_{pid}.tif", truths[pid])
    with pytest.raises(PredictionFolderError, match="PRED_000012.tif") as err:
        evaluate_prediction_folder(tmp_path / "pred", masks)
    assert "MSK_000012.tif" in str(err.value) and "1 masks have no prediction" in str(err.value)


def test_extra_prediction_is_named(tmp_path: Path, flair_patches) -> None:
    masks, _, truths = flair_patches
    for pid in truths:
        _write_tif(tmp_path / "pred" / f"PRED_{pid}.tif", truths[pid])
    _write_tif(tmp_path / "pred" / "PRED_999999.tif", truths["000011"])
    with pytest.raises(PredictionFolderError, match="PRED_999999.tif") as err:
        evaluate_prediction_folder(tmp_path / "pred", masks)
    assert "no mask" in str(err.value)


def test_mis_sized_prediction_is_named(tmp_path: Path, flair_patches) -> None:
    masks, _, truths = flair_patches
    for pid in truths:
        _write_tif(tmp_path / "pred" / f"PRED_{pid}.tif", truths[pid])
    _write_tif(tmp_path / "pred" / "PRED_000103.tif", np.zeros((16, 12)))
    with pytest.raises(PredictionFolderError, match="PRED_000103.tif") as err:
        evaluate_prediction_folder(tmp_path / "pred", masks)
    msg = str(err.value)
    assert "MSK_000103.tif" in msg and "16×12" in msg and "16×16" in msg


def test_out_of_range_and_unreadable_predictions_are_named(tmp_path: Path, flair_patches) -> None:
    masks, _, truths = flair_patches
    for pid in truths:
        _write_tif(tmp_path / "pred" / f"PRED_{pid}.tif", truths[pid])
    bad = truths["000011"].copy()
    bad[0, 0] = 13
    _write_tif(tmp_path / "pred" / "PRED_000011.tif", bad)
    (tmp_path / "pred" / "PRED_000012.tif").write_bytes(b"not a tiff")
    with pytest.raises(PredictionFolderError) as err:
        evaluate_prediction_folder(tmp_path / "pred", masks)
    msg = str(err.value)
    assert "PRED_000011.tif: values [13] outside 0..12" in msg
    assert "PRED_000012.tif" in msg and "could not be read" in msg


def test_error_listing_is_capped(tmp_path: Path) -> None:
    masks = {f"{i:06d}": tmp_path / f"MSK_{i:06d}.tif" for i in range(25)}
    (tmp_path / "pred").mkdir()
    with pytest.raises(PredictionFolderError) as err:
        evaluate_prediction_folder(tmp_path / "pred", masks)
    msg = str(err.value)
    assert "25 masks have no prediction" in msg and "and 15 more" in msg
    assert "PRED_000009.tif" in msg and "PRED_000010.tif" not in msg
