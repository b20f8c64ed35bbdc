"""U-TAE: U-Net with Temporal Attention Encoder, for Sentinel-2 time series.

Sainte Fare Garnot & Landrieu, "Panoptic Segmentation of Satellite Image Time Series with
Convolutional Temporal Attention Networks", ICCV 2021. A convolutional encoder is shared over dates;
at the lowest resolution an L-TAE (:mod:`flairlc.models.ltae`) collapses time into one feature map
and per-head attention masks; the decoder upsamples that map and, at each level, fuses the skip
connection collapsed over time with those masks (resampled, applied per channel group).

Defaults are FLAIR #2's: 10 bands, encoder and decoder widths ``[64, 64, 128, 128]``, output
convolutions ``[32, 13]``, strided convolutions (kernel 4, stride 2, padding 1), group norm in the
encoder, L-TAE with 16 heads, ``d_model`` 256, ``d_k`` 4, ``att_group`` aggregation, reflect
padding. Inputs: ``(B, T, C, S, S)`` with ``S`` a multiple of ``2 ** (len(encoder_widths) - 1)``.

Deviation from the reference code, on purpose: the last output convolution is a plain convolution
(the reference applies batch norm and ReLU to the logits too), and padded dates never reach the
encoder, the normalization statistics or the attention (the reference detects them by value).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from flairlc.models.ltae import LTAE2d
from flairlc.nomenclature import NUM_BASELINE_CLASSES

#: Sentinel-2 bands used by FLAIR: B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12.
SENTINEL_CHANNELS = 10
#: Number of channel groups of the encoder's group norm.
ENCODER_NORM_GROUPS = 4
AGG_MODES = ("att_group", "att_mean", "mean")


class _PadConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose non-zero padding falls back to 'replicate' on maps too small to reflect.

    Reflect padding of ``p`` pixels needs at least ``p + 1`` pixels; on the 1×1 bottom of an
    ``S = 8`` window the reflection of a single pixel is that pixel, which 'replicate' gives.
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if self.padding_mode == "zeros":
            return super()._conv_forward(input, weight, bias)
        mode = self.padding_mode
        if mode == "reflect" and min(input.shape[-2:]) <= max(
            self._reversed_padding_repeated_twice
        ):
            mode = "replicate"
        padded = F.pad(input, self._reversed_padding_repeated_twice, mode=mode)
        return F.conv2d(padded, weight, bias, self.stride, 0, self.dilation, self.groups)


def _norm(kind: str | None, channels: int) -> nn.Module:
    if kind == "group":
        return nn.GroupNorm(num_groups=ENCODER_NORM_GROUPS, num_channels=channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    if kind is None:
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected 'group', 'batch', 'instance' or None")


def conv_layers(
    widths: Sequence[int],
    norm: str | None = "batch",
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 1,
    padding_mode: str = "reflect",
    last_activation: bool = True,
) -> nn.Sequential:
    """A stack of conv → norm → ReLU layers, ``widths[0] → widths[1] → ... → widths[-1]``.

    With ``last_activation=False`` the last layer is a plain convolution (no norm, no ReLU).
    """
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(
            _PadConv2d(w_in, w_out, kernel_size, stride, padding, padding_mode=padding_mode)
        )
        if last_activation or i < len(widths) - 2:
            layers += [_norm(norm, w_out), nn.ReLU()]
    return nn.Sequential(*layers)


class DownBlock(nn.Module):
    """Strided conv down-sampling by 2, then a residual pair of 3×3 convs."""

    def __init__(
        self, d_in: int, d_out: int, k: int, s: int, p: int, norm: str, padding_mode: str
    ) -> None:
        super().__init__()
        self.down = conv_layers([d_in, d_in], norm, k, s, p, padding_mode)
        self.conv1 = conv_layers([d_in, d_out], norm, padding_mode=padding_mode)
        self.conv2 = conv_layers([d_out, d_out], norm, padding_mode=padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, d_in, h, w)`` → ``(N, d_out, h / 2, w / 2)``."""
        out = self.conv1(self.down(x))
        return out + self.conv2(out)


class UpBlock(nn.Module):
    """Transposed-conv up-sampling by 2, concatenation with the skip, residual pair of convs."""

    def __init__(
        self, d_in: int, d_out: int, d_skip: int, k: int, s: int, p: int, padding_mode: str
    ) -> None:
        super().__init__()
        self.skip_conv = nn.Sequential(
            nn.Conv2d(d_skip, d_skip, kernel_size=1), nn.BatchNorm2d(d_skip), nn.ReLU()
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(d_in, d_out, kernel_size=k, stride=s, padding=p),
            nn.BatchNorm2d(d_out),
            nn.ReLU(),
        )
        self.conv1 = conv_layers([d_out + d_skip, d_out], "batch", padding_mode=padding_mode)
        self.conv2 = conv_layers([d_out, d_out], "batch", padding_mode=padding_mode)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``(B, d_in, h, w)`` and skip ``(B, d_skip, 2h, 2w)`` → ``(B, d_out, 2h, 2w)``."""
        out = torch.cat([self.up(x), self.skip_conv(skip)], dim=1)
        out = self.conv1(out)
        return out + self.conv2(out)


def aggregate_time(
    x: torch.Tensor, attn: torch.Tensor, pad_mask: torch.Tensor | None, mode: str = "att_group"
) -> torch.Tensor:
    """Collapse a skip-connection series over time with the L-TAE attention masks.

    Args:
        x: skip feature series ``(B, T, C, h, w)`` (``C`` divisible by the number of heads for
            ``att_group``).
        attn: attention masks ``(heads, B, T, h', w')`` from the lowest resolution; they sum to 1
            over valid dates and are 0 on padded ones.
        pad_mask: bool ``(B, T)``, ``True`` for padded dates, or ``None``.
        mode: ``"att_group"`` (each head's mask weights its group of channels), ``"att_mean"``
            (head-averaged mask for all channels) or ``"mean"`` (plain mean over valid dates).

    Returns:
        ``(B, C, h, w)``.
    """
    b, t, c, h, w = x.shape
    if mode == "mean":
        if pad_mask is None:
            return x.mean(dim=1)
        valid = (~pad_mask).to(x.dtype)[:, :, None, None, None]
        return (x * valid).sum(dim=1) / valid.sum(dim=1).clamp_min(1.0)
    heads = attn.shape[0]
    if mode == "att_mean":
        attn = attn.mean(dim=0, keepdim=True)
        heads = 1
    elif mode != "att_group":
        raise ValueError(f"unknown agg_mode {mode!r}: expected one of {AGG_MODES}")
    att = attn.reshape(heads * b, t, *attn.shape[-2:])
    if att.shape[-2:] != (h, w):
        att = F.interpolate(att, size=(h, w), mode="bilinear", align_corners=False)
    att = att.view(heads, b, t, 1, h, w)
    groups = x.view(b, t, heads, c // heads, h, w).permute(2, 0, 1, 3, 4, 5)
    out = (att * groups).sum(dim=2)  # (heads, B, C / heads, h, w)
    return out.permute(1, 0, 2, 3, 4).reshape(b, c, h, w)


class UTAEEncoder(nn.Module):
    """U-TAE without its classification head: Sentinel-2 series → last decoder feature map.

    Args: see :class:`UTAE` (all but ``num_classes`` and ``out_conv``).
    """

    def __init__(
        self,
        in_channels: int = SENTINEL_CHANNELS,
        encoder_widths: Sequence[int] = (64, 64, 128, 128),
        decoder_widths: Sequence[int] = (64, 64, 128, 128),
        str_conv_k: int = 4,
        str_conv_s: int = 2,
        str_conv_p: int = 1,
        agg_mode: str = "att_group",
        encoder_norm: str = "group",
        n_head: int = 16,
        d_model: int = 256,
        d_k: int = 4,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if len(encoder_widths) != len(decoder_widths):
            raise ValueError("encoder_widths and decoder_widths must have the same length")
        if encoder_widths[-1] != decoder_widths[-1]:
            raise ValueError("encoder_widths[-1] must equal decoder_widths[-1]")
        if agg_mode not in AGG_MODES:
            raise ValueError(f"unknown agg_mode {agg_mode!r}: expected one of {AGG_MODES}")
        self.agg_mode = agg_mode
        self.out_channels = decoder_widths[0]
        self.downsampling = 2 ** (len(encoder_widths) - 1)
        n = len(encoder_widths)
        self.in_conv = conv_layers(
            [in_channels, encoder_widths[0], encoder_widths[0]], encoder_norm,
            padding_mode=padding_mode,
        )  # fmt: skip
        self.down_blocks = nn.ModuleList(
            DownBlock(encoder_widths[i], encoder_widths[i + 1], str_conv_k, str_conv_s,
                      str_conv_p, encoder_norm, padding_mode)
            for i in range(n - 1)
        )  # fmt: skip
        self.up_blocks = nn.ModuleList(
            UpBlock(decoder_widths[i], decoder_widths[i - 1], encoder_widths[i - 1], str_conv_k,
                    str_conv_s, str_conv_p, padding_mode)
            for i in range(n - 1, 0, -1)
        )  # fmt: skip
        self.temporal_encoder = LTAE2d(
            in_channels=encoder_widths[-1],
            n_head=n_head,
            d_k=d_k,
            mlp=(d_model, encoder_widths[-1]),
            d_model=d_model,
        )

    def _encode_frames(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Shared spatial encoder on ``(N, C, S, S)`` frames → one map per level."""
        maps = [self.in_conv(frames)]
        for block in self.down_blocks:
            maps.append(block(maps[-1]))
        return maps

    def forward(
        self,
        sentinel: torch.Tensor,
        dates_days: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Embed a Sentinel-2 series.

        Args:
            sentinel: float ``(B, T, C, S, S)``, already scaled.
            dates_days: ``(B, T)`` date offsets in days.
            pad_mask: bool ``(B, T)``, ``True`` for padded dates, or ``None`` (nothing padded).
                Padded dates may hold any value; they do not affect the output.

        Returns:
            the last decoder feature map ``(B, decoder_widths[0], S, S)``.
        """
        b, t, c, s_h, s_w = sentinel.shape
        if s_h % self.downsampling or s_w % self.downsampling:
            raise ValueError(
                f"Sentinel window {s_h}x{s_w} must be a multiple of {self.downsampling} pixels"
            )
        if pad_mask is not None and not pad_mask.any():
            pad_mask = None
        frames = sentinel.reshape(b * t, c, s_h, s_w)
        if pad_mask is None:
            level_maps = self._encode_frames(frames)
        else:
            # encode valid frames only; padded ones stay 0 (and get 0 attention anyway)
            valid = ~pad_mask.reshape(b * t)
            encoded = self._encode_frames(frames[valid])
            level_maps = []
            for m in encoded:
                full = m.new_zeros(b * t, *m.shape[1:])
                full[valid] = m
                level_maps.append(full)
            dates_days = dates_days.masked_fill(pad_mask, 0)
        series = [m.view(b, t, *m.shape[1:]) for m in level_maps]
        out, attn = self.temporal_encoder(series[-1], dates_days, pad_mask)
        for i, block in enumerate(self.up_blocks):
            skip = aggregate_time(series[-(i + 2)], attn, pad_mask, self.agg_mode)
            out = block(out, skip)
        return out


class UTAE(nn.Module):
    """U-TAE semantic segmentation of a Sentinel-2 time series.

    Args:
        num_classes: output classes ``K``; used when ``out_conv`` is ``None``.
        in_channels: spectral bands ``C``.
        encoder_widths: channels of the encoder levels, highest resolution first; their number
            fixes the number of down-samplings (``len - 1``).
        decoder_widths: channels of the decoder levels, same order; ``[-1]`` must equal
            ``encoder_widths[-1]``.
        out_conv: channels of the output 3×3 convolutions; the last is the number of classes
            (defaults to ``[32, num_classes]``).
        str_conv_k, str_conv_s, str_conv_p: kernel, stride, padding of the strided (transposed)
            convolutions.
        agg_mode: temporal aggregation of the skips: ``"att_group"``, ``"att_mean"``, ``"mean"``.
        encoder_norm: normalization of the encoder: ``"group"``, ``"batch"`` or ``"instance"``.
        n_head: L-TAE heads (divides every encoder width for ``att_group``).
        d_model: L-TAE inner size.
        d_k: L-TAE key/query size per head.
        padding_mode: spatial padding of the 3×3 and strided convolutions.
    """

    def __init__(
        self,
        num_classes: int = NUM_BASELINE_CLASSES,
        in_channels: int = SENTINEL_CHANNELS,
        encoder_widths: Sequence[int] = (64, 64, 128, 128),
        decoder_widths: Sequence[int] = (64, 64, 128, 128),
        out_conv: Sequence[int] | None = None,
        str_conv_k: int = 4,
        str_conv_s: int = 2,
        str_conv_p: int = 1,
        agg_mode: str = "att_group",
        encoder_norm: str = "group",
        n_head: int = 16,
        d_model: int = 256,
        d_k: int = 4,
        padding_mode: str = "reflect",
    ) -> None:
        super().__init__()
        out_conv = list(out_conv) if out_conv is not None else [32, num_classes]
        self.backbone = UTAEEncoder(
            in_channels, encoder_widths, decoder_widths, str_conv_k, str_conv_s, str_conv_p,
            agg_mode, encoder_norm, n_head, d_model, d_k, padding_mode,
        )  # fmt: skip
        self.head = conv_layers(
            [decoder_widths[0], *out_conv], "batch", padding_mode=padding_mode,
            last_activation=False,
        )  # fmt: skip

    def forward(
        self,
        sentinel: torch.Tensor,
        dates_days: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Segment a Sentinel-2 series at Sentinel resolution.

        Args:
            sentinel: float ``(B, T, C, S, S)``, already scaled.
            dates_days: ``(B, T)`` date offsets in days.
            pad_mask: bool ``(B, T)``, ``True`` for padded dates, or ``None``.
            return_features: also return the last decoder feature map.

        Returns:
            logits ``(B, K, S, S)``, or ``(logits, features (B, decoder_widths[0], S, S))``.
        """
        features = self.backbone(sentinel, dates_days, pad_mask)
        logits = self.head(features)
        return (logits, features) if return_features else logits
