"""Tests of flairlc.models: shapes, invariances, gradients, geometry and sizes of the networks."""

from __future__ import annotations

import pytest
import torch

from flairlc.models import (
    UTAE,
    UTT,
    FusionOutput,
    UNet,
    count_parameters,
    create_model,
    describe_models,
    sentinel_footprint_px,
)
from flairlc.models.ltae import masked_group_norm

K = 13
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _few_threads():
    # the test machine is shared: keep to one thread per test
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _series(b: int, t: int, s: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sentinel = torch.rand(b, t, 10, s, s, generator=g)
    dates = torch.sort(torch.randint(-100, 300, (b, t), generator=g), dim=1).values
    return sentinel, dates


def _small_utae() -> UTAE:
    torch.manual_seed(0)
    return UTAE().eval()


def _small_utt(**kwargs: object) -> UTT:
    torch.manual_seed(0)
    return UTT(**kwargs).eval()


# --- factory -------------------------------------------------------------------------------------


def test_create_model_names_and_error():
    assert isinstance(create_model("unet"), UNet)
    assert isinstance(create_model("UTAE", num_classes=5), UTAE)
    assert isinstance(create_model("utt", encoder_name="resnet18"), UTT)
    with pytest.raises(ValueError, match="'unet', 'utae', 'utt'"):
        create_model("segformer")


# --- U-Net ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 96])
def test_unet_shapes(size):
    model = UNet().eval()
    with torch.no_grad():
        out = model(torch.rand(2, 5, size, size))
    assert out.shape == (2, K, size, size)


def test_unet_other_arch_and_encoder():
    model = UNet(num_classes=4, in_channels=3, encoder_name="resnet18", arch="fpn").eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 4, 64, 64)


def test_unet_batch_independence():
    torch.manual_seed(0)
    model = UNet().eval()
    x = torch.rand(3, 5, 64, 64)
    y = x.clone()
    y[1:] = torch.rand(2, 5, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], model(y)[0], atol=ATOL, rtol=0)


def test_unet_metadata_changes_output_and_is_required():
    torch.manual_seed(0)
    model = UNet(use_metadata=True, metadata_size=45).eval()
    x = torch.rand(2, 5, 64, 64)
    m1, m2 = torch.rand(2, 45), torch.rand(2, 45)
    with torch.no_grad():
        assert not torch.allclose(model(x, m1), model(x, m2))
        with pytest.raises(ValueError, match="metadata"):
            model(x)
    # one sample's metadata only changes that sample's output
    m3 = m1.clone()
    m3[1] = m2[1]
    with torch.no_grad():
        torch.testing.assert_close(model(x, m1)[0], model(x, m3)[0], atol=ATOL, rtol=0)


# --- U-TAE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("s", "t"), [(8, 1), (16, 4), (40, 3)])
def test_utae_shapes(s, t):
    model = _small_utae()
    sentinel, dates = _series(2, t, s)
    with torch.no_grad():
        logits, features = model(sentinel, dates, return_features=True)
        assert model(sentinel, dates).shape == (2, K, s, s)
    assert logits.shape == (2, K, s, s)
    assert features.shape == (2, 64, s, s)


def test_utae_rejects_bad_window():
    sentinel, dates = _series(1, 2, 12)
    with pytest.raises(ValueError, match="multiple of 8"):
        _small_utae()(sentinel, dates)


def test_utae_batch_independence():
    model = _small_utae()
    sentinel, dates = _series(3, 4, 16)
    other, other_dates = _series(3, 4, 16, seed=1)
    s2, d2 = sentinel.clone(), dates.clone()
    s2[1:], d2[1:] = other[1:], other_dates[1:]
    with torch.no_grad():
        torch.testing.assert_close(model(sentinel, dates)[0], model(s2, d2)[0], atol=ATOL, rtol=0)


def test_utae_pad_invariance():
    model = _small_utae()
    sentinel, dates = _series(2, 3, 16)
    with torch.no_grad():
        ref, ref_feat = model(sentinel, dates, return_features=True)
        # sample 0 gets 2 padded dates of garbage, sample 1 one real extra date and one padded
        extra, extra_dates = _series(2, 2, 16, seed=5)
        padded = torch.cat([sentinel, 1e3 * extra], dim=1)
        padded_dates = torch.cat([dates, torch.tensor([[999, -999], [400, 7]])], dim=1)
        pad_mask = torch.tensor([[False] * 3 + [True, True], [False] * 4 + [True]])
        out, feat = model(padded, padded_dates, pad_mask, return_features=True)
        torch.testing.assert_close(out[0], ref[0], atol=ATOL, rtol=0)
        torch.testing.assert_close(feat[0], ref_feat[0], atol=ATOL, rtol=0)
        # sample 1 (one extra real date) equals its own unpadded 4-date run
        alone = model(padded[1:, :4], padded_dates[1:, :4])
        torch.testing.assert_close(out[1:], alone, atol=ATOL, rtol=0)
        # NaN in padded frames does not leak either
        padded[0, 3:] = float("nan")
        torch.testing.assert_close(
            model(padded, padded_dates, pad_mask)[0], ref[0], atol=ATOL, rtol=0
        )


def test_utae_all_false_pad_mask_equals_none():
    model = _small_utae()
    sentinel, dates = _series(2, 3, 8)
    with torch.no_grad():
        torch.testing.assert_close(
            model(sentinel, dates, torch.zeros(2, 3, dtype=torch.bool)), model(sentinel, dates)
        )


def test_masked_group_norm_matches_group_norm_on_valid_steps():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 32)
    w, b = torch.randn(32), torch.randn(32)
    valid = torch.ones(4, 5, dtype=torch.bool)
    valid[:, 3:] = False
    masked = masked_group_norm(x, 8, w, b, valid)
    plain = masked_group_norm(x[:, :3], 8, w, b, None)
    torch.testing.assert_close(masked[:, :3], plain, atol=1e-5, rtol=0)
    assert torch.all(masked[:, 3:] == 0)


def test_utae_date_order():
    model = _small_utae()
    sentinel, dates = _series(1, 5, 16)
    perm = torch.tensor([3, 0, 4, 2, 1])
    with torch.no_grad():
        ref = model(sentinel, dates)
        # frames and their dates permuted together: same series, same output
        same = model(sentinel[:, perm], dates[:, perm])
        torch.testing.assert_close(same, ref, atol=ATOL, rtol=0)
        # dates permuted alone: a different series, a different output
        other = model(sentinel, dates[:, perm])
        assert (other - ref).abs().max() > 1e-3


# --- U-T&T ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "s", "t"), [(64, 8, 2), (128, 16, 3), (96, 40, 1)])
def test_utt_shapes(h, s, t):
    model = _small_utt()
    sentinel, dates = _series(2, t, s)
    with torch.no_grad():
        out = model(torch.rand(2, 5, h, h), sentinel, dates)
    assert isinstance(out, FusionOutput)
    assert out.logits.shape == (2, K, h, h)
    assert out.aux_logits is not None and out.aux_logits.shape == (2, K, h, h)


def test_utt_batch_independence():
    model = _small_utt(use_metadata=True)
    aerial = torch.rand(3, 5, 64, 64)
    sentinel, dates = _series(3, 3, 16)
    metadata = torch.rand(3, 45)
    a2, s2, m2 = aerial.clone(), sentinel.clone(), metadata.clone()
    a2[1:], s2[1:], m2[1:] = (
        torch.rand(2, 5, 64, 64),
        torch.rand(2, 3, 10, 16, 16),
        torch.rand(2, 45),
    )
    with torch.no_grad():
        ref = model(aerial, sentinel, dates, metadata=metadata)
        out = model(a2, s2, dates, metadata=m2)
    torch.testing.assert_close(out.logits[0], ref.logits[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(out.aux_logits[0], ref.aux_logits[0], atol=ATOL, rtol=0)


def test_utt_collapsed_path_is_per_sample():
    # the reference code broadcast sample 0's collapsed term to the whole batch
    model = _small_utt()
    emb = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        terms = model.fusion(emb, (2, 2), [(4, 4)] * 6)
        single = model.fusion(emb[1:], (2, 2), [(4, 4)] * 6)
    for both, one in zip(terms, single):
        torch.testing.assert_close(both[1:], one, atol=ATOL, rtol=0)


def test_utt_pad_invariance():
    model = _small_utt()
    aerial = torch.rand(2, 5, 64, 64)
    sentinel, dates = _series(2, 3, 16)
    padded = torch.cat([sentinel, 50 * torch.rand(2, 2, 10, 16, 16)], dim=1)
    padded_dates = torch.cat([dates, torch.full((2, 2), 12345)], dim=1)
    pad_mask = torch.tensor([[False] * 3 + [True] * 2] * 2)
    with torch.no_grad():
        ref = model(aerial, sentinel, dates)
        out = model(aerial, padded, padded_dates, pad_mask)
    torch.testing.assert_close(out.aux_logits, ref.aux_logits, atol=ATOL, rtol=0)
    # the randomly initialised U-Net amplifies float32 round-off (~1e-7 in the embedding) along
    # with the logits (|logits| ~ 20 here), so bound the error relative to their scale
    scale = ref.logits.abs().max().item()
    torch.testing.assert_close(out.logits, ref.logits, atol=ATOL * scale, rtol=0)


def test_utt_without_sentinel_equals_unet_path():
    model = _small_utt(use_metadata=True)
    aerial, metadata = torch.rand(2, 5, 64, 64), torch.rand(2, 45)
    sentinel, dates = _series(2, 2, 16)
    with torch.no_grad():
        out = model(aerial, metadata=metadata)
        unet_alone = model.unet(aerial, metadata)
        fused = model(aerial, sentinel, dates, metadata=metadata)
    assert out.aux_logits is None
    assert torch.equal(out.logits, unet_alone)
    assert not torch.allclose(fused.logits, unet_alone)


def test_utt_modality_dropout():
    model = _small_utt(drop_utae_modality=1.0)
    aerial = torch.rand(2, 5, 64, 64)
    sentinel, dates = _series(2, 2, 16)
    model.train()
    for m in model.modules():  # dropout off, keep the training branch of modality dropout
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        torch.manual_seed(1)
        dropped = model(aerial, sentinel, dates)
        torch.manual_seed(1)
        alone = model(aerial)
    torch.testing.assert_close(dropped.logits, alone.logits)
    assert dropped.aux_logits is not None
    model.eval()  # never at inference
    with torch.no_grad():
        assert not torch.allclose(model(aerial, sentinel, dates).logits, model(aerial).logits)


def test_utt_gradients_reach_both_branches_and_fusion():
    torch.manual_seed(0)
    model = UTT().train()
    sentinel, dates = _series(2, 3, 16)
    out = model(torch.rand(2, 5, 64, 64), sentinel, dates)
    target = torch.randint(0, K, (2, 64, 64))
    loss = torch.nn.functional.cross_entropy(
        out.logits, target
    ) + torch.nn.functional.cross_entropy(out.aux_logits, target)
    loss.backward()

    def has_grad(module: torch.nn.Module) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    assert has_grad(model.unet.net.encoder) and has_grad(model.unet.net.decoder)
    assert has_grad(model.utae.temporal_encoder) and has_grad(model.utae.in_conv)
    assert has_grad(model.fusion.cropped) and has_grad(model.fusion.collapsed)
    assert has_grad(model.aux_head)
    # the deepest level's fusion terms feed the decoder
    assert model.fusion.cropped[-1].weight.grad.abs().sum() > 0
    assert model.fusion.collapsed[-1][0].weight.grad.abs().sum() > 0


def test_utt_zero_init_fusion_starts_as_the_unet_and_then_learns():
    model = _small_utt(fusion_zero_init=True)
    aerial = torch.rand(2, 5, 64, 64)
    sentinel, dates = _series(2, 3, 16)
    with torch.no_grad():
        fused = model(aerial, sentinel, dates)
        alone = model(aerial)
    assert torch.equal(fused.logits, alone.logits)  # the fusion adds exact zeros at first
    assert not torch.equal(_small_utt()(aerial, sentinel, dates).logits, alone.logits)
    # the zeroed last layers still receive gradients, so the fusion can grow
    model.train()
    out = model(aerial, sentinel, dates)
    torch.nn.functional.cross_entropy(out.logits, torch.randint(0, K, (2, 64, 64))).backward()
    assert model.fusion.cropped[-1].weight.grad.abs().sum() > 0
    assert model.fusion.collapsed[-1][-1].weight.grad.abs().sum() > 0


def test_footprint_from_geometry():
    assert sentinel_footprint_px(256) == 5
    assert sentinel_footprint_px(512) == 10
    assert sentinel_footprint_px(512, aerial_resolution_m=0.5) == 26
    assert sentinel_footprint_px(512, sentinel_resolution_m=20.0) == 5
    assert sentinel_footprint_px(32) == 1  # never empty
    assert UTT(encoder_name="resnet18").footprint_px((512, 256)) == (10, 5)
    assert UTT(encoder_name="resnet18", aerial_resolution_m=0.1).footprint_px((512, 512)) == (5, 5)


def test_utt_aux_head_is_footprint_crop():
    # auxiliary logits = 1x1 conv of the embedding's centre crop, nearest-upsampled: every 8th
    # aerial pixel of a 64 px patch covering 8 S2 pixels samples one crop pixel
    model = _small_utt(aerial_resolution_m=1.25)  # 64 px * 1.25 m = 80 m -> 8 S2 px
    assert model.footprint_px((64, 64)) == (8, 8)
    aerial = torch.rand(1, 5, 64, 64)
    sentinel, dates = _series(1, 2, 16)
    with torch.no_grad():
        out = model(aerial, sentinel, dates)
        emb = model.utae(sentinel, dates)
        aux = model.aux_head(emb[..., 4:12, 4:12])
    torch.testing.assert_close(out.aux_logits[..., ::8, ::8], aux, atol=ATOL, rtol=0)


def test_determinism_under_seed():
    sentinel, dates = _series(1, 2, 8)
    aerial = torch.rand(1, 5, 64, 64)
    outs = []
    for _ in range(2):
        model = _small_utt()
        with torch.no_grad():
            outs.append(model(aerial, sentinel, dates).logits)
    assert torch.equal(outs[0], outs[1])


# --- sizes ---------------------------------------------------------------------------------------


def test_parameter_counts_pinned():
    counts = {(r["name"], tuple(r["kwargs"])): r["parameters"] for r in describe_models()}
    assert counts == {
        ("unet", ()): 24_444_381,
        ("unet", ("use_metadata",)): 24_466_301,
        ("utae", ()): 2_284_173,
        ("utt", ()): 27_232_433,
        ("utt", ("use_metadata",)): 27_254_353,
        ("multimodal", ()): 75_039_146,
    }
    # U-T&T = U-Net + U-TAE without its head + fusion + auxiliary head
    utae_head = count_parameters(UTAE().head)
    assert counts[("utt", ())] > counts[("unet", ())] + counts[("utae", ())] - utae_head
