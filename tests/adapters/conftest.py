"""Adapter tests run with one intra-op thread, like the trainer tests (fast on a busy machine)."""

from tests.train.conftest import _one_thread  # noqa: F401 - an autouse fixture, used by import
