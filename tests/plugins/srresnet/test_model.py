"""SRResNet / MSRResNet generators and the SRGAN discriminator: sizes, options, training use."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from srplug_srresnet import SRGANDiscriminator, build
from srplug_srresnet.model import MSRResNet, SRResNet

import srplug
from srplug.errors import InputError, WeightsError


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("variant", "scale", "expected"),
    [
        # paper SRResNet x4, "1.5M": convs + BN affine + 19 shared PReLU slopes
        ("srresnet", 4, 1_549_462),
        ("srresnet", 2, 1_401_749),
        # BasicSR MSRResNet (no BN, 3x3 head/tail)
        ("msrresnet", 4, 1_517_571),
        ("msrresnet", 2, 1_369_859),
    ],
)
def test_parameter_counts(variant: str, scale: int, expected: int) -> None:
    with torch.device("meta"):
        model = build(scale=scale, variant=variant)
    assert _count(model) == expected


def test_srresnet_is_about_1_5m() -> None:
    with torch.device("meta"):
        assert round(_count(build(scale=4)) / 1e6, 1) == 1.5


def test_srgan_is_the_same_generator() -> None:
    a, b = srplug.info("srresnet"), srplug.info("srgan")
    assert a.build is b.build and a.scales == b.scales == (2, 3, 4, 8)
    assert a.resolved_default_scale() == 4
    up = srplug.get("srgan", weights=None)
    assert isinstance(up.model, SRResNet) and up.scale == 4


def test_structure_of_the_paper_network() -> None:
    net = SRResNet(4)
    assert net.conv_first.kernel_size == (9, 9) and net.conv_last.kernel_size == (9, 9)
    assert len(net.body) == 16 and isinstance(net.body[0].bn1, torch.nn.BatchNorm2d)
    assert [step.shuffle.upscale_factor for step in net.upsample] == [2, 2]
    assert [step.shuffle.upscale_factor for step in SRResNet(3, blocks=1).upsample] == [3]


def test_msrresnet_adds_the_bilinear_image() -> None:
    """With zero weights MSRResNet outputs exactly the bilinearly enlarged input."""
    net = MSRResNet(2, blocks=1, features=4)
    for p in net.parameters():
        torch.nn.init.zeros_(p)
    x = torch.rand(1, 3, 5, 4)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(net(x), expected, rtol=0, atol=0)


def test_tanh_output_is_in_01() -> None:
    out = SRResNet(2, blocks=1, features=8, output="tanh").eval()(torch.rand(1, 3, 4, 4) * 50)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"variant": "srgan"}, "variant must be one of"),
        ({"variant": "msrresnet", "output": "tanh"}, "apply to variant 'srresnet' only"),
        ({"after_body": "relu"}, "after_body must be one of"),
        ({"output": "sigmoid"}, "output must be one of"),
        ({"blocks": 0}, "blocks must be a positive int"),
    ],
)
def test_bad_options(options: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        srplug.get("srresnet", scale=4, weights=None, **options)


def test_unsupported_scale() -> None:
    with pytest.raises(InputError, match="supports scales"):
        srplug.get("srresnet", scale=5, weights=None)
    with pytest.raises(InputError, match="scale 3 or a power of 2"):
        SRResNet(6)


def test_no_weights_shipped_message() -> None:
    with pytest.raises(WeightsError, match="no default weights for x4.*weights=None"):
        srplug.get("srgan")


# ----------------------------------------------------------------------- discriminator


def test_discriminator_structure_and_count() -> None:
    d = SRGANDiscriminator()
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.features) == 7
    assert d.dense1.in_features == 512 * 6 * 6 and d.dense1.out_features == 1024
    assert _count(d) == 23_563_649


def test_discriminator_logits_and_gradients() -> None:
    torch.manual_seed(0)
    d = SRGANDiscriminator(features=8, input_size=32)
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32, requires_grad=True)
    logits = d(torch.cat([real, fake]))
    assert logits.shape == (4, 1)
    loss = F.binary_cross_entropy_with_logits(logits, torch.tensor([[1.0], [1.0], [0.0], [0.0]]))
    loss.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is not None for p in d.parameters())


def test_discriminator_other_patch_sizes() -> None:
    d = SRGANDiscriminator(features=4).eval()
    assert d(torch.rand(1, 3, 40, 33)).shape == (1, 1)
    with pytest.raises(InputError, match="H, W >= 16"):
        d(torch.rand(1, 3, 8, 8))
    with pytest.raises(InputError, match="input_size must be >= 16"):
        SRGANDiscriminator(input_size=8)
