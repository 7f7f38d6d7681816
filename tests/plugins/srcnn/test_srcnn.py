"""The srcnn plugin: network shape and size, an independent forward, Lornatang's weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from srplug_srcnn.convert import convert_state_dict, scale_from_name

import srplug
from srplug.errors import InputError, WeightsError
from srplug.resize import imresize
from srplug.weights import load_state_dict_file, save_safetensors
from tests.formats.reference import conv2d_same, third_party

SCALES = (2, 3, 4)


def n_params(f1: int, f2: int, f3: int, n1: int, n2: int) -> int:
    """Weights + biases of the three layers (1 -> n1 -> n2 -> 1 channels)."""
    return (f1 * f1 * 1 + 1) * n1 + (f2 * f2 * n1 + 1) * n2 + (f3 * f3 * n2 + 1) * 1


def reference_forward(
    x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], scale: int
) -> np.ndarray:
    """SRCNN in float64 numpy: MATLAB bicubic, then zero-padded convolutions as sliding-window
    sums (OIHW kernels), ReLU between them. ``x`` is ``(N, 1, h, w)``."""
    y = imresize(torch.from_numpy(x), float(scale)).numpy().transpose(0, 2, 3, 1)
    for i, (weight, bias) in enumerate(layers):
        y = conv2d_same(y, weight.astype(np.float64).transpose(2, 3, 1, 0)) + bias
        if i < len(layers) - 1:
            y = np.maximum(y, 0.0)
    return y.transpose(0, 3, 1, 2)


def layers_of(model: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (c.weight.detach().double().numpy(), c.bias.detach().double().numpy())
        for c in (model.conv1, model.conv2, model.conv3)
    ]


@pytest.mark.parametrize(
    "options,expected",
    [({}, 8129), ({"f2": 5}, 57281), ({"f1": 9, "f2": 3, "f3": 5, "n1": 32, "n2": 16}, 0)],
)
def test_parameter_count(options: dict[str, int], expected: int) -> None:
    up = srplug.get("srcnn", scale=2, weights=None, **options)
    config = {"f1": 9, "f2": 1, "f3": 5, "n1": 64, "n2": 32, **options}
    count = sum(p.numel() for p in up.model.parameters())
    assert count == n_params(**config)
    if expected:  # the paper's 9-1-5 (8K) and 9-5-5 (57K) networks
        assert count == expected


@pytest.mark.parametrize("scale", SCALES)
def test_shapes_and_independent_forward(scale: int) -> None:
    up = srplug.get("srcnn", scale=scale, weights=None, f2=3, n1=8, n2=6)
    assert (up.name, up.scale, up.channels) == ("srcnn", scale, "y")
    model = up.model.float().to(memory_format=torch.contiguous_format)
    x = torch.rand(2, 1, 9, 7, generator=torch.Generator().manual_seed(scale))
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 1, 9 * scale, 7 * scale) and out.dtype == torch.float32
    expected = reference_forward(x.double().numpy(), layers_of(model), scale)
    assert np.abs(out.double().numpy() - expected).max() < 1e-5


def test_options_are_checked() -> None:
    with pytest.raises(InputError, match="f1 must be odd"):
        srplug.get("srcnn", weights=None, f1=8)
    with pytest.raises(InputError, match="padding_mode"):
        srplug.get("srcnn", weights=None, padding_mode="circularish")
    with pytest.raises(InputError, match="no option"):
        srplug.get("srcnn", weights=None, d=56)


def test_padding_mode_changes_only_the_border() -> None:
    torch.manual_seed(0)
    zeros = srplug.get("srcnn", scale=2, weights=None).model
    reflect = srplug.get("srcnn", scale=2, weights=None, padding_mode="reflect").model
    reflect.load_state_dict(zeros.state_dict())
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():
        a, b = zeros(x), reflect(x)
    border = 9 // 2 + 5 // 2
    assert torch.allclose(
        a[..., border:-border, border:-border], b[..., border:-border, border:-border]
    )
    assert not torch.allclose(a, b)


def test_scale_from_name() -> None:
    assert scale_from_name("srcnn_x3.pth") == 3
    assert scale_from_name("/a/x2/srcnn_X4.pth") == 4
    assert scale_from_name("srcnn.pth") is None
    assert scale_from_name("max4.pth") is None


def test_own_weights_round_trip_with_inferred_options(tmp_path: Path) -> None:
    torch.manual_seed(1)
    up = srplug.get("srcnn", scale=3, weights=None, f2=5, n1=16, n2=8)
    path = save_safetensors(up.model.state_dict(), tmp_path / "mine_x3.safetensors")
    again = srplug.get("srcnn", scale=3, weights=path)  # n1, n2, f2 read from the file
    assert (again.model.conv1.out_channels, again.model.conv2.kernel_size) == (16, (5, 5))
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(up.model(x), again.model(x))


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(WeightsError, match="not an SRCNN checkpoint"):
        convert_state_dict({"first_part.0.weight": torch.zeros(56, 1, 5, 5)})


# ------------------------------------------------------------------ Lornatang/SRCNN-PyTorch


@pytest.mark.parametrize("scale", SCALES)
def test_lornatang_checkpoint_loads_and_matches(scale: int) -> None:
    path = third_party("srcnn_lornatang", f"srcnn_x{scale}.pth")
    raw = load_state_dict_file(path)
    up = srplug.get("srcnn", scale=scale, weights=path)
    model = up.model.float().to(memory_format=torch.contiguous_format)
    assert sum(p.numel() for p in model.parameters()) == 8129
    layers = [
        (raw[f"{k}.weight"].double().numpy(), raw[f"{k}.bias"].double().numpy())
        for k in ("features.0", "map.0", "reconstruction")
    ]
    x = torch.rand(1, 1, 10, 13, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    with torch.no_grad():
        out = model(x).double().numpy()
    assert np.abs(out - reference_forward(x.double().numpy(), layers, scale)).max() < 1e-5


def test_lornatang_wrong_scale_or_family_is_a_weights_error() -> None:
    path = third_party("srcnn_lornatang", "srcnn_x3.pth")
    with pytest.raises(WeightsError, match=r"is for x3, not x2: pass scale=3"):
        srplug.get("srcnn", scale=2, weights=path)
    with pytest.raises(WeightsError, match="not an SRCNN checkpoint"):
        srplug.get("srcnn", weights=third_party("fsrcnn_yjn870", "fsrcnn_x2.pth"))
