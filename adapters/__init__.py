"""Adapters that put srplug models into other libraries' pipelines (``srplug.adapters``).

- ``srplug.adapters.opencv``: a drop-in for OpenCV's ``dnn_superres`` (``DnnSuperResImpl``),
  running OpenCV's own ESPCN / FSRCNN / LapSRN ``.pb`` files and every srplug model.
- ``srplug.adapters.kornia``: an ``nn.Module`` SR transform and degradation transforms.
- ``srplug.adapters.torchvision``: LR/HR pair datasets and transforms for torchvision-style
  datasets; torchvision itself is never imported.

Each module imports its library only when it is used.
"""
