"""The edge-SR networks (Navarrete Michelini et al., WACV 2022): one-layer super-resolution.

Every network maps a luma tensor ``(N, 1, h, w)`` (float, Y in [0, 1]) to
``(N, 1, h*s, w*s)`` of the same dtype. A convolution makes ``G * s*s * C`` feature maps at
the low resolution (``G`` = 1 for eSR-MAX, 2 for eSR-TM and eSR-CNN, 3 for eSR-TR); they are
read as ``G`` groups of ``C`` candidate sub-pixel images, each of ``s*s`` phases, exactly as
``pixel_shuffle`` would group them (channel ``(g*C + c)*s*s + i*s + j`` becomes pixel phase
``(i, j)`` of candidate ``c`` in group ``g``). The ``C`` candidates are reduced to one (max,
or a softmax-weighted sum) *before* the pixel shuffle, which is the same function as the
authors' shuffle-then-reduce order but moves ``G*C`` times less data through the shuffle.

Parameter names equal the authors' files (``filter.weight``; for eSR-CNN ``filter.0.weight``,
``filter.0.bias``, ``filter.2.weight``, ``filter.2.bias``, ``filter.4.weight``), so their
``*.model`` state dicts load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from srplug.errors import InputError, WeightsError
from srplug.resize import resize_weights

__all__ = [
    "FILTER_INITS",
    "EdgeSR",
    "EdgeSRCNN",
    "EdgeSRMax",
    "EdgeSRTM",
    "EdgeSRTR",
    "bicubic_phase_filters",
]

FILTER_INITS = ("identity", "bicubic")
"""Starting points of the one-layer networks' filters (only training sees them)."""


def _positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"edge-SR option {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _init_near_identity(conv: nn.Conv2d) -> None:
    """Xavier-normal weights with the centre tap of every filter set to 1.

    With this start every candidate is close to a nearest-neighbour enlargement, which is
    how the authors initialise their networks; it matters only for training.
    """
    nn.init.xavier_normal_(conv.weight, gain=1.0)
    kh, kw = conv.kernel_size
    with torch.no_grad():
        conv.weight[:, 0, kh // 2, kw // 2] = 1.0
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def bicubic_phase_filters(scale: int, k: int) -> torch.Tensor:
    """MATLAB-bicubic enlargement by ``scale`` as ``s*s`` filters ``(s*s, k, k)`` float32.

    Filter ``i*s + j``, centred on a low-resolution pixel, gives sub-pixel phase ``(i, j)`` of
    :func:`srplug.resize.imresize` away from the image border. Taps outside the ``k x k``
    window are dropped and the rest renormalised to sum 1 (only matters for ``k < 5``).
    """
    c = k // 2
    n = 4 * k + 8  # a line long enough that its middle pixel sees no border
    rows = resize_weights(n, n * scale, float(scale))
    m = n // 2
    taps = []
    for phase in range(scale):
        window = rows[m * scale + phase, m - c : m + c + 1]
        taps.append(torch.from_numpy(window / window.sum()))
    phases = [torch.outer(taps[i], taps[j]) for i in range(scale) for j in range(scale)]
    return torch.stack(phases).float()


def _init_bicubic(conv: nn.Conv2d, scale: int, C: int, noise: float = 1e-2) -> None:
    """Every value candidate = the bicubic filter of its phase + ``noise`` (Gaussian std);
    match / query / key filters small random (std 0.1), so the softmax starts near uniform.

    The network then starts close to bicubic interpolation; with an L2 loss eSR-TM x2 reached
    in 3K steps the Set5 figure that 20K L1 steps from :func:`_init_near_identity` gave.
    """
    k = conv.kernel_size[0]
    s2 = scale * scale
    with torch.no_grad():
        conv.weight.normal_(0.0, 0.1)
        value = bicubic_phase_filters(scale, k).repeat(C, 1, 1)  # (C*s*s, k, k), phase fastest
        conv.weight[: C * s2, 0] = value + noise * torch.randn_like(value)


class EdgeSR(nn.Module):
    """Common part of the edge-SR networks: features -> ``(G, C, s*s)`` groups -> reduce.

    Subclasses set :attr:`groups` and :attr:`family`, create ``self.filter`` and implement
    :meth:`last_conv` (the convolution making the ``G*s*s*C`` maps), :meth:`body` (what runs
    before it) and :meth:`reduce`.

    Without autograd (``torch.no_grad`` / ``inference_mode``, as srplug runs models) the last
    convolution and the reduction run in strips of rows whose ``G*s*s*C`` maps hold about
    :attr:`tile_elements` values, so they stay in the CPU cache: several times faster than
    one convolution over the whole image followed by the reduction, and the same result.
    When gradients are tracked the whole image is processed at once.

    ``impl`` routes the last convolution, the shuffle and the reduction through the fused
    :func:`srplug.ops.esr_upscale` kernel: ``"ref"`` (default) keeps the PyTorch path above,
    ``"auto"`` uses the compiled kernel when the extension is available (else this path),
    ``"cpp"`` / ``"cuda"`` require it. Same function; results agree to float rounding.
    """

    groups: ClassVar[int] = 1
    family: ClassVar[str] = ""
    reduction: ClassVar[str] = ""
    """The :func:`srplug.ops.esr_upscale` reduction: ``max``, ``tm``, ``tr`` or ``cnn``."""
    filter: nn.Module
    tile_elements: int = 1 << 20
    """Values (N * G*s*s*C * rows * width) per strip of the inference path (~4 MB float32)."""

    def __init__(self, scale: int, C: int, impl: str = "ref") -> None:
        super().__init__()
        self.scale = _positive_int("scale", scale)
        self.channels = _positive_int("C", C)
        self.impl = _check_impl(impl)
        self.register_load_state_dict_pre_hook(_check_loaded_shapes)

    def fuse_ops(self, impl: str) -> None:
        """Hook of :func:`srplug.ops.fuse`: run the head through the fused ``esr_upscale``
        kernel with ``impl`` (the module's ``impl`` option, set after construction)."""
        self.impl = _check_impl(impl)

    @property
    def out_features(self) -> int:
        """Channels of the last convolution: ``G * s*s * C``."""
        return self.groups * self.scale * self.scale * self.channels

    def last_conv(self) -> nn.Conv2d:
        """The bias-free convolution whose outputs are split into groups and candidates."""
        raise NotImplementedError

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The layers before :meth:`last_conv`: ``(N, 1, h, w)`` -> ``(N, Cin, h, w)``."""
        return x

    def reduce(
        self, groups: tuple[torch.Tensor, ...], out: torch.Tensor | None = None, dim: int = 1
    ) -> torch.Tensor:
        """``G`` tensors ``(N, C, s*s, h, w)`` -> ``(N, s*s, h, w)``, reduced over ``C``.

        ``dim`` is where ``C`` lies (the training path passes ``(C, s*s*N*h*w)`` tensors
        and ``dim=0``); ``out``, when given, receives the result (and is returned).
        """
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, h, w)`` Y in [0, 1] -> ``(N, 1, h*s, w*s)``, same dtype (not clamped)."""
        if x.dim() != 4 or x.shape[1] != 1:
            raise InputError(
                f"edge-SR networks take (N, 1, h, w) luma tensors, got {tuple(x.shape)}"
            )
        hidden = self.body(x)
        if self.impl != "ref":
            from srplug.ops import esr_upscale

            return esr_upscale(
                hidden, self.last_conv().weight, self.scale, self.reduction, impl=self.impl
            )
        tracking = torch.is_grad_enabled() and (
            x.requires_grad or any(p.requires_grad for p in self.parameters())
        )
        phases = self._phases_whole(hidden) if tracking else self._phases_tiled(hidden)
        return F.pixel_shuffle(phases, self.scale)  # (N, s*s, h, w) -> (N, 1, h*s, w*s)

    def _split(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(N, G*C*s*s, h, w)`` -> ``G`` views ``(N, C, s*s, h, w)`` (pixel-shuffle order)."""
        s2 = self.scale * self.scale
        return features.unflatten(1, (self.groups, self.channels, s2)).unbind(1)

    def _phases_whole(self, hidden: torch.Tensor) -> torch.Tensor:
        """The whole image at once (differentiable; what training runs).

        The last convolution's output is laid out candidate-major, ``(G, C, s*s*N*h*w)``, so
        that the reduction over the ``C`` candidates combines long contiguous rows (PyTorch's
        softmax over a short last dimension, such as ``C = 13``, is about 10x slower). With
        one input channel (eSR-MAX/TM/TR) the convolution is one matrix product
        ``(G*C*s*s, k*k) @ (k*k, N*h*w)`` of the unfolded input (``conv2d``'s weight gradient
        is slow there), otherwise a ``conv2d``. Same function as the ``conv2d`` +
        :meth:`_split` of the tiled path; ``benchmarks/esr_train_step.py`` times the two.
        """
        conv = self.last_conv()
        k = conv.kernel_size[0]
        n, cin, h, w = hidden.shape
        if cin == 1:
            cols = F.unfold(hidden, k, padding=k // 2).transpose(0, 1).reshape(k * k, -1)
            features = conv.weight.reshape(-1, k * k) @ cols  # (G*C*s*s, N*h*w)
        else:
            features = F.conv2d(hidden, conv.weight, padding=k // 2).transpose(0, 1)
        groups = features.reshape(self.groups, self.channels, -1).unbind(0)
        phases = self.reduce(groups, dim=0)  # (s*s*N*h*w,), phase-major
        return phases.view(-1, n, h, w).transpose(0, 1)

    def _phases_tiled(self, hidden: torch.Tensor) -> torch.Tensor:
        """The same in strips of rows (inference only: writes into a preallocated output)."""
        conv = self.last_conv()
        pad = conv.kernel_size[0] // 2
        n, _, h, w = hidden.shape
        weight = conv.weight.contiguous()
        padded = F.pad(hidden.contiguous(), (pad, pad, pad, pad))
        phases = hidden.new_empty((n, self.scale * self.scale, h, w))
        rows = max(1, self.tile_elements // max(1, n * self.out_features * w))
        for top in range(0, h, rows):
            bottom = min(top + rows, h)
            features = F.conv2d(padded[:, :, top : bottom + 2 * pad], weight)
            self.reduce(self._split(features), out=phases[:, :, top:bottom])
        return phases

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """``nn.Module.load_state_dict``; a :class:`WeightsError` naming what does not fit.

        Shape mismatches are reported (with the option that would fit) before anything is
        copied; missing or unexpected keys (with ``strict``) as a one-line message.
        """
        try:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        except RuntimeError as exc:
            details = " ".join(line.strip() for line in str(exc).splitlines()[1:])
            raise WeightsError(f"weights do not fit {self.describe()}: {details}") from exc

    def describe(self) -> str:
        """One line naming the network and its options (``eSR-TM (scale=2, C=16, k=7)``)."""
        return f"{self.family} ({self.extra_repr()})"

    def extra_repr(self) -> str:
        return f"scale={self.scale}, C={self.channels}"


class _OneLayer(EdgeSR):
    """eSR-MAX / TM / TR: a single bias-free ``k x k`` convolution (odd ``k``), zero padding
    ``(k-1)//2``. ``filter_init`` (one of :data:`FILTER_INITS`) picks the random start:
    ``"identity"`` (the authors' near-identity one) or ``"bicubic"`` (:func:`_init_bicubic`).
    Subclasses set :attr:`default_candidates`, the ``C`` used when none is given.
    """

    default_candidates: ClassVar[int]

    def __init__(
        self,
        scale: int = 2,
        k: int = 7,
        C: int | None = None,
        impl: str = "ref",
        filter_init: str = "identity",
    ) -> None:
        super().__init__(scale, self.default_candidates if C is None else C, impl)
        self.kernel_size = _positive_int("k", k)
        if k % 2 == 0:
            raise InputError(f"edge-SR option k must be odd (a centred filter), got {k}")
        if filter_init not in FILTER_INITS:
            raise InputError(
                f"edge-SR option filter_init must be one of {FILTER_INITS}, got {filter_init!r}"
            )
        self.filter = nn.Conv2d(
            1, self.out_features, self.kernel_size, padding=(k - 1) // 2, bias=False
        )
        if filter_init == "bicubic":
            _init_bicubic(self.filter, self.scale, self.channels)
        else:
            _init_near_identity(self.filter)

    def last_conv(self) -> nn.Conv2d:
        assert isinstance(self.filter, nn.Conv2d)
        return self.filter

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.kernel_size}"


class EdgeSRMax(_OneLayer):
    """eSR-MAX: the per-pixel maximum over ``C`` linear upscalers (maxout).

    Args:
        scale: integer upscaling factor ``s``.
        k: filter size (odd in the authors' models: 3, 5, 7).
        C: number of candidate upscalers (default 13); ``s*s*C`` ``k x k`` filters, no bias.
        impl: ``"ref"`` (PyTorch), ``"auto"``, ``"cpp"`` or ``"cuda"`` (fused kernel).
        filter_init: training start, ``"identity"`` (default) or ``"bicubic"``.
    """

    groups = 1
    family = "eSR-MAX"
    reduction = "max"
    default_candidates = 13

    def reduce(
        self, groups: tuple[torch.Tensor, ...], out: torch.Tensor | None = None, dim: int = 1
    ) -> torch.Tensor:
        (value,) = groups
        return torch.amax(value, dim=dim, out=out) if out is not None else value.amax(dim=dim)


class EdgeSRTM(_OneLayer):
    """eSR-TM (template matching): ``sum_c value_c * softmax_c(match)``.

    Args:
        scale: integer upscaling factor ``s``.
        k: filter size.
        C: (value, match) filter pairs per output phase (default 16); ``2*s*s*C`` filters.
        impl: ``"ref"`` (PyTorch), ``"auto"``, ``"cpp"`` or ``"cuda"`` (fused kernel).
        filter_init: training start, ``"identity"`` (default) or ``"bicubic"``.
    """

    groups = 2
    family = "eSR-TM"
    reduction = "tm"
    default_candidates = 16

    def reduce(
        self, groups: tuple[torch.Tensor, ...], out: torch.Tensor | None = None, dim: int = 1
    ) -> torch.Tensor:
        value, match = groups
        return _attend(value, match, out, dim)


class EdgeSRTR(_OneLayer):
    """eSR-TR (transformer): ``sum_c value_c * softmax_c(query * key)``.

    Args:
        scale: integer upscaling factor ``s``.
        k: filter size.
        C: (value, query, key) filter triples per phase (default 13); ``3*s*s*C`` filters.
        impl: ``"ref"`` (PyTorch), ``"auto"``, ``"cpp"`` or ``"cuda"`` (fused kernel).
        filter_init: training start, ``"identity"`` (default) or ``"bicubic"``.
    """

    groups = 3
    family = "eSR-TR"
    reduction = "tr"
    default_candidates = 13

    def reduce(
        self, groups: tuple[torch.Tensor, ...], out: torch.Tensor | None = None, dim: int = 1
    ) -> torch.Tensor:
        value, query, key = groups
        return _attend(value, query * key, out, dim)


class EdgeSRCNN(EdgeSR):
    """eSR-CNN: small tanh layers, then a ``3 x 3`` bias-free conv to ``2*s*s*C`` maps.

    Layers (``filter``): ``5x5 conv 1->D`` + tanh (left out when ``D == 0``), ``3x3 conv
    ->S`` + tanh, ``3x3 conv S->2*s*s*C`` without bias; all with "same" zero padding. The two
    groups are (value, key) and the reduction is ``sum_c value_c * softmax_c(key * key)``,
    as in the authors' code (a transformer reduction whose query equals its key).

    Args:
        scale: integer upscaling factor ``s``.
        C: candidates per phase.
        D: channels of the 5x5 layer (0: no such layer, the 3x3 layer reads the input).
        S: channels of the 3x3 hidden layer.
        impl: ``"ref"`` (PyTorch), ``"auto"``, ``"cpp"`` or ``"cuda"`` (fused kernel).
    """

    groups = 2
    family = "eSR-CNN"
    reduction = "cnn"

    def __init__(
        self, scale: int = 2, C: int = 8, D: int = 3, S: int = 9, impl: str = "ref"
    ) -> None:
        super().__init__(scale, C, impl)
        self.depth = _positive_int("D", D, minimum=0)
        self.width = _positive_int("S", S)
        layers: list[nn.Module] = []
        if D > 0:
            layers += [nn.Conv2d(1, D, 5, padding=2), nn.Tanh()]
        layers += [nn.Conv2d(D if D > 0 else 1, S, 3, padding=1), nn.Tanh()]
        layers.append(nn.Conv2d(S, self.out_features, 3, padding=1, bias=False))
        self.filter = nn.Sequential(*layers)
        for layer in self.filter:
            if isinstance(layer, nn.Conv2d):
                _init_near_identity(layer)

    def last_conv(self) -> nn.Conv2d:
        last = self.filter[-1]
        assert isinstance(last, nn.Conv2d)
        return last

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The tanh layers: ``(N, 1, h, w)`` -> ``(N, S, h, w)``."""
        for layer in list(self.filter)[:-1]:
            x = layer(x)
        return x

    def reduce(
        self, groups: tuple[torch.Tensor, ...], out: torch.Tensor | None = None, dim: int = 1
    ) -> torch.Tensor:
        value, key = groups
        return _attend(value, key * key, out, dim)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, D={self.depth}, S={self.width}"


def _check_impl(impl: object) -> str:
    choices = ("ref", "auto", "cpp", "cuda")
    if impl not in choices:
        raise InputError(
            f"edge-SR option impl must be one of {', '.join(map(repr, choices))}, got {impl!r}"
        )
    assert isinstance(impl, str)
    return impl


def _attend(
    value: torch.Tensor, logits: torch.Tensor, out: torch.Tensor | None, dim: int
) -> torch.Tensor:
    """``sum_c value_c * softmax_c(logits)``, ``c`` running over dimension ``dim``."""
    weighted = value * torch.softmax(logits, dim=dim)
    return torch.sum(weighted, dim=dim, out=out) if out is not None else weighted.sum(dim=dim)


def _check_loaded_shapes(
    module: nn.Module,
    state_dict: dict[str, Any],
    prefix: str,
    *args: Any,
) -> None:
    """Load pre-hook: a clear :class:`WeightsError` for tensors of the wrong shape.

    Names every mismatching tensor; when the last convolution has the wrong number of
    filters (``G * s*s * C``) it says which scale or ``C`` would fit (the usual mistake: an
    x4 file loaded at x2), and which ``k`` when the filter size differs.
    """
    assert isinstance(module, EdgeSR)
    problems = []
    for name, tensor in module.state_dict().items():
        other = state_dict.get(prefix + name)
        if isinstance(other, torch.Tensor) and other.shape != tensor.shape:
            problems.append(
                f"{prefix}{name} has shape {tuple(other.shape)}, needs {tuple(tensor.shape)}"
            )
    if problems:
        hint = _shape_hint(module, state_dict.get(f"{prefix}{_last_conv_name(module)}.weight"))
        raise WeightsError(f"weights do not fit {module.describe()}: {'; '.join(problems)}{hint}")


def _last_conv_name(module: EdgeSR) -> str:
    conv = module.last_conv()
    return next(n for n, m in module.named_modules() if m is conv)


def _shape_hint(module: EdgeSR, tensor: object) -> str:
    """Which option value would make the last convolution fit ``tensor`` ('' if unclear)."""
    if not isinstance(tensor, torch.Tensor) or tensor.dim() != 4:
        return ""
    want = module.last_conv().weight.shape
    if tensor.shape == want:
        return ""
    if tensor.shape[1:] != want[1:]:
        if isinstance(module, _OneLayer) and tensor.shape[1] == 1 and tensor.shape[2] > 0:
            kh, kw = tensor.shape[2], tensor.shape[3]
            return f"; the weights hold {kh}x{kw} filters: pass k={kh}"
        return ""
    filters = tensor.shape[0]
    per_scale = module.groups * module.channels
    if filters % per_scale == 0:
        root = math.isqrt(filters // per_scale)
        if root * root == filters // per_scale and root != module.scale:
            return f"; with C={module.channels} these weights are for x{root}: pass scale={root}"
    per_candidate = module.groups * module.scale**2
    if filters % per_candidate == 0:
        c = filters // per_candidate
        return f"; at x{module.scale} they hold C={c}: pass C={c}"
    return ""
