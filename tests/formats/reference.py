"""Test helpers shared by the format and plugin tests: where the third-party weights are, and
an independent interpreter of the small frozen TensorFlow graphs OpenCV dnn_superres ships."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from srplug.formats.tensorflow_pb import read_graph
from tests.conftest import REPO_ROOT


def third_party(*parts: str) -> Path:
    """``$SRPLUG_THIRD_PARTY/parts`` (default ``../shared/weights/third_party``); skips the
    test when that file or folder is not there."""
    root = Path(
        os.environ.get("SRPLUG_THIRD_PARTY", REPO_ROOT.parent / "shared/weights/third_party")
    )
    path = root.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"third-party weights not found: {path} (set SRPLUG_THIRD_PARTY)")
    return path


def conv2d_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlation without padding: NHWC ``x``, HWIO ``kernel``, as sliding windows."""
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    # windows: (N, H - kh + 1, W - kw + 1, C_in, kh, kw)
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel)


def conv2d_same(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """TF ``Conv2D`` (stride 1, SAME, NHWC, HWIO kernel): zero padding ``(k - 1) // 2``
    before and ``k // 2`` after (``k // 2`` on both sides for odd kernels)."""
    kh, kw = kernel.shape[:2]
    pad = ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0))
    return conv2d_valid(np.pad(x, pad), kernel)


def depth_to_space(x: np.ndarray, block: int) -> np.ndarray:
    """TF ``DepthToSpace`` (NHWC, DCR) by explicit indexing:
    ``out[n, i*b + di, j*b + dj, c] = x[n, i, j, (di*b + dj)*C + c]``."""
    n, h, w, depth = x.shape
    c_out = depth // (block * block)
    out = np.empty((n, h * block, w * block, c_out), dtype=x.dtype)
    for di in range(block):
        for dj in range(block):
            for c in range(c_out):
                out[:, di::block, dj::block, c] = x[:, :, :, (di * block + dj) * c_out + c]
    return out


def run_tf_graph(path: Path, x_nhwc: np.ndarray) -> np.ndarray:
    """The last node's value of the frozen graph at ``path`` on a float64 NHWC input (NCHW
    for these graphs); see :func:`graph_values`."""
    return list(graph_values(path, x_nhwc).values())[-1]  # nodes come in graph order


def graph_values(path: Path, x_nhwc: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's value of the frozen graph at ``path`` on a float64 NHWC input, evaluated
    op by op with TensorFlow's semantics."""
    values: dict[str, np.ndarray] = {}
    nodes = read_graph(path)
    for node in nodes:
        args = [values[name.split(":")[0]] for name in node.inputs if not name.startswith("^")]
        op = node.op
        if op == "Const":
            value = node.attrs["value"]
            result = value.astype(np.float64) if value.dtype.kind == "f" else value
        elif op == "Placeholder":
            result = x_nhwc
        elif op == "Conv2D":
            assert node.attrs["padding"] == b"SAME" and list(node.attrs["strides"]) == [1] * 4
            result = conv2d_same(*args)
        elif op in ("Add", "AddV2", "BiasAdd"):
            result = args[0] + args[1]
        elif op == "Sub":
            result = args[0] - args[1]
        elif op == "Mul":
            result = args[0] * args[1]
        elif op == "Abs":
            result = np.abs(args[0])
        elif op == "Relu":
            result = np.maximum(args[0], 0.0)
        elif op == "Tanh":
            result = np.tanh(args[0])
        elif op == "DepthToSpace":
            result = depth_to_space(args[0], node.attrs["block_size"])
        elif op == "Transpose":
            result = np.transpose(args[0], args[1])
        else:
            raise NotImplementedError(f"op {op} of node {node.name}")
        values[node.name] = result
    return values
