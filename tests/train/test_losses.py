"""Pixel losses."""

from __future__ import annotations

import pytest
import torch

from srplug.errors import InputError
from srplug.train.losses import CharbonnierLoss, build_loss


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
