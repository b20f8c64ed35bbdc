"""Metadata encoding, batching with padded series, and consistent augmentation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from flairlc.data.collate import collate_flair
from flairlc.data.metadata import encode_metadata, encode_position, metadata_size
from flairlc.training.augment import augment_batch, transform

METADATA = {
    "domain": "D004_2021", "zone": "Z1_NN", "patch_centroid_x": 951000.5, "patch_centroid_y": 6342000.25,
    "patch_centroid_z": 632.7, "date": "2021-07-16", "time": "10h35", "camera": "UCE-M3-f120",
    "unknown_extra": "kept",
}


def test_metadata_vector_layout_and_values() -> None:
    vector = encode_metadata(METADATA, geo_enc_size=32)
    assert vector.shape == (metadata_size(32),) == (45,)
    assert vector.dtype == np.float32
    np.testing.assert_allclose(vector[:16], encode_position(951000.5, 16), rtol=1e-6)
    np.testing.assert_allclose(vector[32], 632.7 / 3164.9, rtol=1e-6)
    assert vector[33:35].tolist() == [1.0, 0.0]  # UCE camera family
    assert vector[35:39].tolist() == [0.0, 0.0, 0.0, 1.0]  # 2021
    month_angle = 2 * math.pi * (7 - 1) / 12  # (month - 1) / 12, not the paper code's month - 1/12
    np.testing.assert_allclose(vector[39:41], [math.sin(month_angle), math.cos(month_angle)], atol=1e-6)
    time_angle = 2 * math.pi * (10 + 35 / 60) / 24
    np.testing.assert_allclose(vector[43:45], [math.sin(time_angle), math.cos(time_angle)], atol=1e-6)


def test_metadata_month_encoding_separates_months() -> None:
    january = encode_metadata({**METADATA, "date": "2021-01-16"})
    july = encode_metadata(METADATA)
    # Opposite months: cos(angle) changes sign (the paper code's slip made it nearly constant).
    assert january[40] > 0.99 and july[40] < -0.99
    other_camera = encode_metadata({**METADATA, "camera": "CAMERA#017"})
    assert other_camera[33:35].tolist() == [0.0, 1.0]


def test_collate_pads_series_and_marks_padding() -> None:
    samples = [
        {"id": "000001", "domain": "D1", "index": 0, "sentinel": torch.ones(3, 10, 4, 4), "dates_days": torch.tensor([1, 2, 3])},
        {"id": "000002", "domain": "D2", "index": 1, "sentinel": torch.full((5, 10, 4, 4), 2.0), "dates_days": torch.arange(5)},
    ]
    batch = collate_flair(samples)
    assert batch["sentinel"].shape == (2, 5, 10, 4, 4)
    assert batch["sentinel_pad_mask"].tolist() == [[False, False, False, True, True], [False] * 5]
    assert batch["dates_days"].tolist() == [[1, 2, 3, 0, 0], [0, 1, 2, 3, 4]]
    assert float(batch["sentinel"][0, 3:].abs().sum()) == 0.0
    assert batch["id"] == ["000001", "000002"] and batch["index"].tolist() == [0, 1]


def _position(array: torch.Tensor, value: int) -> torch.Tensor:
    return (array == value).nonzero()[0]


@pytest.mark.parametrize("hflip,vflip,rot90", list(itertools.product([False, True], repeat=3)))
def test_sentinel_window_turns_about_the_patch_centre_pixel(hflip: bool, vflip: bool, rot90: bool) -> None:
    # The patch (16 px) turns about its geometric centre; the Sentinel-2 window (8 px, centred on
    # the pixel at index 4 holding the patch centre) must turn about that pixel, in the same way.
    patch = torch.arange(16 * 16).reshape(16, 16)
    window = torch.arange(8 * 8).reshape(8, 8)
    moved_patch = transform(patch, hflip, vflip, rot90)
    moved_window = transform(window, hflip, vflip, rot90, about_pixel=True)
    assert torch.equal(_position(moved_window, window[4, 4]), torch.tensor([4, 4]))
    for step in ((0, 1), (1, 0)):
        patch_step = _position(moved_patch, patch[8 + step[0], 8 + step[1]]) - _position(moved_patch, patch[8, 8])
        window_step = _position(moved_window, window[4 + step[0], 4 + step[1]]) - torch.tensor([4, 4])
        assert torch.equal(patch_step, window_step)


def test_augment_batch_moves_aerial_mask_and_sentinel_together() -> None:
    mask = torch.arange(16 * 16).reshape(1, 16, 16)
    batch = {
        "aerial": mask[:, None].repeat(8, 5, 1, 1) % 251,
        "mask": mask.repeat(8, 1, 1),
        "sentinel": torch.arange(8 * 8.0).reshape(1, 1, 1, 8, 8).repeat(8, 3, 10, 1, 1),
    }
    out = augment_batch(batch, generator=torch.Generator().manual_seed(1))
    changed = 0
    for i in range(8):
        assert torch.equal(out["aerial"][i, 0], out["mask"][i] % 251)
        assert float(out["sentinel"][i, 2, 9, 4, 4]) == 36.0  # the centre pixel stays
        changed += int(not torch.equal(out["mask"][i], batch["mask"][i]))
    assert changed > 0


def test_transform_rot90_and_flips() -> None:
    x = torch.tensor([[1, 2], [3, 4]])
    assert transform(x, True, False, False).tolist() == [[2, 1], [4, 3]]
    assert transform(x, False, True, False).tolist() == [[3, 4], [1, 2]]
    assert transform(x, False, False, True).tolist() == [[2, 4], [1, 3]]
