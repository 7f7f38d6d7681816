"""Resource limits: a maximum image size, like Pillow's decompression-bomb check.

An image (or a batch of images) larger than the limit is refused with
:class:`ImageTooLargeError` before srplug allocates memory for it: where images enter
(:func:`srplug.image.to_tensor`, :func:`srplug.io.read_image`, which looks at the file header
before decoding) and, through :func:`check_output_size`, before an upsampler makes a result
``scale`` times larger.

The limit counts pixels per call: ``N * H * W`` for a batch of ``N`` images of ``H x W``
(channels are not counted). It is, in order of precedence:

1. the value given to :func:`set_max_pixels` (``None`` or ``0`` disables the check);
2. the ``SRPLUG_MAX_PIXELS`` environment variable (``0``, ``none`` or ``off`` disable it);
3. :data:`DEFAULT_MAX_PIXELS`, ``2**28`` (268,435,456 pixels, e.g. 16384 x 16384; the x4
   result of a 3840 x 2160 frame is 132,710,400).
"""

from __future__ import annotations

import os
import threading

from srplug.errors import ImageTooLargeError, InputError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "ImageTooLargeError",
    "check_output_size",
    "check_pixels",
    "get_max_pixels",
    "reset_max_pixels",
    "set_max_pixels",
]

MAX_PIXELS_ENV = "SRPLUG_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 1 << 28
_DISABLED = ("0", "none", "off", "false", "no")

_UNSET = object()
_lock = threading.Lock()
_override: object = _UNSET  # int (0 = disabled) once set_max_pixels was called


def _parse_env(raw: str) -> int:
    value = raw.strip().lower().replace("_", "")
    if value in _DISABLED:
        return 0
    try:
        limit = int(value)
    except ValueError:
        limit = -1
    if limit < 0:
        raise InputError(
            f"{MAX_PIXELS_ENV}={raw!r} is not a pixel count: set it to a non-negative integer "
            "(e.g. 268435456), or to 0 to switch the limit off"
        )
    return limit


def get_max_pixels() -> int | None:
    """The current limit in pixels, or ``None`` when the check is switched off."""
    with _lock:
        override = _override
    if override is not _UNSET:
        limit = int(override)  # type: ignore[call-overload]
    else:
        raw = os.environ.get(MAX_PIXELS_ENV, "")
        limit = _parse_env(raw) if raw.strip() else DEFAULT_MAX_PIXELS
    return limit or None


def set_max_pixels(limit: int | None) -> int | None:
    """Set the limit for this process (overrides ``SRPLUG_MAX_PIXELS``); returns the previous
    effective limit so it can be restored. ``None`` or ``0`` disables the check."""
    global _override
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InputError(
            f"max pixels must be a non-negative int, or None / 0 to disable the check; got "
            f"{limit!r}"
        )
    previous = get_max_pixels()
    with _lock:
        _override = 0 if limit is None else limit
    return previous


def reset_max_pixels() -> None:
    """Forget :func:`set_max_pixels`; the environment variable or the default apply again."""
    global _override
    with _lock:
        _override = _UNSET


def _refuse(pixels: int, limit: int, what: str) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{what} has {pixels:,} pixels, more than the limit of {limit:,} (a guard against "
        "images that would exhaust memory); if you trust the input, raise the limit with "
        f"srplug.limits.set_max_pixels(N) or the environment variable {MAX_PIXELS_ENV}=N "
        "(0 switches it off)"
    )


def check_pixels(height: int, width: int, *, batch: int = 1, what: str = "image") -> None:
    """Raise :class:`ImageTooLargeError` when ``batch * height * width`` exceeds the limit.

    ``what`` starts the message (``"image of shape (3, 4000, 4000)"``).
    """
    limit = get_max_pixels()
    if limit is None:
        return
    pixels = int(batch) * int(height) * int(width)
    if pixels > limit:
        raise _refuse(pixels, limit, what)


def check_output_size(height: int, width: int, scale: int, *, batch: int = 1) -> None:
    """Raise :class:`ImageTooLargeError` when upscaling ``batch`` images of
    ``height x width`` by ``scale`` would give more pixels than the limit.

    Upsamplers call this before running the network, so nothing is allocated for the result.
    """
    out_h, out_w = int(height) * int(scale), int(width) * int(scale)
    check_pixels(
        out_h,
        out_w,
        batch=batch,
        what=f"the x{scale} result ({batch} x {out_h} x {out_w} from {height} x {width})",
    )
