"""A dependency-free reader for frozen TensorFlow graphs (``GraphDef`` ``.pb`` files).

OpenCV's ``dnn_superres`` models (ESPCN, FSRCNN, FSRCNN-small, LapSRN) are frozen TF 1.x
graphs: every weight is a ``Const`` node holding a ``TensorProto``. This module decodes the
protobuf wire format directly (varints, length-delimited fields, packed repeated values), so
neither TensorFlow nor the ``protobuf`` package is needed, and returns

- :func:`read_graph`: the nodes (name, op, inputs, attributes) in file order, and
- :func:`read_pb_constants`: ``{const node name: numpy array}`` in the graph's own layout
  (TensorFlow stores conv kernels as HWIO, ``conv2d_transpose`` kernels as HW-out-in).

Only the parts of ``GraphDef`` / ``NodeDef`` / ``AttrValue`` / ``TensorProto`` that carry
weights and layer settings are decoded; everything else is skipped by wire type.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from srplug.errors import WeightsError

__all__ = ["AttrValue", "GraphNode", "read_graph", "read_pb_constants"]

#: ``tensorflow.DataType`` enum values -> numpy dtypes (``*_REF`` types are value + 100).
_DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.float64),
    3: np.dtype(np.int32),
    4: np.dtype(np.uint8),
    5: np.dtype(np.int16),
    6: np.dtype(np.int8),
    9: np.dtype(np.int64),
    10: np.dtype(np.bool_),
    17: np.dtype(np.uint16),
    19: np.dtype(np.float16),
    22: np.dtype(np.uint32),
    23: np.dtype(np.uint64),
}
_DT_STRING = 7
_DT_HALF = 19

# protobuf wire types: varint, 64-bit fixed, length-delimited, 32-bit fixed
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

AttrValue = Any
"""A decoded ``AttrValue``: bytes (``s``), int (``i``, ``type``), float, bool, a shape tuple
(``-1`` for unknown dimensions), a numpy array (``tensor``) or a list of those (``list``)."""


@dataclass(frozen=True)
class GraphNode:
    """One ``NodeDef``: ``inputs`` as written in the graph (``"name:1"``, ``"^ctrl"``)."""

    name: str
    op: str
    inputs: tuple[str, ...] = ()
    attrs: dict[str, AttrValue] = field(default_factory=dict)


class _DecodeError(ValueError):
    """Malformed protobuf bytes (turned into a WeightsError naming the file)."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode the unsigned varint starting at ``pos``; return ``(value, next position)``."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise _DecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _DecodeError("varint longer than 10 bytes")


def _signed64(value: int) -> int:
    """Reinterpret an unsigned 64-bit varint as two's-complement ``int64``/``int32``."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """Yield ``(field number, wire type, value)``; value is an int or a memoryview slice."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _DecodeError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            if pos + 8 > end:
                raise _DecodeError("truncated 64-bit field")
            value = buf[pos : pos + 8]
            pos += 8
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise _DecodeError("length-delimited field runs past the end")
            value = buf[pos : pos + size]
            pos += size
        elif wire == _I32:
            if pos + 4 > end:
                raise _DecodeError("truncated 32-bit field")
            value = buf[pos : pos + 4]
            pos += 4
        else:  # groups (3, 4) are not used by TensorFlow's protos
            raise _DecodeError(f"unsupported wire type {wire}")
        yield number, wire, value


def _packed_varints(value: Any, wire: int) -> list[int]:
    """A repeated varint field: one value (unpacked) or a packed run of them."""
    if wire == _VARINT:
        return [value]
    out = []
    pos = 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


def _packed_fixed(value: Any, wire: int, fmt: str) -> list[float]:
    """A repeated fixed-width field (``fmt`` ``"f"`` or ``"d"``), packed or not."""
    width = struct.calcsize(fmt)
    raw = bytes(value)
    if len(raw) % width:
        raise _DecodeError("packed fixed-width field has a partial element")
    return list(struct.unpack(f"<{len(raw) // width}{fmt}", raw))


def _shape(buf: memoryview) -> tuple[int, ...]:
    """``TensorShapeProto`` -> dims (``-1`` unknown); ``()`` for a scalar or unknown rank."""
    dims = []
    for number, wire, value in _fields(buf):
        if number == 2 and wire == _LEN:  # Dim
            size = 0
            for n, w, v in _fields(value):
                if n == 1 and w == _VARINT:
                    size = _signed64(v)
            dims.append(size)
    return tuple(dims)


def _tensor(buf: memoryview) -> np.ndarray:
    """``TensorProto`` -> numpy array (string tensors become object arrays of bytes)."""
    dtype_id = 0
    shape: tuple[int, ...] = ()
    content: bytes | None = None
    floats: list[float] = []
    doubles: list[float] = []
    ints: list[int] = []  # int_val (int32 family, also half bits and bools)
    int64s: list[int] = []
    bools: list[int] = []
    strings: list[bytes] = []
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _VARINT:
            dtype_id = value
        elif number == 2 and wire == _LEN:
            shape = _shape(value)
        elif number == 4 and wire == _LEN:
            content = bytes(value)
        elif number == 5:
            floats += _packed_fixed(value, wire, "f")
        elif number == 6:
            doubles += _packed_fixed(value, wire, "d")
        elif number in (7, 13):  # int_val, half_val
            ints += [_signed64(v) for v in _packed_varints(value, wire)]
        elif number == 8 and wire == _LEN:
            strings.append(bytes(value))
        elif number == 10:
            int64s += [_signed64(v) for v in _packed_varints(value, wire)]
        elif number == 11:
            bools += _packed_varints(value, wire)
    dtype_id = dtype_id - 100 if dtype_id > 100 else dtype_id
    count = int(np.prod(shape)) if shape else 1
    if any(d < 0 for d in shape):
        raise _DecodeError(f"constant tensor with unknown dimension {shape}")
    if dtype_id == _DT_STRING:
        return (
            np.array(strings, dtype=object).reshape(shape) if strings else np.empty(shape, object)
        )
    if dtype_id not in _DTYPES:
        raise _DecodeError(f"unsupported tensor dtype enum {dtype_id}")
    dtype = _DTYPES[dtype_id]
    if content is not None:
        if len(content) != count * dtype.itemsize:
            raise _DecodeError(
                f"tensor_content holds {len(content)} bytes, shape {shape} of {dtype} needs "
                f"{count * dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if dtype_id == _DT_HALF:
        values: np.ndarray = np.array(ints, dtype=np.uint16).view(np.float16)
    elif dtype.kind == "f":
        values = np.array(doubles if dtype.itemsize == 8 else floats, dtype=dtype)
    elif dtype.kind == "b":
        values = np.array(bools, dtype=dtype)
    elif dtype.itemsize == 8:
        values = np.array(int64s, dtype=dtype)
    else:
        values = np.array(ints, dtype=np.int64).astype(dtype)
    if values.size == count:
        return values.reshape(shape)
    if values.size == 0:
        return np.zeros(shape, dtype=dtype)
    if values.size < count:  # TensorFlow repeats the last value to fill the shape
        pad = np.full(count - values.size, values[-1], dtype=dtype)
        return np.concatenate([values, pad]).reshape(shape)
    raise _DecodeError(f"tensor holds {values.size} values, shape {shape} needs {count}")


def _list(buf: memoryview) -> list[AttrValue]:
    """``AttrValue.ListValue`` -> a list of the one kind of value it holds."""
    out: list[AttrValue] = []
    for number, wire, value in _fields(buf):
        if number == 2 and wire == _LEN:
            out.append(bytes(value))
        elif number == 3:
            out += [_signed64(v) for v in _packed_varints(value, wire)]
        elif number == 4:
            out += _packed_fixed(value, wire, "f")
        elif number == 5:
            out += [bool(v) for v in _packed_varints(value, wire)]
        elif number == 6:
            out += _packed_varints(value, wire)
        elif number == 7 and wire == _LEN:
            out.append(_shape(value))
        elif number == 8 and wire == _LEN:
            out.append(_tensor(value))
    return out


def _attr(buf: memoryview) -> AttrValue:
    """``AttrValue`` -> its decoded value (None for kinds not decoded, e.g. functions)."""
    result: AttrValue = None
    for number, wire, value in _fields(buf):
        if number == 1 and wire == _LEN:
            result = _list(value)
        elif number == 2 and wire == _LEN:
            result = bytes(value)
        elif number == 3 and wire == _VARINT:
            result = _signed64(value)
        elif number == 4 and wire == _I32:
            result = struct.unpack("<f", bytes(value))[0]
        elif number == 5 and wire == _VARINT:
            result = bool(value)
        elif number == 6 and wire == _VARINT:
            result = value
        elif number == 7 and wire == _LEN:
            result = _shape(value)
        elif number == 8 and wire == _LEN:
            result = _tensor(value)
    return result


def _node(buf: memoryview) -> GraphNode:
    name = op = ""
    inputs: list[str] = []
    attrs: dict[str, AttrValue] = {}
    for number, wire, value in _fields(buf):
        if wire != _LEN:
            continue
        if number == 1:
            name = bytes(value).decode("utf-8")
        elif number == 2:
            op = bytes(value).decode("utf-8")
        elif number == 3:
            inputs.append(bytes(value).decode("utf-8"))
        elif number == 5:  # map<string, AttrValue> entry
            key, attr = "", None
            for n, w, v in _fields(value):
                if n == 1 and w == _LEN:
                    key = bytes(v).decode("utf-8")
                elif n == 2 and w == _LEN:
                    attr = _attr(v)
            attrs[key] = attr
    if not name or not op:
        raise _DecodeError("a NodeDef without name or op")
    return GraphNode(name=name, op=op, inputs=tuple(inputs), attrs=attrs)


def read_graph(path: str | os.PathLike[str]) -> list[GraphNode]:
    """The nodes of the frozen ``GraphDef`` in ``path``, in file order.

    Raises :class:`~srplug.errors.WeightsError` when the file is missing, is not a
    ``GraphDef`` (e.g. a SavedModel or another protobuf) or is truncated.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise WeightsError(f"TensorFlow graph not found: {file}; check the path")
    data = memoryview(file.read_bytes())
    nodes: list[GraphNode] = []
    try:
        for number, wire, value in _fields(data):
            if number == 1 and wire == _LEN:
                nodes.append(_node(value))
    except (_DecodeError, UnicodeDecodeError, struct.error) as exc:
        raise WeightsError(
            f"cannot read {file} as a frozen TensorFlow GraphDef: {exc}; the file is truncated, "
            "corrupted or not a .pb graph"
        ) from exc
    if not nodes:
        raise WeightsError(f"{file} holds no graph nodes: it is not a frozen TensorFlow GraphDef")
    return nodes


def read_pb_constants(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``{node name: value}`` for every ``Const`` node of the frozen graph in ``path``.

    Arrays keep TensorFlow's layout and dtype (conv kernels ``(kh, kw, in, out)``,
    ``conv2d_transpose`` kernels ``(kh, kw, out, in)``, float32 for these models); they are
    read-only views only when the file stores raw bytes, so copy before writing into them.
    """
    constants: dict[str, np.ndarray] = {}
    for node in read_graph(path):
        if node.op == "Const" and isinstance(node.attrs.get("value"), np.ndarray):
            constants[node.name] = node.attrs["value"]
    return constants
