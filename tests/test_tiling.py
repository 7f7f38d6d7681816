"""Tiled inference: receptive-field overlap, seamless results, streaming, OOM back-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import srplug
from srplug.default_commands import sample_image_path
from srplug.errors import OutOfMemoryError
from srplug.image import to_tensor
from srplug.io import read_image
from srplug.tiling import (
    auto_tile,
    is_out_of_memory,
    measure_receptive_field,
    plan_axis,
    receptive_field,
    run_tiled,
)
from srplug.upsampler import ModuleUpsampler
from tests.helpers.sr_nets import ChannelAttentionNet, EDSRLike
from tests.helpers.torch_utils import one_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def sample(height: int = 70, width: int = 83) -> torch.Tensor:
    """A natural-image crop ``(1, 3, height, width)`` float32 in [0, 1]."""
    x, _ = to_tensor(read_image(sample_image_path()))
    return x[:, :3, 40 : 40 + height, 60 : 60 + width].contiguous()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


@pytest.mark.parametrize(
    "length,tile,margin,blend", [(83, 24, 5, 0), (70, 16, 3, 8), (9, 32, 4, 6)]
)
def test_plan_covers_every_pixel_once_with_complementary_fades(length, tile, margin, blend):
    spans = plan_axis(length, tile, margin, blend)
    total = torch.zeros(length * 2)
    for span in spans:
        w = span.weights(2)
        w = torch.ones(2 * (span.keep_stop - span.keep_start)) if w is None else w
        total[2 * span.keep_start : 2 * span.keep_stop] += w
        assert 0 <= span.start <= span.keep_start - min(margin, span.keep_start)
        assert span.stop >= min(length, span.keep_stop + margin)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)
    assert max(s.keep_stop - s.keep_start for s in spans) <= tile + blend


def test_receptive_field_of_convolutions_is_measured():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1))
    net.append(nn.Conv2d(4, 4, 3, padding=1))
    net.append(nn.PixelShuffle(2))
    field = measure_receptive_field(net, channels=1, scale=2)
    assert field.radius == 2 + 1 + 1 + 1  # 5x5, 3x3, 3x3, plus one pixel of safety
    assert field.local and field.source == "measured"


def test_receptive_field_hint_and_global_pooling():
    class Hinted(nn.Module):
        receptive_field = 7

        def forward(self, x):
            return x

    assert receptive_field(Hinted(), channels=3, scale=1).radius == 7
    field = receptive_field(ChannelAttentionNet(2), channels=3, scale=2)
    assert field.radius is None and not field.local and "global" in field.describe()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tiled_equals_untiled_for_an_edsr_structure(scale):
    torch.manual_seed(scale)
    net = EDSRLike(scale, blocks=3, feats=16)
    x = sample()
    whole = ModuleUpsampler(net, name="edsr-like", scale=scale)(x)
    tiled = ModuleUpsampler(net, name="edsr-like", scale=scale, tile=24)
    assert max_diff(tiled(x), whole) <= 1e-5
    # head + 3 blocks x 2 + body + upsampler convs at LR: 9 px, the HR convs add part of one
    assert 10 <= tiled.receptive_field().radius <= 12
    too_thin = ModuleUpsampler(net, name="edsr-like", scale=scale, tile=24, tile_overlap=1)
    assert max_diff(too_thin(x), whole) > 1e-4  # the measured overlap is what makes it exact


@pytest.mark.parametrize(
    "name", ["espcn", "fsrcnn", "srcnn", "esr-max", "esr-tm", "esr-tr", "esr-cnn"]
)
def test_tiled_equals_untiled_for_registered_y_models(name):
    torch.manual_seed(0)
    up = srplug.get(name, scale=3, weights=None)
    tiled = ModuleUpsampler(up.model, name=name, scale=3, channels=up.channels, tile=16)
    img = (sample().permute(0, 2, 3, 1)[0].numpy() * 255).round().astype(np.float32) / 255
    assert np.abs(tiled(img) - up(img)).max() <= 1e-5


@pytest.mark.slow  # measuring EDSR-baseline's receptive field takes ~10 s on one thread
def test_edsr_baseline_tiled_equals_untiled():
    if "edsr-baseline" not in srplug.list():
        pytest.skip("the edsr plugin (plugins/srplug-edsr) is not installed")
    up = srplug.get("edsr-baseline", scale=2, weights=None)
    tiled = srplug.get("edsr-baseline", scale=2, weights=None, tile=32)
    tiled.model.load_state_dict(up.model.state_dict())
    x = sample(40, 110)
    assert max_diff(tiled(x), up(x)) <= 1e-5
    assert tiled.last_tile == 32 and tiled.receptive_field().local


def test_global_attention_is_cross_faded_and_close():
    torch.manual_seed(0)
    net = ChannelAttentionNet(2, feats=16)
    x = sample(96, 120)
    whole = ModuleUpsampler(net, name="ca", scale=2)(x)
    tiled = ModuleUpsampler(net, name="ca", scale=2, tile=32)
    out = tiled(x)
    assert tiled.tile_layout() == (32, 16)  # context and cross-fade for a global field
    diff = max_diff(out, whole)
    assert 0 < diff < 0.02  # per-tile statistics differ from the whole image's, a little


def test_batch_and_alpha_and_gray_go_through_tiles():
    torch.manual_seed(0)
    net = EDSRLike(2, blocks=1, feats=8)
    whole = ModuleUpsampler(net, name="e", scale=2)
    tiled = ModuleUpsampler(net, name="e", scale=2, tile=16)
    batch = torch.rand(2, 4, 30, 37)
    assert max_diff(tiled(batch), whole(batch)) <= 1e-5
    gray = (np.random.default_rng(0).random((33, 20)) * 255).astype(np.uint8)
    assert (tiled(gray) == whole(gray)).all()


class OOMAbove(nn.Module):
    """Nearest x2 that raises an out-of-memory error for tiles above ``limit`` pixels."""

    def __init__(self, limit: int, message: str) -> None:
        super().__init__()
        self.limit, self.message, self.sizes = limit, message, []
        self.w = nn.Parameter(torch.ones(()))
        self.receptive_field = 0

    def forward(self, x):
        self.sizes.append(x.shape[-1] * x.shape[-2])
        if x.shape[-1] * x.shape[-2] > self.limit:
            raise RuntimeError(self.message)
        return nn.functional.interpolate(x, scale_factor=2, mode="nearest") * self.w


@pytest.mark.parametrize(
    "message",
    [
        "CUDA out of memory. Tried to allocate 2.00 GiB",
        "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory",
    ],
)
def test_out_of_memory_halves_the_tile(message):
    net = OOMAbove(20 * 20, message)
    up = ModuleUpsampler(net, name="oom", scale=2, tile=64)
    x = torch.rand(1, 3, 50, 45)
    out = up(x)
    assert up.last_tile == 16
    assert torch.equal(out, nn.functional.interpolate(x, scale_factor=2, mode="nearest"))


def test_unavoidable_out_of_memory_is_a_clear_error():
    untiled = ModuleUpsampler(OOMAbove(4, "CUDA out of memory"), name="oom", scale=2)
    with pytest.raises(OutOfMemoryError, match="tile=256"):
        untiled(torch.rand(1, 3, 20, 20))
    tiled = ModuleUpsampler(OOMAbove(4, "CUDA out of memory"), name="oom", scale=2, tile=32)
    with pytest.raises(OutOfMemoryError, match="halving down to 8"):
        tiled(torch.rand(1, 3, 20, 20))
    other = ModuleUpsampler(OOMAbove(4, "shape mismatch"), name="oom", scale=2, tile=32)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        other(torch.rand(1, 3, 20, 20))


def test_out_of_memory_recognition():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("expected 3 channels"))


def test_tiles_stream_from_the_cpu_to_the_device():
    seen = []

    def forward(t):
        seen.append((t.device.type, tuple(t.shape)))
        return nn.functional.interpolate(t, scale_factor=2, mode="nearest")

    x = torch.rand(1, 1, 40, 40)
    out, tile = run_tiled(forward, x, scale=2, tile=16, margin=2, device=torch.device("cpu"))
    assert out.device.type == "cpu" and tile == 16 and len(seen) == 9
    assert max(h * w for _, (_, _, h, w) in seen) <= (14 + 4) ** 2  # never the whole image


def test_auto_tile_follows_free_memory():
    net = EDSRLike(4, blocks=1, feats=64)
    kwargs = dict(channels=3, scale=4, device=torch.device("cpu"), dtype=torch.float32, margin=8)
    small = auto_tile(net, free_bytes=256 << 20, **kwargs)
    large = auto_tile(net, free_bytes=64 << 30, **kwargs)
    assert 32 <= small < large <= 1024 and small % 8 == 0
    up = ModuleUpsampler(net, name="e", scale=4, tile="auto")
    assert up(torch.rand(1, 3, 12, 10)).shape == (1, 3, 48, 40) and up.last_tile >= 32


def test_bad_tile_values():
    for bad in (0, 4, -1, "big", 2.5, True):
        with pytest.raises(srplug.InputError, match="tile"):
            ModuleUpsampler(nn.Identity(), name="x", scale=1, tile=bad)
    with pytest.raises(srplug.InputError, match="tile_overlap"):
        ModuleUpsampler(nn.Identity(), name="x", scale=1, tile=16, tile_overlap=-2)
