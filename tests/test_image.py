"""to_tensor / from_tensor edge cases: byte order, overflowing floats, the size guard."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from srplug import limits
from srplug.errors import InputError
from srplug.image import from_tensor, to_tensor


@pytest.mark.parametrize("dtype", [">u2", ">f4", ">f8", "<u2"])
def test_non_native_byte_order_is_accepted(dtype: str) -> None:
    native = np.array([[0.0, 0.5], [1.0, 0.25]])
    if dtype.endswith("u2"):
        native = (native * 65535).round()
    img = native.astype(dtype)
    x, layout = to_tensor(img)
    expected = native / 65535 if dtype.endswith("u2") else native
    assert torch.allclose(x[0, 0].double(), torch.from_numpy(expected), atol=1e-6)
    back = from_tensor(x, layout)
    assert back.dtype == np.dtype(dtype).newbyteorder("=")
    assert np.allclose(back.astype(np.float64), native, atol=1e-6)


def test_float64_beyond_float32_is_refused_without_a_warning() -> None:
    img = np.full((2, 2), 1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputError, match="NaN or infinite"):
            to_tensor(img)


def test_empty_batch_and_size_guard_order() -> None:
    with pytest.raises(InputError, match="batch size 0"):
        to_tensor(torch.zeros(0, 3, 4, 4))
    limits.set_max_pixels(31)
    try:
        with pytest.raises(limits.ImageTooLargeError, match="32 pixels"):
            to_tensor(torch.zeros(2, 3, 4, 4))
    finally:
        limits.reset_max_pixels()
