"""srplug: single-image super-resolution as plugins for existing image pipelines.

>>> import srplug
>>> sr = srplug.get("bicubic", scale=2)
>>> big = sr(image)          # numpy / PIL / torch in, the same kind out

Models come from plugins (installable distributions that register through the ``srplug``
entry-point group); ``srplug.list()`` shows what is installed.
"""

from __future__ import annotations

from srplug.errors import (
    ChecksumError,
    DatasetError,
    DownloadError,
    DuplicateModelError,
    ImageTooLargeError,
    InputError,
    OutOfMemoryError,
    PluginError,
    SrplugError,
    UnknownModelError,
    WeightsError,
)
from srplug.hookspecs import hookimpl
from srplug.plugins import register_plugin, unregister_plugin
from srplug.protocols import Trainer, TrainResult, Upsampler
from srplug.registry import ModelSpec, get, info, list_models, models
from srplug.weights import Metric, ModelCard, Weights, WeightsFile

__version__ = "0.1.0"

list = list_models

__all__ = [
    "ChecksumError",
    "DatasetError",
    "DownloadError",
    "DuplicateModelError",
    "ImageTooLargeError",
    "InputError",
    "Metric",
    "ModelCard",
    "ModelSpec",
    "OutOfMemoryError",
    "PluginError",
    "SrplugError",
    "TrainResult",
    "Trainer",
    "UnknownModelError",
    "Upsampler",
    "Weights",
    "WeightsError",
    "WeightsFile",
    "__version__",
    "get",
    "hookimpl",
    "info",
    "list",
    "list_models",
    "models",
    "register_plugin",
    "unregister_plugin",
]
