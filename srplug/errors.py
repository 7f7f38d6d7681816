"""Exception types raised on purpose by srplug.

Every error the library raises deliberately derives from :class:`SrplugError`, so callers can
catch one type. Where a built-in exception type also fits (``KeyError`` for an unknown name,
``ValueError`` for bad input), the error derives from both.
"""

from __future__ import annotations

__all__ = [
    "ChecksumError",
    "DatasetError",
    "DownloadError",
    "DuplicateModelError",
    "ImageTooLargeError",
    "InputError",
    "OutOfMemoryError",
    "PluginError",
    "SrplugError",
    "UnknownModelError",
    "WeightsError",
]


class SrplugError(Exception):
    """Base class of every error srplug raises on purpose."""


class UnknownModelError(SrplugError, KeyError):
    """A model name that no installed plugin registers.

    Also a ``KeyError``. ``suggestions`` holds close matches among the registered names.
    """

    def __init__(self, name: str, suggestions: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        if self.suggestions:
            hint = "did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        else:
            hint = "run `srplug list` to see the registered models"
        super().__init__(f"unknown model {name!r}: {hint}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class DuplicateModelError(SrplugError):
    """Two plugins register the same model name."""

    def __init__(self, name: str, first: str, second: str) -> None:
        self.name = name
        self.plugins = (first, second)
        super().__init__(
            f"model name {name!r} is registered by both plugin {first!r} and plugin {second!r}; "
            f"uninstall one of them or disable it with SRPLUG_DISABLE_PLUGINS={second}"
        )


class PluginError(SrplugError):
    """A plugin failed to load or registered something invalid."""


class InputError(SrplugError, ValueError):
    """An image, tensor or argument that srplug cannot process as given."""


class WeightsError(SrplugError):
    """A weights file that cannot be found, read or matched to a model."""


class ChecksumError(WeightsError):
    """A downloaded or local weights file whose sha256 differs from the expected one."""


class DownloadError(WeightsError):
    """A weights file that could not be downloaded."""


class DatasetError(SrplugError):
    """A benchmark or training data set that cannot be found or read."""


class ImageTooLargeError(InputError):
    """An input or output image with more pixels than the configured limit
    (:mod:`srplug.limits`); also a ``ValueError``."""


class OutOfMemoryError(SrplugError, MemoryError):
    """A model ran out of device or host memory in a way srplug could not avoid.

    Also a ``MemoryError``. The message names the size that failed and a tile size to try.
    """
