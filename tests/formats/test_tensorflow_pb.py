"""The dependency-free frozen-graph reader, on hand-encoded protobufs and OpenCV's files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from srplug.errors import WeightsError
from srplug.formats.tensorflow_pb import read_graph, read_pb_constants
from srplug.weights import format_from_name, load_checkpoint, load_state_dict_file
from tests.formats.reference import run_tf_graph, third_party

# ------------------------------------------------------------------ a tiny protobuf encoder


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as 10-byte two's complement, as protobuf does
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | int, wire: int = 2) -> bytes:
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)  # type: ignore[arg-type]
    if wire == 5:
        return key + payload  # type: ignore[operator]
    return key + varint(len(payload)) + payload  # type: ignore[arg-type]


def shape(*dims: int) -> bytes:
    return b"".join(field(2, field(1, d, 0)) for d in dims)


def tensor(dtype: int, dims: tuple[int, ...], body: bytes) -> bytes:
    return field(1, dtype, 0) + field(2, shape(*dims)) + body


def attr(key: str, value: bytes) -> bytes:
    return field(5, field(1, key.encode()) + field(2, value))


def node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: bytes = b"") -> bytes:
    body = field(1, name.encode()) + field(2, op.encode())
    body += b"".join(field(3, i.encode()) for i in inputs)
    return field(1, body + attrs)


def const(name: str, tensor_bytes: bytes) -> bytes:
    return node(name, "Const", attrs=attr("value", field(8, tensor_bytes)) + attr("dtype", b""))


KERNEL = np.arange(24, dtype=np.float32).reshape(2, 3, 1, 4) / 7 - 1


def sample_graph() -> bytes:
    packed = struct.pack("<3f", 1.5, -2.0, 0.25)
    return b"".join(
        [
            field(4, field(1, 27, 0)),  # GraphDef.versions: skipped
            const("k", tensor(1, KERNEL.shape, field(4, KERNEL.tobytes()))),
            const("packed", tensor(1, (3,), field(5, packed))),
            const("unpacked", tensor(1, (2,), field(5, struct.pack("<f", 3.0), 5) * 2)),
            const("fill", tensor(1, (2, 2), field(5, struct.pack("<f", 0.5)))),  # broadcast
            const("ints", tensor(3, (3,), field(7, varint(-3) + varint(0) + varint(7)))),
            const("half", tensor(19, (2,), field(13, varint(0x3C00) + varint(0xC000)))),
            const("scalar", tensor(1, (), field(5, struct.pack("<f", 0.5)))),
            const("int64", tensor(9, (2,), field(10, varint(2**40) + varint(-1)))),
            const("text", tensor(7, (2,), field(8, b"ab") + field(8, b"c"))),
            node("x", "Placeholder", attrs=attr("dtype", field(6, 1, 0))),
            node(
                "conv",
                "Conv2D",
                ("x", "k", "^ctrl"),
                attr("padding", field(2, b"SAME"))
                + attr("strides", field(1, field(3, varint(1) * 4)))
                + attr("dilation_rate", field(4, struct.pack("<f", 2.5), 5))
                + attr("use_cudnn", field(5, 1, 0))
                + attr("n", field(3, 5, 0))
                + attr("shape", field(7, shape(-1, 4)))
                + attr("func", field(10, b"\x0a\x01f")),
            ),
        ]
    )


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.pb"
    path.write_bytes(sample_graph())
    return path


def test_constants_decode_every_encoding(sample: Path) -> None:
    c = read_pb_constants(sample)
    assert c["k"].dtype == np.float32 and np.array_equal(c["k"], KERNEL)
    assert np.array_equal(c["packed"], np.array([1.5, -2.0, 0.25], np.float32))
    assert np.array_equal(c["unpacked"], np.array([3.0, 3.0], np.float32))
    assert np.array_equal(c["fill"], np.full((2, 2), 0.5, np.float32))
    assert c["ints"].dtype == np.int32 and c["ints"].tolist() == [-3, 0, 7]
    assert c["half"].dtype == np.float16 and c["half"].tolist() == [1.0, -2.0]
    assert c["scalar"].shape == () and float(c["scalar"]) == 0.5
    assert c["int64"].dtype == np.int64 and c["int64"].tolist() == [2**40, -1]
    assert c["text"].tolist() == [b"ab", b"c"]
    assert "x" not in c and "conv" not in c


def test_graph_nodes_inputs_and_attributes(sample: Path) -> None:
    nodes = {n.name: n for n in read_graph(sample)}
    conv = nodes["conv"]
    assert conv.op == "Conv2D" and conv.inputs == ("x", "k", "^ctrl")
    assert conv.attrs["padding"] == b"SAME"
    assert conv.attrs["strides"] == [1, 1, 1, 1]
    assert conv.attrs["dilation_rate"] == 2.5
    assert conv.attrs["use_cudnn"] is True and conv.attrs["n"] == 5
    assert conv.attrs["shape"] == (-1, 4)
    assert conv.attrs["func"] is None  # function attributes are not decoded
    assert nodes["x"].attrs["dtype"] == 1
    assert [n.name for n in read_graph(sample)][:2] == ["k", "packed"]  # file order


def test_load_checkpoint_reads_pb_as_tensors(sample: Path) -> None:
    assert format_from_name("FSRCNN_x2.pb") == "tensorflow"
    assert format_from_name("model.PB") == "tensorflow"
    state = load_checkpoint(sample)
    assert "text" not in state  # strings are not weights
    assert torch.equal(state["k"], torch.from_numpy(KERNEL))
    assert state["ints"].dtype == torch.int32
    state["k"][0, 0, 0, 0] = 42.0  # the tensors are writable copies
    assert load_state_dict_file(sample, format="tensorflow").keys() == state.keys()


@pytest.mark.parametrize(
    "data,match",
    [
        (sample_graph()[:-3], "truncated|past the end"),
        (b"\x0a\xff\xff\xff\xff\x0f", "past the end"),
        (b"\x0b\x00", "wire type 3"),
        (b"", "no graph nodes"),
        (field(2, b"library only"), "no graph nodes"),
        (field(1, field(1, b"nameless-op")), "without name or op"),
        (const("bad", tensor(1, (3,), field(4, b"\x00" * 8))), "tensor_content holds 8 bytes"),
        (const("dt", tensor(8, (1,), b"")), "unsupported tensor dtype"),
    ],
)
def test_malformed_files_raise_weights_error(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "bad.pb"
    path.write_bytes(data)
    with pytest.raises(WeightsError, match=match) as info:
        read_pb_constants(path)
    assert "bad.pb" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        read_graph(tmp_path / "nope.pb")
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "nope.pb")


# ------------------------------------------------------------------ OpenCV dnn_superres graphs

OPENCV_FILES = [
    f"{family}_x{s}.pb" for family in ("ESPCN", "FSRCNN", "FSRCNN-small") for s in (2, 3, 4)
]


@pytest.mark.parametrize("name", OPENCV_FILES)
def test_opencv_graph_structure(name: str) -> None:
    path = third_party("opencv_dnn_superres", name)
    scale = int(name[-4])
    nodes = read_graph(path)
    ops = [n.op for n in nodes]
    d2s = [n for n in nodes if n.op == "DepthToSpace"]
    assert len(d2s) == 1 and d2s[0].attrs["block_size"] == scale
    assert nodes[-1].op == "Transpose"
    c = read_pb_constants(path)
    assert c["NCHW_output/perm"].tolist() == [0, 3, 1, 2]
    kernels = sorted((k for k in c if k[0] == "f" and k[1:].isdigit()), key=lambda k: int(k[1:]))
    assert c[kernels[0]].shape[:3] in {(5, 5, 1)}  # 5x5 on one (Y) channel, HWIO
    assert c[kernels[-1]].shape[-1] == scale * scale
    if name.startswith("ESPCN"):
        assert ops.count("Conv2D") == 3 and ops.count("Relu") == 2 and ops.count("Tanh") == 1
    else:
        n_conv = 8 if name.startswith("FSRCNN_") else 5
        assert ops.count("Conv2D") == n_conv and ops.count("Abs") == n_conv - 1
        assert all(float(c[f"mul_{2 * i + 1}/y"]) == 0.5 for i in range(n_conv - 1))


@pytest.mark.parametrize("name", ["ESPCN_x3.pb", "FSRCNN-small_x2.pb"])
def test_opencv_reads_the_same_kernels(name: str) -> None:
    """OpenCV's own importer (OIHW blobs) agrees with the reader (HWIO constants)."""
    cv2 = pytest.importorskip("cv2")
    path = third_party("opencv_dnn_superres", name)
    try:
        net = cv2.dnn.readNetFromTensorflow(str(path))
    except cv2.error as exc:  # pragma: no cover - depends on the OpenCV build
        pytest.skip(f"this OpenCV cannot import {name}: {exc}")
    c = read_pb_constants(path)
    n_conv = 3 if name.startswith("ESPCN") else 5
    for i in range(1, n_conv + 1):
        blob = net.getParam(f"conv{i}", 0)
        assert np.array_equal(blob, c[f"f{i}"].transpose(3, 2, 0, 1))


def test_reference_interpreter_runs_opencv_graph() -> None:
    """Sanity of the test interpreter itself: ESPCN's graph ends in tanh, output in (-1, 1)."""
    path = third_party("opencv_dnn_superres", "ESPCN_x2.pb")
    x = np.random.default_rng(0).random((1, 6, 5, 1))
    out = run_tf_graph(path, x)
    assert out.shape == (1, 1, 12, 10)
    assert np.abs(out).max() < 1 and abs(out.mean() - x.mean()) < 0.1
