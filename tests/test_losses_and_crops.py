"""The weighted loss and the footprint crop, checked against independent computations."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from flairlc.models.fusion import center_crop
from flairlc.training.task import weighted_cross_entropy


def test_weighted_cross_entropy_equals_torch_and_is_zero_without_weight() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 13, 8, 8)
    target = torch.randint(0, 13, (2, 8, 8))
    weight = torch.ones(13)
    weight[[11, 12]] = 0.0
    expected = F.cross_entropy(logits, target, weight=weight)
    assert torch.allclose(weighted_cross_entropy(logits, target, weight), expected, atol=1e-6)
    only_other = torch.full((2, 8, 8), 12)
    assert torch.isnan(F.cross_entropy(logits, only_other, weight=weight))
    assert weighted_cross_entropy(logits, only_other, weight).item() == 0.0


def test_center_crop_keeps_the_centroid_pixel_in_the_middle() -> None:
    window = torch.arange(16 * 16).reshape(16, 16)
    # The centroid pixel of a 16-px window is at index 8.
    assert center_crop(window, (1, 1)).item() == window[8, 8].item()
    assert torch.equal(center_crop(window, (3, 3)), window[7:10, 7:10])
    assert torch.equal(center_crop(window, (4, 4)), window[6:10, 6:10])
    big = torch.arange(40 * 40).reshape(40, 40)
    assert torch.equal(center_crop(big, (10, 10)), big[15:25, 15:25])
    assert torch.equal(center_crop(big, (50, 50)), big)
