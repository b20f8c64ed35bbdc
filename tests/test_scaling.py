"""Input scaling: the CPU table lookup and the float path give the values of one float64 rounding."""

from __future__ import annotations

import pytest
import torch

from flairlc.inference.scaling import LOOKUP_CHUNK, UINT16_MAX, InputScaler

MEAN = [105.08, 110.87, 101.82, 106.38, 53.26]
STD = [52.17, 45.38, 44.0, 39.69, 79.3]


def _float64_once(x: torch.Tensor, offset: list[float], scale: list[float]) -> torch.Tensor:
    """IGN's normalization: float64 arithmetic, one rounding to float32."""
    o = torch.tensor(offset, dtype=torch.float64).view(-1, 1, 1)
    s = torch.tensor(scale, dtype=torch.float64).view(-1, 1, 1)
    return ((x.double() - o) / s).float()


@pytest.mark.parametrize(
    "shape",
    # a sample (pixel pairs); a batch with odd bands (pixel by pixel); bands of more than one
    # chunk, not a whole number of chunks, by pairs (400 x 401) and pixel by pixel (301 x 301)
    [(5, 16, 16), (3, 5, 7, 9), (5, 400, 401), (2, 5, 301, 301)],
)
def test_uint8_lookup_equals_float64_rounded_once(shape: tuple[int, ...]) -> None:
    pixels = shape[-1] * shape[-2]
    lookups = pixels // 2 if pixels % 2 == 0 else pixels
    assert lookups < LOOKUP_CHUNK or lookups % LOOKUP_CHUNK
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    x.view(-1)[:256] = torch.arange(256, dtype=torch.uint8)  # every value at least once,
    x.view(-1)[256:768:2] = torch.arange(256, dtype=torch.uint8)  # in both places of a pair
    x.view(-1)[257:769:2] = torch.arange(255, -1, -1, dtype=torch.uint8)
    scaler = InputScaler("standardize", 5, mean=MEAN, std=STD)
    out = scaler(x)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert torch.equal(out, _float64_once(x, MEAN, STD))
    unit = InputScaler("unit", 5)(x)
    assert torch.equal(unit, _float64_once(x, [0.0] * 5, [255.0] * 5))


def test_uint8_lookup_of_a_non_contiguous_batch() -> None:
    x = torch.randint(0, 256, (2, 9, 11, 5), dtype=torch.uint8).permute(0, 3, 1, 2)  # channels last
    scaler = InputScaler("standardize", 5, mean=MEAN, std=STD)
    assert torch.equal(scaler(x), _float64_once(x, MEAN, STD))


@pytest.mark.parametrize("mode", ["unit", "raw", "reflectance"])
def test_float_inputs_are_divided_once_in_float32(mode: str) -> None:
    x = torch.randint(0, 10001, (4, 10, 6, 6)).float()
    scaler = InputScaler(mode, 10, UINT16_MAX)
    expected = (x - scaler.offset.float()) / scaler.scale.float()
    out = scaler(x)
    assert out.dtype == torch.float32 and torch.equal(out, expected)
    assert out.data_ptr() != x.data_ptr()  # the input is left as it was


def test_float_inputs_keep_their_gradient() -> None:
    x = torch.rand(2, 10, 4, 4, requires_grad=True)
    InputScaler("unit", 10, UINT16_MAX)(x).sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 1 / UINT16_MAX))
