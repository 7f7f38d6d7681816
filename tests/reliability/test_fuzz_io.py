"""Image files over random arrays, names and bytes: ``write_image`` writes a file that reads
back equal or raises a srplug error and leaves nothing; ``read_image`` of any bytes gives an
image or a srplug error."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from srplug.io import IMAGE_SUFFIXES, read_image, write_image
from tests.reliability.conftest import fuzz, outcome, scratch_dir

SCRATCH = scratch_dir("srplug-io-fuzz-")
LOSSLESS = (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")

_SHAPES = st.one_of(
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    st.tuples(st.integers(1, 12), st.integers(1, 12), st.sampled_from([1, 3, 4])),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
)


@fuzz(60)
@given(
    img=hnp.arrays(
        st.sampled_from([np.uint8, np.uint8, np.uint16, np.float32, np.int32, np.bool_]), _SHAPES
    ),
    suffix=st.sampled_from([*IMAGE_SUFFIXES, ".PNG", ".xyz", ""]),
)
def test_write_then_read(img: np.ndarray, suffix: str) -> None:
    folder = Path(tempfile.mkdtemp(dir=SCRATCH))
    target = folder / f"img{suffix}"
    path, err = outcome("io.write_image", lambda: write_image(target, img))
    if err is not None:
        assert list(folder.iterdir()) == [], "a refused write left a file"
        return
    assert [p.name for p in folder.iterdir()] == [target.name]
    back, err = outcome("io.read_image", lambda: read_image(path))
    assert err is None, f"cannot read back what write_image wrote: {err}"
    if suffix.lower() in LOSSLESS and not (suffix == ".pgm" and img.ndim == 3):
        expected = img[:, :, 0] if img.ndim == 3 and img.shape[2] == 1 else img
        if back.shape == expected.shape:
            np.testing.assert_array_equal(back, expected)


@fuzz(60)
@given(
    data=st.one_of(
        st.binary(max_size=64),
        st.sampled_from(["png", "bmp", "ppm"]).flatmap(
            lambda kind: st.binary(max_size=64).map(lambda tail: (kind, tail))
        ),
    ),
    suffix=st.sampled_from([".png", ".jpg", ".bmp", ".ppm", ".tif", ".webp"]),
)
def test_read_any_bytes(data: bytes | tuple[str, bytes], suffix: str) -> None:
    if isinstance(data, tuple):  # a real header followed by garbage
        kind, tail = data
        head = {"png": b"\x89PNG\r\n\x1a\n", "bmp": b"BM", "ppm": b"P6\n4 4\n255\n"}[kind]
        data = head + tail
    path = SCRATCH / f"any{suffix}"
    path.write_bytes(data)
    img, err = outcome("io.read_image-bytes", lambda: read_image(path))
    if err is None:
        assert img.dtype in (np.uint8, np.uint16) and img.ndim in (2, 3)
