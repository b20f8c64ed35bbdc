"""Sentinel-2 helpers: windows, dates, cloud filter and monthly averages, checked by value."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from flairlc.data.sentinel import (
    CLOUD_CHANNEL,
    SNOW_CHANNEL,
    dates_to_days,
    filter_cloudy_dates,
    monthly_average,
    product_date,
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


def test_raw_to_index_rejects_wide_values_instead_of_wrapping() -> None:
    from flairlc.nomenclature import raw_to_index

    raw = np.array([1, 12, 13, 19, 0, 20, 257, 268], dtype=np.uint16)
    assert raw_to_index(raw).tolist() == [0, 11, 12, 12, 255, 255, 255, 255]
    assert raw_to_index(raw, "raw").tolist() == [0, 11, 12, 18, 255, 255, 255, 255]
