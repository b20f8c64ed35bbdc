"""Input scaling: the paper's [0, 1] scaling, per-channel standardization, or none."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from flairlc.data.bands import AERIAL_BAND_MEAN, AERIAL_BAND_STD, AERIAL_BANDS

#: IGN's per-channel statistics of FLAIR aerial imagery (R, G, B, NIR, elevation), digital numbers
#: (per band: :mod:`flairlc.data.bands`).
AERIAL_MEAN = tuple(AERIAL_BAND_MEAN[b] for b in AERIAL_BANDS)
AERIAL_STD = tuple(AERIAL_BAND_STD[b] for b in AERIAL_BANDS)
#: Divisors of the paper's [0, 1] scaling: uint8 for aerial, uint16 for Sentinel-2.
UINT8_MAX = 255.0
UINT16_MAX = 65535.0
#: Sentinel-2 reflectance scale of FLAIR arrays.
REFLECTANCE_SCALE = 10000.0
#: IGN's per-band statistics of FLAIR-HUB's SPOT_RGBI (R, G, B, NIR digital numbers), from its
#: training configuration (``SPOT_RGBI_means``/``SPOT_RGBI_stds``): SPOT is standardized with them.
SPOT_MEAN = (433.26, 508.75, 467.77, 1137.03)
SPOT_STD = (312.76, 284.61, 226.02, 543.11)
#: Fixed affine scaling of Sentinel-1 backscatter (VV, VH, dB): ``(x - mean) / std``, the means
#: near the typical backscatter of land (VV about -10 dB, VH about -17 dB), 5 dB to one unit.
#: (IGN's FLAIR-HUB code feeds the dB values as they are; centred inputs train better from scratch.)
SENTINEL1_DB_MEAN = (-10.0, -17.0)
SENTINEL1_DB_STD = (5.0, 5.0)
#: Modes of :class:`InputScaler`.
SCALING_MODES = ("unit", "standardize", "reflectance", "raw")
#: Elements looked up per call on CPU: the uint8 → intp index copy ``np.take`` makes stays small
#: (512 KiB) and is reused from the heap, where a whole 512 × 512 band took 2 MiB of fresh memory.
LOOKUP_CHUNK = 65536


class InputScaler(nn.Module):
    """Scale raw inputs to floats: ``(x - offset) / scale`` per channel.

    Args:
        mode: ``"unit"`` (divide by the dtype's maximum, as in the paper), ``"standardize"`` (per
            channel mean and std), ``"reflectance"`` (Sentinel-2 only: ×10 000 → reflectance), or
            ``"raw"`` (values as they are, only cast to float: what the official code fed U-TAE
            with monthly means, reflectance ×10 000).
        channels: number of channels (axis -3 of the input).
        max_value: divisor of ``"unit"`` scaling.
        mean, std: per-channel statistics of ``"standardize"``, in raw units.
    """

    def __init__(
        self,
        mode: str,
        channels: int,
        max_value: float = UINT8_MAX,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if mode == "unit":
            offset, scale = [0.0] * channels, [max_value] * channels
        elif mode == "reflectance":
            offset, scale = [0.0] * channels, [REFLECTANCE_SCALE] * channels
        elif mode == "raw":
            offset, scale = [0.0] * channels, [1.0] * channels
        elif mode == "standardize":
            if mean is None or std is None or len(mean) != channels or len(std) != channels:
                raise ValueError(f"standardize needs {channels} means and stds, got {mean} and {std}")
            offset, scale = list(mean), list(std)
        else:
            raise ValueError(f"unknown scaling {mode!r}: expected one of {SCALING_MODES}")
        self.mode = mode
        self._zero_offset = not any(offset)
        # float64: the statistics as given (105.08, not its nearest float32).
        self.register_buffer("offset", torch.tensor(offset, dtype=torch.float64).view(-1, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float64).view(-1, 1, 1), persistent=False)
        # uint8 inputs (aerial bands) take one of 256 values per channel: their scaled values,
        # computed in float64 and rounded once, are a table (C, 256) float32.
        levels = torch.arange(256, dtype=torch.float64)
        table = ((levels[None, :] - self.offset.view(-1, 1)) / self.scale.view(-1, 1)).float()
        self.register_buffer("uint8_table", table, persistent=False)
        self._pair_tables: np.ndarray | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``(…, C, H, W)`` raw values to float32.

        Results are those of a float64 computation rounded once to float32, as in IGN's code
        (numpy float64, then float32); a float32 ``(x - mean) / std`` rounds twice and differs
        by an ulp, which an imported model's first layers can amplify. uint8 inputs are looked up
        in a table (as fast as float32 arithmetic); other inputs are computed in float64 for
        ``"standardize"`` and divided in float32 otherwise (one rounding either way).
        """
        if x.dtype == torch.uint8:
            if x.device.type == "cpu":
                return self._lookup_cpu(x)
            out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
            for c in range(x.shape[-3]):
                band = x[..., c, :, :]
                out[..., c, :, :] = self.uint8_table[c].index_select(0, band.reshape(-1).long()).view(band.shape)
            return out
        if self.mode != "standardize" or x.device.type == "mps":  # (no float64 on mps)
            x = x.float()
            if x.device.type != "cpu" or x.requires_grad:  # (no out= under autograd)
                return (x - self.offset.float()) / self.scale.float()
            if self._zero_offset:  # x - 0 is x: one pass over the sample, not two
                return torch.div(x, self.scale.float(), out=_empty_float32(x.shape))
            out = torch.sub(x, self.offset.float(), out=_empty_float32(x.shape))
            return out.div_(self.scale.float())
        return ((x.double() - self.offset) / self.scale).float()

    def _lookup_cpu(self, x: torch.Tensor) -> torch.Tensor:
        """The table lookup of a uint8 CPU tensor ``(…, C, H, W)``: float32, same shape.

        Two neighbouring pixels are looked up at once when ``H × W`` is even: their two bytes,
        read as one uint16, index a table of the two scaled values (:meth:`pair_tables`), which
        halves the lookups (1.2 → 0.8 ms for a 512 × 512 × 5 sample). ``np.take`` reads the
        indices in chunks of :data:`LOOKUP_CHUNK`, where ``index_select`` needs a whole int64 copy
        of each band (8 bytes per pixel of fresh memory).
        """
        channels, height, width = x.shape[-3:]
        src = x.reshape(-1, channels, height * width).numpy()
        out = _empty_float32(src.shape)
        dst = out.numpy()
        if (height * width) % 2 == 0:
            table, src, dst = self.pair_tables(), src.view(np.uint16), dst.view(np.uint64)
        else:
            table = self.uint8_table.cpu().numpy()
        for n in range(src.shape[0]):
            for c in range(channels):
                for start in range(0, src.shape[-1], LOOKUP_CHUNK):
                    chunk = slice(start, start + LOOKUP_CHUNK)
                    # mode="clip" lets np.take write straight into `out` ("raise" buffers it);
                    # the indices all fall within the table's rows, so nothing is clipped.
                    np.take(table[c], src[n, c, chunk], out=dst[n, c, chunk], mode="clip")
        return out.view(x.shape)

    def pair_tables(self) -> np.ndarray:
        """uint64 ``(C, 65 536)``: for each pair of uint8 values, read as one native uint16, the
        two float32 scaled values side by side (built once, 512 KiB per channel)."""
        if self._pair_tables is None:
            table = self.uint8_table.cpu().numpy()
            first, second = np.tile(table, (1, 256)), np.repeat(table, 256, axis=1)  # low byte, high byte
            if sys.byteorder == "big":
                first, second = second, first
            self._pair_tables = np.ascontiguousarray(np.stack([first, second], axis=-1)).view(np.uint64)[..., 0]
        return self._pair_tables


def _empty_float32(shape: Sequence[int]) -> torch.Tensor:
    """An uninitialized float32 CPU tensor whose memory numpy allocates.

    numpy asks for transparent huge pages for buffers from 4 MiB (one page fault per 2 MiB
    instead of 512): a 512 × 512 × 5 float32 sample costs 5 MiB of fresh memory per call, whose
    page faults cost as much as the scaling itself on a virtual machine.
    """
    return torch.from_numpy(np.empty(tuple(shape), dtype=np.float32))
