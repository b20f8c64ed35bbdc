"""Lightweight Temporal Attention Encoder (L-TAE) for image time series.

Garnot & Landrieu, "Lightweight Temporal Self-Attention for Classifying Satellite Image Time
Series" (2020), in its 2-D form used inside U-TAE (Sainte Fare Garnot & Landrieu, ICCV 2021): a
shared L-TAE runs at every pixel of a ``(B, T, C, h, w)`` feature series. Each of ``n_head`` heads
has one learnt master query; keys come from the input, values are channel groups of the input.
The heads' outputs are concatenated and mixed by an MLP; the attention masks ``(heads, B, T, h, w)``
are returned too, for U-TAE's decoder.

Padded dates (pad mask ``True``) are excluded everywhere time is mixed: from the input group
normalization statistics and from the attention (their weight is exactly 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Period of the sinusoidal positional encoding, in days (as the original L-TAE).
POSITIONAL_PERIOD_DAYS = 1000.0


class PositionalEncoder(nn.Module):
    """Sinusoidal encoding of date offsets (days), as in the Transformer.

    Args:
        d: encoding size per repetition (even).
        period: the ``T`` of ``sin(t / T^(2i/d))``, in days.
        repeat: number of times the encoding is tiled along channels (one per attention head).
    """

    def __init__(self, d: int, period: float = POSITIONAL_PERIOD_DAYS, repeat: int = 1) -> None:
        super().__init__()
        self.repeat = repeat
        exponent = 2 * (torch.arange(d) // 2).float() / d
        self.register_buffer("denom", torch.pow(period, exponent), persistent=False)

    def forward(self, days: torch.Tensor) -> torch.Tensor:
        """Encode ``days`` float/int ``(N, T)`` as ``(N, T, d * repeat)``."""
        angles = days.float()[..., None] / self.denom
        table = torch.where(
            torch.arange(angles.shape[-1], device=angles.device) % 2 == 0,
            torch.sin(angles),
            torch.cos(angles),
        )
        return table.repeat(1, 1, self.repeat)


def masked_group_norm(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor,
    bias: torch.Tensor,
    valid: torch.Tensor | None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Group normalization of a sequence whose statistics ignore padded time steps.

    Equivalent to ``nn.GroupNorm`` applied to ``x.transpose(1, 2)`` (statistics over a channel
    group and all time steps) when nothing is padded.

    Args:
        x: ``(N, T, C)``.
        num_groups: number of channel groups ``G`` (divides ``C``).
        weight, bias: per-channel affine parameters ``(C,)``.
        valid: bool ``(N, T)``, ``False`` for padded steps; ``None`` when nothing is padded.
        eps: added to the variance.

    Returns:
        ``(N, T, C)``; padded steps are set to 0.
    """
    if valid is None:
        return F.group_norm(x.transpose(1, 2), num_groups, weight, bias, eps).transpose(1, 2)
    n, t, c = x.shape
    grouped = x.reshape(n, t, num_groups, c // num_groups)
    m = valid.to(x.dtype)[:, :, None, None]
    count = m.sum(dim=1, keepdim=True).clamp_min(1.0) * (c // num_groups)
    mean = (grouped * m).sum(dim=(1, 3), keepdim=True) / count
    var = ((grouped - mean) ** 2 * m).sum(dim=(1, 3), keepdim=True) / count
    normed = ((grouped - mean) * torch.rsqrt(var + eps) * m).reshape(n, t, c)
    return normed * weight + bias * valid.to(x.dtype)[:, :, None]


class MultiHeadMasterQueryAttention(nn.Module):
    """L-TAE attention: one learnt query per head, keys from the input, values = channel groups.

    Args:
        n_head: number of heads.
        d_k: key/query size per head.
        d_in: input size (divisible by ``n_head``).
        attn_dropout: dropout on the attention weights (training only).
    """

    def __init__(self, n_head: int, d_k: int, d_in: int, attn_dropout: float = 0.1) -> None:
        super().__init__()
        if d_in % n_head:
            raise ValueError(f"d_model={d_in} must be divisible by n_head={n_head}")
        self.n_head, self.d_k = n_head, d_k
        self.query = nn.Parameter(torch.empty(n_head, d_k))
        nn.init.normal_(self.query, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.key = nn.Linear(d_in, n_head * d_k)
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / d_k))
        self.dropout = nn.Dropout(attn_dropout)

    def forward(
        self, x: torch.Tensor, pad_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attend over time.

        Args:
            x: ``(N, T, d_in)``.
            pad_mask: bool ``(N, T)``, ``True`` for padded steps, or ``None``.

        Returns:
            ``(N, d_in)`` the concatenated head outputs, and the attention ``(n_head, N, T)``.
        """
        n, t, d = x.shape
        keys = self.key(x).view(n, t, self.n_head, self.d_k)
        scores = torch.einsum("hk,nthk->hnt", self.query, keys) / math.sqrt(self.d_k)
        if pad_mask is not None:
            scores = scores.masked_fill(pad_mask[None], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1)
        if pad_mask is not None:
            # exp underflows to 0 already; the explicit zero also covers fully padded rows
            attn = attn.masked_fill(pad_mask[None], 0.0)
        values = x.view(n, t, self.n_head, d // self.n_head)
        out = torch.einsum("hnt,nthc->nhc", self.dropout(attn), values).reshape(n, d)
        return out, attn


class LTAE2d(nn.Module):
    """Pixel-wise L-TAE over a feature map series.

    Args:
        in_channels: channels ``C`` of the input series.
        n_head: number of attention heads (also the number of groups of the input norm).
        d_k: key/query size per head.
        mlp: widths of the output MLP; ``mlp[0]`` must equal ``d_model``.
        dropout: dropout after the MLP.
        d_model: size the input is projected to before attention.
        period: period of the positional encoding, days.
        positional_encoding: add the sinusoidal encoding of the date offsets.
    """

    def __init__(
        self,
        in_channels: int = 128,
        n_head: int = 16,
        d_k: int = 4,
        mlp: tuple[int, ...] = (256, 128),
        dropout: float = 0.2,
        d_model: int = 256,
        period: float = POSITIONAL_PERIOD_DAYS,
        positional_encoding: bool = True,
    ) -> None:
        super().__init__()
        if mlp[0] != d_model:
            raise ValueError(f"mlp[0]={mlp[0]} must equal d_model={d_model}")
        self.n_head = n_head
        self.in_norm = nn.GroupNorm(num_groups=n_head, num_channels=in_channels)
        self.inconv = nn.Linear(in_channels, d_model)
        self.positional_encoder = (
            PositionalEncoder(d_model // n_head, period=period, repeat=n_head)
            if positional_encoding
            else None
        )
        self.attention = MultiHeadMasterQueryAttention(n_head=n_head, d_k=d_k, d_in=d_model)
        layers: list[nn.Module] = []
        for w_in, w_out in zip(mlp[:-1], mlp[1:]):
            layers += [nn.Linear(w_in, w_out), nn.BatchNorm1d(w_out), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.GroupNorm(num_groups=n_head, num_channels=mlp[-1])

    def forward(
        self,
        x: torch.Tensor,
        dates_days: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Collapse the time axis.

        Args:
            x: ``(B, T, C, h, w)``.
            dates_days: ``(B, T)`` date offsets, days.
            pad_mask: bool ``(B, T)``, ``True`` for padded dates, or ``None``.

        Returns:
            the embedding ``(B, mlp[-1], h, w)`` and the attention masks ``(n_head, B, T, h, w)``.
        """
        b, t, c, h, w = x.shape
        seq = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
        pix_mask = None
        if pad_mask is not None:
            pix_mask = pad_mask[:, None, :].expand(b, h * w, t).reshape(b * h * w, t)
        valid = None if pix_mask is None else ~pix_mask
        seq = masked_group_norm(
            seq, self.n_head, self.in_norm.weight, self.in_norm.bias, valid, self.in_norm.eps
        )
        seq = self.inconv(seq)
        if self.positional_encoder is not None:
            pos = self.positional_encoder(dates_days)  # (B, T, d_model)
            seq = seq + pos[:, None].expand(b, h * w, t, -1).reshape(b * h * w, t, -1)
        out, attn = self.attention(seq, pix_mask)
        out = self.out_norm(self.dropout(self.mlp(out)))
        out = out.view(b, h, w, -1).permute(0, 3, 1, 2)
        attn = attn.view(self.n_head, b, h, w, t).permute(0, 1, 4, 2, 3)
        return out, attn
