"""The edge-SR networks: shapes, parameter counts, and the forward against a loop reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from srplug_edgesr import build_esr_cnn, build_esr_max, build_esr_tm, build_esr_tr
from srplug_edgesr.convert import parse_model_id
from srplug_edgesr.model import EdgeSR, EdgeSRCNN, _init_bicubic, bicubic_phase_filters

import srplug
from srplug.resize import imresize

BUILDERS = {
    "eSR-MAX": build_esr_max,
    "eSR-TM": build_esr_tm,
    "eSR-TR": build_esr_tr,
    "eSR-CNN": build_esr_cnn,
}

# (model id, parameters) copied from the authors' results table (esr_authors_results.csv),
# so the counts are checked even where the shared files are absent.
AUTHORS_PARAMETERS = [
    ("eSR-MAX_s2_K7_C13", 2548),
    ("eSR-TM_s2_K7_C16", 6272),
    ("eSR-TR_s2_K7_C13", 7644),
    ("eSR-TM_s4_K7_C16", 25088),
    ("eSR-CNN_s2_C8_D3_S9", 5514),
    ("eSR-CNN_s3_C8_D3_S9", 11994),
    ("eSR-CNN_s4_C8_D3_S9", 21066),
]


def build(model_id: str) -> EdgeSR:
    parsed = parse_model_id(model_id)
    assert parsed is not None and parsed.scale is not None
    return BUILDERS[parsed.family](scale=parsed.scale, **parsed.options)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("model_id", "params"), AUTHORS_PARAMETERS)
def test_parameter_counts(model_id: str, params: int) -> None:
    assert n_params(build(model_id)) == params


def test_parameter_counts_of_every_authors_config(authors_results) -> None:
    """All 732 edge-SR configurations of the authors' table have their parameter count."""
    checked = 0
    for model_id, row in authors_results.items():
        parsed = parse_model_id(model_id)
        if parsed is None or parsed.model_name is None:
            continue
        assert n_params(build(model_id)) == int(row["parameters"]), model_id
        checked += 1
    assert checked == 3 * 144 + 300  # 144 each for MAX/TM/TR, 300 for eSR-CNN


def test_defaults_are_the_spec_configs() -> None:
    for name, model_id in [
        ("esr-max", "eSR-MAX_s2_K7_C13"),
        ("esr-tm", "eSR-TM_s2_K7_C16"),
        ("esr-tr", "eSR-TR_s2_K7_C13"),
        ("esr-cnn", "eSR-CNN_s2_C8_D3_S9"),
    ]:
        up = srplug.get(name, weights=None)
        assert up.scale == 2 and up.channels == "y"
        assert n_params(up.model) == n_params(build(model_id))


@pytest.mark.parametrize("family", list(BUILDERS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_shapes_and_dtype(family: str, scale: int) -> None:
    net = BUILDERS[family](scale=scale).eval()
    x = torch.rand(2, 1, 11, 7)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 1, 11 * scale, 7 * scale) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        cl = net.to(memory_format=torch.channels_last)(
            x.contiguous(memory_format=torch.channels_last)
        )
        torch.testing.assert_close(cl, out, rtol=1e-5, atol=1e-5)
        half = net.to(torch.bfloat16)(x.bfloat16())
    assert half.dtype == torch.bfloat16 and half.shape == out.shape


def test_options_are_checked() -> None:
    with pytest.raises(srplug.InputError, match="C must be"):
        build_esr_tm(scale=2, C=0)
    with pytest.raises(srplug.InputError, match="k must be odd"):
        build_esr_max(scale=2, k=4)
    with pytest.raises(srplug.InputError, match="D must be"):
        build_esr_cnn(scale=2, D=-1)
    with pytest.raises(srplug.InputError, match="no option"):
        srplug.get("esr-max", weights=None, D=3)
    up = srplug.get("esr-tr", scale=3, weights=None, k=5, C=4)
    assert n_params(up.model) == 3 * 9 * 4 * 25
    with pytest.raises(srplug.InputError, match=r"\(N, 1, h, w\)"):
        build_esr_max(scale=2)(torch.rand(1, 3, 4, 4))


def test_without_the_5x5_layer() -> None:
    """D = 0 leaves out the 5x5 layer: the 3x3 tanh layer reads the input."""
    net = build_esr_cnn(scale=2, C=2, D=0, S=6)
    assert [tuple(p.shape) for p in net.parameters()] == [(6, 1, 3, 3), (6,), (16, 6, 3, 3)]
    assert net(torch.rand(1, 1, 5, 6)).shape == (1, 1, 10, 12)


# ------------------------------------------------------------- the loop reference (float64)


def conv_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """(Cin, H, W) correlated with (Cout, Cin, k, k), zero padding k//2 -> (Cout, H, W)."""
    k = w.shape[-1]
    p = k // 2
    windows = sliding_window_view(np.pad(x, ((0, 0), (p, p), (p, p))), (k, k), axis=(1, 2))
    out = np.einsum("chwij,ocij->ohw", windows, w)
    return out if b is None else out + b[:, None, None]


def softmax_ref(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


def forward_ref(net: EdgeSR, y: np.ndarray) -> np.ndarray:
    """(H, W) float64 -> (H*s, W*s): features, then each output phase (i, j) assembled with
    explicit loops from the authors' channel layout (group g, candidate c, phase i*s+j)."""
    params = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    feats = y[None]
    if isinstance(net, EdgeSRCNN):
        convs = sorted({k.rsplit(".", 1)[0] for k in params}, key=lambda k: int(k.split(".")[1]))
        for i, name in enumerate(convs):
            feats = conv_ref(feats, params[f"{name}.weight"], params.get(f"{name}.bias"))
            if i < len(convs) - 1:
                feats = np.tanh(feats)
    else:
        feats = conv_ref(feats, params["filter.weight"], None)
    s, n_c, n_g = net.scale, net.channels, net.groups
    h, w = y.shape
    out = np.zeros((h * s, w * s))
    for i in range(s):
        for j in range(s):
            g = [
                np.stack([feats[(gi * n_c + c) * s * s + i * s + j] for c in range(n_c)])
                for gi in range(n_g)
            ]
            if net.family == "eSR-MAX":
                phase = g[0].max(axis=0)
            elif net.family == "eSR-TM":
                phase = (g[0] * softmax_ref(g[1])).sum(axis=0)
            elif net.family == "eSR-TR":
                phase = (g[0] * softmax_ref(g[1] * g[2])).sum(axis=0)
            else:
                phase = (g[0] * softmax_ref(g[1] * g[1])).sum(axis=0)
            out[i::s, j::s] = phase
    return out


def shuffle_first(net: EdgeSR, x: torch.Tensor) -> torch.Tensor:
    """The authors' order: pixel shuffle all G*C maps, then reduce the C candidates."""
    shuffled = F.pixel_shuffle(net.filter(x), net.scale)  # (N, G*C, H, W)
    groups = shuffled.split(net.channels, dim=1)
    if net.family == "eSR-MAX":
        return groups[0].amax(dim=1, keepdim=True)
    weights = {
        "eSR-TM": lambda: groups[1],
        "eSR-TR": lambda: groups[1] * groups[2],
        "eSR-CNN": lambda: groups[1] * groups[1],
    }[net.family]()
    return (groups[0] * torch.softmax(weights, dim=1)).sum(dim=1, keepdim=True)


def _check_against_references(net: EdgeSR, seed: int) -> None:
    """Both code paths against the float64 loop reference and the shuffle-first order.

    With autograd the whole image goes through at once; without it the last convolution and
    the reduction run in strips (here forced to 2 rows: strips 2, 2, 2, 2, 1 of 9 rows).
    """
    y = np.random.default_rng(seed).random((9, 12)) * (219 / 255) + 16 / 255
    x = torch.from_numpy(y).float()[None, None]
    expected = forward_ref(net.eval(), y)
    whole = net(x)  # parameters require grad: the differentiable whole-image path
    assert whole.requires_grad
    np.testing.assert_allclose(whole[0, 0].detach().double().numpy(), expected, atol=1e-5)
    net.tile_elements = 2 * net.out_features * 12
    with torch.no_grad():
        tiled = net(x)
        np.testing.assert_allclose(tiled[0, 0].double().numpy(), expected, atol=1e-5)
        torch.testing.assert_close(tiled, shuffle_first(net, x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", list(BUILDERS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_matches_loop_reference_random(family: str, scale: int) -> None:
    torch.manual_seed(scale)
    small = {"C": 3, "D": 2, "S": 4} if family == "eSR-CNN" else {"k": 5, "C": 3}
    _check_against_references(BUILDERS[family](scale=scale, **small), seed=scale)


@pytest.mark.parametrize("family", list(BUILDERS))
@pytest.mark.parametrize("scale", [2, 3])
def test_training_path_gradients_match_the_plain_formula(family: str, scale: int) -> None:
    """The training path (unfolded matrix product, candidate-major reduction) has
    the gradients of the authors' shuffle-then-reduce formula, for the weights and the
    input, in float64; and passes ``gradcheck``."""
    torch.manual_seed(scale)
    small = {"C": 3, "D": 2, "S": 4} if family == "eSR-CNN" else {"k": 5, "C": 3}
    net = BUILDERS[family](scale=scale, **small).double()
    x = torch.rand(2, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 1, 6 * scale, 7 * scale, dtype=torch.float64)
    grads = []
    for forward in (net, lambda t: shuffle_first(net, t)):
        net.zero_grad()
        x.grad = None
        ((forward(x) - target) ** 2).sum().backward()
        grads.append([x.grad.clone()] + [q.grad.clone() for q in net.parameters()])
    for ours, plain in zip(*grads, strict=True):
        torch.testing.assert_close(ours, plain, rtol=1e-10, atol=1e-12)
    small_x = x.detach()[:1, :, :3, :4].requires_grad_(True)
    assert torch.autograd.gradcheck(net, (small_x,))


@pytest.mark.parametrize(
    "model_id",
    [
        "eSR-MAX_s2_K7_C13",
        "eSR-TM_s2_K7_C16",
        "eSR-TR_s2_K7_C13",
        "eSR-TM_s4_K7_C16",
        "eSR-TR_s3_K5_C4",
        "eSR-CNN_s2_C8_D3_S9",
        "eSR-CNN_s4_C4_D9_S15",
    ],
)
def test_forward_matches_loop_reference_authors_weights(esr_files: Path, model_id: str) -> None:
    parsed = parse_model_id(model_id)
    assert parsed is not None and parsed.model_name is not None
    up = srplug.get(parsed.model_name, scale=parsed.scale, weights=esr_files / f"{model_id}.model")
    assert isinstance(up.model, EdgeSR)
    _check_against_references(up.model.float().to(memory_format=torch.contiguous_format), seed=0)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("k", [3, 5, 7])
def test_bicubic_phase_filters_sum_to_one(scale: int, k: int) -> None:
    filters = bicubic_phase_filters(scale, k)
    assert filters.shape == (scale * scale, k, k) and filters.dtype == torch.float32
    torch.testing.assert_close(filters.sum((1, 2)), torch.ones(scale * scale))


@pytest.mark.parametrize("family", ["eSR-MAX", "eSR-TM", "eSR-TR"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_noise_free_bicubic_start_is_matlab_bicubic(family: str, scale: int) -> None:
    """Value filters = the bicubic phase filters: away from the border (where the zero
    padding differs from MATLAB's mirrored edges) the network computes ``imresize``."""
    torch.manual_seed(0)
    net = BUILDERS[family](scale=scale, filter_init="bicubic")
    _init_bicubic(net.last_conv(), scale, net.channels, noise=0.0)
    x = torch.rand(2, 1, 23, 19, dtype=torch.float64)
    with torch.no_grad():
        out = net.double()(x)
    expected = imresize(x, float(scale))
    m = 4 * scale  # the 7x7 filters reach 3 LR pixels, MATLAB's taps 2
    torch.testing.assert_close(out[..., m:-m, m:-m], expected[..., m:-m, m:-m], rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", ["eSR-MAX", "eSR-TM", "eSR-TR"])
def test_bicubic_start_is_near_bicubic_and_seeded(family: str) -> None:
    x = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    nets = []
    for _ in range(2):
        torch.manual_seed(5)
        nets.append(BUILDERS[family](scale=2, filter_init="bicubic"))
    torch.testing.assert_close(nets[0].state_dict(), nets[1].state_dict(), rtol=0, atol=0)
    identity = BUILDERS[family](scale=2)
    with torch.no_grad():
        near = (nets[0](x) - imresize(x, 2.0))[..., 8:-8, 8:-8].abs().mean()
        far = (identity(x) - imresize(x, 2.0))[..., 8:-8, 8:-8].abs().mean()
    assert near < far / 2  # measured: MAX 0.064 vs 0.169, TM 0.012 vs 0.091, TR 0.008 vs 0.090


def test_filter_init_is_checked() -> None:
    with pytest.raises(srplug.InputError, match="filter_init must be one of"):
        build_esr_tm(scale=2, filter_init="zeros")
    assert srplug.get("esr-max", 3, weights=None, filter_init="bicubic").model.scale == 3
