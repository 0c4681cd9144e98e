"""Builds shared by several test modules (each module that uses one is in the same xdist group,
so one worker builds it once)."""

import os

import pytest

from sim.accelerator_sim import build_accelerator
from tests.accelerator_checks import HARDWARE, TIMEOUT


@pytest.fixture(scope="session")
def tiny_harness(tmp_path_factory):
    """The Verilator harness of the whole accelerator built for HARDWARE."""
    root = os.environ.get("LELA_BUILD_CACHE") or str(tmp_path_factory.mktemp("accelerator"))
    return build_accelerator(HARDWARE, os.path.join(root, "accelerator_tiny"),
                             frame_timeout=TIMEOUT)
