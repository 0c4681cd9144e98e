"""Parametrisation shared by the RTL unit tests.

Every unit runs each of its parameter sets on Verilator and Icarus. ``make test`` keeps a fast
subset (the sets named ``fast``, on Verilator, 2,000 cycles; the units built with ``icarus``
run the first also on Icarus, so that the Icarus flow stays tested by ``make test``);
``make regress`` (LELA_REGRESS=1) runs every set on both simulators for 10,000 cycles.
"""

import os

import pytest

from sim.runner import run_unit

SIMULATORS = ("verilator", "icarus")
REGRESS = bool(os.environ.get("LELA_REGRESS"))


def cycles():
    return 10_000 if REGRESS else 2_000


def sweep(cases, fast, icarus=False):
    params = []
    for name in cases:
        for sim in SIMULATORS:
            quick = name in fast and (sim == "verilator" or (icarus and name == fast[0]))
            params.append(pytest.param(name, sim, id=f"{name}-{sim}",
                                       marks=() if quick else pytest.mark.slow))
    return params


def run_case(tmp_path_factory, unit, toplevel, params, sim, label):
    """Build ``unit`` and run ``sim/tb_<toplevel>.py`` in a fresh build directory."""
    build = tmp_path_factory.mktemp(f"{toplevel}-{label}-{sim}")
    run_unit(unit, toplevel, f"tb_{toplevel}", params, sim, str(build))
