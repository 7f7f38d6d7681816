"""EDSR / MDSR networks: the published parameter counts, options, and the [0, 1] interface."""

from __future__ import annotations

import pytest
import torch
from srplug_edsr import OFFICIAL, build_mdsr
from srplug_edsr.model import EDSR, MDSR

import srplug
from srplug.errors import InputError, WeightsError


def _count(name: str, scale: int, **options) -> int:
    with torch.device("meta"):  # no memory, no init: counts only
        model = srplug.info(name).build(scale=scale, **options)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "scale", "expected"),
    [
        # EDSR paper / EDSR-PyTorch: exact
        ("edsr-baseline", 2, 1_369_859),
        ("edsr-baseline", 3, 1_554_499),
        ("edsr-baseline", 4, 1_517_571),
        # published 40.7M (x2) and 43.1M (x4); exact counts of the same network
        ("edsr", 2, 40_729_603),
        ("edsr", 3, 43_680_003),
        ("edsr", 4, 43_089_923),
        # published ~8.0M / 7.95M: shared body + all three branches (pre-process, upsampler)
        ("mdsr", 2, 7_953_987),
    ],
)
def test_parameter_counts(name: str, scale: int, expected: int) -> None:
    assert _count(name, scale) == expected


def test_published_rounded_counts() -> None:
    assert round(_count("edsr", 2) / 1e6, 1) == 40.7
    assert round(_count("edsr", 4) / 1e6, 1) == 43.1
    assert round(_count("mdsr", 3) / 1e6, 2) == 7.95


def test_mdsr_count_parts() -> None:
    """7,953,987 = head 1,792 + 3 x pre-process 409,856 + body 80 blocks and conv 5,945,408 +
    upsamplers 147,712 (x2) + 332,352 (x3) + 295,424 (x4) + tail 1,731; the mean shift is a
    buffer. One branch alone (what runs at x2) is 6,506,499."""
    with torch.device("meta"):
        model = build_mdsr(scale=2)
    parts = {
        name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
    }
    assert parts == {
        "conv_first": 1_792,
        "pre_process": 3 * 409_856,
        "body": 80 * 73_856,
        "conv_after_body": 36_928,
        "upsample": 147_712 + 332_352 + 295_424,
        "conv_last": 1_731,
    }
    branch_x2 = 7_953_987 - 2 * 409_856 - 332_352 - 295_424
    assert branch_x2 == 6_506_499


def test_official_cards_carry_the_counts() -> None:
    for key, entry in OFFICIAL.items():
        options = {"blocks": 16} if key == "mdsr_baseline" else {}
        assert entry.card.params == _count(entry.model, entry.scale or 2, **options), key


def test_mean_shift_is_a_buffer_not_saved() -> None:
    model = EDSR(2, blocks=1, features=8)
    assert "rgb_mean" not in model.state_dict()
    assert all("mean" not in name for name, _ in model.named_parameters())


def test_identity_network_maps_01_to_01() -> None:
    """With zero weights and biases the network outputs exactly the mean shift undone: the
    range handling ([0, 1] in, x255 inside, [0, 1] out) leaves the mean image."""
    model = EDSR(2, blocks=1, features=4)
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    out = model(torch.rand(1, 3, 3, 3))
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, mean.expand_as(out), rtol=0, atol=1e-7)


def test_mdsr_scale_switches_the_branch() -> None:
    model = MDSR(2, blocks=1, features=8)
    x = torch.rand(1, 3, 4, 5)
    assert model(x).shape == (1, 3, 8, 10)
    model.scale = 4
    assert model(x).shape == (1, 3, 16, 20)
    with pytest.raises(InputError, match="holds branches for scales"):
        model.scale = 8


def test_mdsr_scales_option_from_the_command_line() -> None:
    up = srplug.get("mdsr", scale=4, weights=None, blocks=1, features=8, scales="2,4")
    assert up.model.scales == (2, 4)
    with pytest.raises(InputError, match="scales must look like"):
        build_mdsr(2, scales="two")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"blocks": 0}, "blocks must be a positive int"),
        ({"features": 1.5}, "features must be a positive int"),
        ({"res_scale": 0}, "res_scale must be a positive number"),
        ({"rgb_range": -1}, "rgb_range must be a positive number"),
    ],
)
def test_bad_options(options: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        srplug.get("edsr-baseline", scale=2, weights=None, **options)


def test_no_weights_shipped_message() -> None:
    with pytest.raises(WeightsError, match="no default weights for x2.*weights=None"):
        srplug.get("edsr", scale=2)


def test_specs() -> None:
    for name in ("edsr-baseline", "edsr", "mdsr"):
        spec = srplug.info(name)
        assert (spec.channels, spec.scales, spec.plugin) == ("rgb", (2, 3, 4), "edsr")
