"""Sentinel-2 helpers: windows, dates, cloud filter and monthly averages, checked by value."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from flairlc.data.sentinel import (
    CLOUD_CHANNEL,
    SNOW_CHANNEL,
    SeriesPreprocessing,
    dates_to_days,
    filter_cloudy_dates,
    monthly_average,
    product_date,
    take_dates_float32,
    window_outside,
    window_slice,
)


def test_product_date_parses_both_naming_styles() -> None:
    assert product_date("SENTINEL2A_20210415-105852-000_L2A_T31TFJ_C_V2-2") == dt.date(2021, 4, 15)
    assert product_date("S2A_MSIL2A_20201231T105021_N0214_R051_T31TGL") == dt.date(2020, 12, 31)
    with pytest.raises(ValueError, match="offsets 11-18"):
        product_date("S2A_MSIL2A_notadate_here")


def test_dates_to_days_uses_month_and_day_on_the_reference_year() -> None:
    dates = [dt.date(2021, 5, 15), dt.date(2021, 1, 1), dt.date(2019, 5, 16), dt.date(2020, 2, 29)]
    days = dates_to_days(dates, reference=dt.date(2021, 5, 15))
    assert days.dtype == np.int64
    assert days.tolist() == [0, -134, 1, (dt.date(2021, 2, 28) - dt.date(2021, 5, 15)).days]


def test_window_equals_array_slice_inside() -> None:
    array = np.arange(3 * 2 * 50 * 60).reshape(3, 2, 50, 60)
    window = window_slice(array, row=20, col=30, size=8)
    np.testing.assert_array_equal(window, array[:, :, 16:24, 26:34])
    assert not window_outside((50, 60), 20, 30, 8)


def test_window_at_the_border_keeps_its_size_and_replicates_edges() -> None:
    array = np.arange(40 * 40).reshape(1, 40, 40)
    window = window_slice(array, row=2, col=38, size=8)
    assert window.shape == (1, 8, 8)
    assert window_outside((40, 40), 2, 38, 8)
    # Inside part equals the slice; padded rows and columns repeat the edge.
    np.testing.assert_array_equal(window[0, 2:, :6], array[0, 0:6, 34:40])
    np.testing.assert_array_equal(window[0, 0], window[0, 2])
    np.testing.assert_array_equal(window[0, :, 7], window[0, :, 5])
    with pytest.raises(ValueError, match="outside"):
        window_slice(array, row=100, col=100, size=8)


def test_cloudy_dates_above_threshold_are_dropped_others_kept() -> None:
    masks = np.zeros((4, 2, 10, 10), dtype=np.uint8)
    masks[1, CLOUD_CHANNEL, :6] = 80  # 60 % cloud at probability 80: dropped
    masks[2, CLOUD_CHANNEL, :4] = 90  # 40 % cloud: kept
    masks[3, SNOW_CHANNEL, :, :] = 59  # snow just below the probability threshold: kept
    np.testing.assert_array_equal(filter_cloudy_dates(masks, 0.5, 60), [0, 2, 3])
    masks[3, SNOW_CHANNEL, :, :] = 60  # at the threshold: covered everywhere, dropped
    np.testing.assert_array_equal(filter_cloudy_dates(masks, 0.5, 60), [0, 2])


def test_cloud_filter_never_drops_every_date() -> None:
    masks = np.full((3, 2, 4, 4), 100, dtype=np.uint8)
    masks[1, :, 0, 0] = 0  # date 1 is the least covered
    np.testing.assert_array_equal(filter_cloudy_dates(masks, 0.5, 60), [1])


def test_monthly_average_equals_hand_computation() -> None:
    dates = [dt.date(2021, 1, 3), dt.date(2021, 1, 20), dt.date(2021, 3, 1), dt.date(2021, 1, 28)]
    data = np.arange(4 * 2 * 1 * 1, dtype=np.uint16).reshape(4, 2, 1, 1) * 10
    means, month_dates = monthly_average(data, dates)
    assert month_dates == [dt.date(2021, 1, 15), dt.date(2021, 3, 15)]
    assert means.dtype == np.float32
    np.testing.assert_allclose(means[0, :, 0, 0], (data[0] + data[1] + data[3])[:, 0, 0] / 3)
    np.testing.assert_allclose(means[1, :, 0, 0], data[2, :, 0, 0])


def _exact_monthly_means(data: np.ndarray, dates: list[dt.date]) -> np.ndarray:
    """Each month's exact integer sum divided in float64, rounded once to float32."""
    months = sorted({(d.year, d.month) for d in dates})
    out = []
    for month in months:
        members = [t for t, d in enumerate(dates) if (d.year, d.month) == month]
        sums = data[members].astype(np.int64).sum(axis=0)
        out.append((sums / np.float64(len(members))).astype(np.float32))
    return np.stack(out)


def test_paper_profile_monthly_means_equal_float64_means_to_the_bit() -> None:
    rng = np.random.default_rng(7)
    dates = [dt.date(2021, m, d) for m, d in [(1, 2), (1, 9), (1, 20), (2, 5), (3, 1), (3, 4), (3, 8),
                                              (3, 17), (3, 22), (3, 30), (4, 11), (4, 25)]]
    data = rng.integers(0, 10001, (len(dates), 10, 8, 8), dtype=np.uint16)
    expected = _exact_monthly_means(data, dates)
    paper, days = SeriesPreprocessing(average_monthly=True, profile="paper").apply(data, None, dates)
    assert paper.dtype == np.float32 and days.tolist() == [120, 89, 61, 30]
    np.testing.assert_array_equal(paper.view(np.int32), expected.view(np.int32))
    # The flairlc profile keeps its float32 product: within 2 ulps of the same means.
    ours, _ = SeriesPreprocessing(average_monthly=True).apply(data, None, dates)
    assert np.abs(ours.view(np.int32).astype(np.int64) - expected.view(np.int32)).max() <= 2
    with pytest.raises(ValueError, match="unknown monthly mean precision 'float16'"):
        monthly_average(data, dates, "float16")


def test_take_dates_float32_equals_fancy_indexing_then_cast() -> None:
    data = np.random.default_rng(0).integers(0, 10001, (7, 10, 6, 6), dtype=np.uint16)
    keep = np.array([0, 3, 4, 6])
    out = take_dates_float32(data[..., 1:5, 2:6], keep)  # a strided window, as from a memory map
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, data[keep][..., 1:5, 2:6].astype(np.float32))
    assert take_dates_float32(data, np.array([], dtype=np.int64)).shape == (0, 10, 6, 6)


def _loop_preprocessing(data, masks, dates, threshold, max_cover, count, strict, monthly):
    """The series preprocessing written one date and one month at a time (float64 sums)."""
    keep = []
    for t in range(data.shape[0]):
        snow = np.count_nonzero(masks[t, SNOW_CHANNEL] >= threshold)
        cloud = np.count_nonzero(masks[t, CLOUD_CHANNEL] >= threshold)
        both = np.count_nonzero((masks[t, SNOW_CHANNEL] >= threshold) & (masks[t, CLOUD_CHANNEL] >= threshold))
        cover = (snow + cloud - (both if count == "union" else 0)) / masks[t, 0].size
        if cover < max_cover or (not strict and cover == max_cover):
            keep.append(t)
    if not keep:
        return None
    series, kept = data[keep].astype(np.float64), [dates[t] for t in keep]
    if not monthly:
        return series, kept
    months = sorted({(d.year, d.month) for d in kept})
    means = [series[[i for i, d in enumerate(kept) if (d.year, d.month) == m]].mean(axis=0) for m in months]
    return np.stack(means), [dt.date(y, m, 15) for y, m in months]


@pytest.mark.parametrize("profile", ["flairlc", "paper"])
@pytest.mark.parametrize("monthly", [False, True])
def test_preprocessing_equals_per_date_loops_on_random_series(profile: str, monthly: bool) -> None:
    rng = np.random.default_rng(1 if monthly else 2)
    rules = SeriesPreprocessing(profile=profile).rules
    for _ in range(20):
        t = int(rng.integers(3, 40))
        data = rng.integers(0, 10001, (t, 10, 8, 8), dtype=np.uint16)
        masks = np.where(rng.random((t, 2, 8, 8)) < rng.random((t, 1, 1, 1)), 100, 0).astype(np.uint8)
        days = np.sort(rng.choice(365, t, replace=False))
        dates = [dt.date(2021, 1, 1) + dt.timedelta(days=int(d)) for d in days]
        expected = _loop_preprocessing(data, masks, dates, 60, 0.5, rules.cover_count, rules.cover_strict, monthly)
        if expected is None:
            continue  # every date covered: the least covered kept, tested above
        prep = SeriesPreprocessing(filter_clouds=True, average_monthly=monthly, profile=profile)
        series, offsets = prep.apply(data, masks, dates)
        assert series.dtype == np.float32 and series.shape == expected[0].shape
        # float32 sums against float64: equal within a float32 rounding of reflectances <= 10 000.
        np.testing.assert_allclose(series, expected[0], rtol=0, atol=2e-3 if monthly else 0)
        np.testing.assert_array_equal(offsets, dates_to_days(expected[1], sign=rules.date_sign))


def test_raw_to_index_rejects_wide_values_instead_of_wrapping() -> None:
    from flairlc.nomenclature import raw_to_index

    raw = np.array([1, 12, 13, 19, 0, 20, 257, 268], dtype=np.uint16)
    assert raw_to_index(raw).tolist() == [0, 11, 12, 12, 255, 255, 255, 255]
    assert raw_to_index(raw, "raw").tolist() == [0, 11, 12, 18, 255, 255, 255, 255]
