"""Pixel losses."""

from __future__ import annotations

import pytest
import torch

from srplug.errors import InputError
from srplug.train.losses import BorderWeightedLoss, CharbonnierLoss, build_loss, elementwise


def test_values_on_known_differences():
    sr = torch.tensor([0.0, 0.5, 1.0, 0.25])
    hr = torch.tensor([0.5, 0.5, 0.0, 0.0])  # differences -0.5, 0, 1, 0.25
    assert float(build_loss("l1")(sr, hr)) == pytest.approx((0.5 + 0 + 1 + 0.25) / 4)
    assert float(build_loss("l2")(sr, hr)) == pytest.approx((0.25 + 0 + 1 + 0.0625) / 4)
    eps = 0.1
    expected = sum((d * d + eps * eps) ** 0.5 for d in (0.5, 0.0, 1.0, 0.25)) / 4
    assert float(build_loss("charbonnier", eps)(sr, hr)) == pytest.approx(expected)


def test_charbonnier_approaches_l1_and_has_a_gradient_at_zero():
    torch.manual_seed(0)
    sr, hr = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    l1 = float(build_loss("l1")(sr, hr))
    assert float(CharbonnierLoss(1e-6)(sr, hr)) == pytest.approx(l1, rel=1e-4)
    x = torch.zeros(4, requires_grad=True)
    CharbonnierLoss(1e-3)(x, torch.zeros(4)).backward()
    assert torch.equal(x.grad, torch.zeros(4))


def test_unknown_loss_and_bad_eps():
    with pytest.raises(InputError, match="unknown loss 'ssim'"):
        build_loss("ssim")
    with pytest.raises(InputError, match="eps must be positive"):
        CharbonnierLoss(0.0)


def test_border_leaves_the_edges_out_of_the_loss():
    sr = torch.zeros(2, 1, 8, 8)
    hr = torch.zeros(2, 1, 8, 8)
    hr[..., :2, :] = 1.0  # wrong only in the top two rows
    hr[..., 3, 4] = 0.5  # and at one inside pixel
    assert float(build_loss("l2")(sr, hr)) > 0.25 / 128
    cropped = build_loss("l2", border=2)
    assert isinstance(cropped, BorderWeightedLoss)
    assert float(cropped(sr, hr)) == pytest.approx(0.25 * 2 / (2 * 4 * 4))
    sr.requires_grad_(True)
    build_loss("l1", border=2)(sr, hr).backward()
    assert torch.count_nonzero(sr.grad[..., :2, :]) == 0 and sr.grad[..., 3, 4].ne(0).all()


@pytest.mark.parametrize("kind", ["l1", "l2", "charbonnier"])
def test_border_weight_is_a_weighted_mean(kind):
    torch.manual_seed(0)
    sr, hr = torch.rand(3, 2, 10, 12), torch.rand(3, 2, 10, 12)
    w = torch.full((10, 12), 0.25)
    w[2:-2, 2:-2] = 1.0
    e = elementwise(kind, sr, hr, 1e-2)
    expected = float((e * w).sum() / (w.sum() * 6))
    got = float(build_loss(kind, 1e-2, border=2, border_weight=0.25)(sr, hr))
    assert got == pytest.approx(expected, rel=1e-6)
    # the frame's weight moves the value between the inside-only and the plain loss
    inside = float(build_loss(kind, 1e-2, border=2)(sr, hr))
    plain = float(build_loss(kind, 1e-2)(sr, hr))
    assert min(inside, plain) <= got <= max(inside, plain)


def test_border_too_large_for_the_output_names_the_fix():
    with pytest.raises(InputError, match="larger data.patch_size or a smaller loss.border"):
        build_loss("l1", border=4)(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
    with pytest.raises(InputError, match="border must be 1 or more"):
        BorderWeightedLoss("l1", 0)
    with pytest.raises(InputError, match=r"border weight must be in \[0, 1\)"):
        BorderWeightedLoss("l1", 2, 1.5)
    with pytest.raises(InputError, match="unknown loss 'ssim'"):
        build_loss("ssim", border=2)
