"""Adapters that put srplug models into other libraries' pipelines (``srplug.adapters``).

Planned modules: ``opencv`` (a ``DnnSuperResImpl`` drop-in), ``kornia`` (transforms and
degradations) and ``torchvision`` (dataset wrappers); each will import its library only when
used. None is shipped yet.
"""
