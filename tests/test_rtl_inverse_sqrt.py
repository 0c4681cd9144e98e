"""hw/core/inverse_sqrt.py against its per-cycle model, on Verilator and Icarus; and the whole
argument range of a small instance against the contract, in Amaranth's simulator."""

import pytest
from amaranth.sim import Simulator

from contract.batch_norm import TABLE_BITS, inv_sqrt_split, inv_sqrt_table
from hw.core.inverse_sqrt import InverseSqrt
from tests.rtl_sweep import cycles, run_case, sweep

CASES = {
    "a20": dict(arg_bits=20, idle=0.2),
    "a41": dict(arg_bits=41, idle=0.1),
    "a49": dict(arg_bits=49, idle=0.3),        # the widest: inference with 16-bit weights
}


def run(tmp_path_factory, name, sim, cycles, **extra):
    p = dict(CASES[name], cycles=cycles, seed=3)
    p.update(extra)
    run_case(tmp_path_factory, InverseSqrt(p["arg_bits"]), "inverse_sqrt", p, sim, name)


FAST = ["a49"]


@pytest.mark.parametrize("name,sim", sweep(CASES, fast=FAST))
def test_inverse_sqrt(tmp_path_factory, name, sim):
    run(tmp_path_factory, name, sim, cycles=cycles())


def test_perturbed_split_is_caught(tmp_path_factory):
    """The model rounds ``j`` down instead of up: the checker must notice."""
    run(tmp_path_factory, "a49", "verilator", cycles=2_000, mutate="floor-j")


def test_every_argument_of_14_bits():
    """Each argument 1 .. 2**14 - 1, one a cycle, against contract.batch_norm, independently of
    the per-cycle model: the table entry and ``j`` two cycles later."""
    unit = InverseSqrt(14)
    table = inv_sqrt_table()
    got = []

    async def bench(ctx):
        for a in range(1, (1 << 14) + 2):
            if a < 1 << 14:
                ctx.set(unit.i.valid, 1)
                ctx.set(unit.i.a, a)
            else:
                ctx.set(unit.i.valid, 0)
            await ctx.tick()
            if ctx.get(unit.o.valid):
                got.append((ctx.get(unit.o.r), ctx.get(unit.o.j)))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    want = []
    for a in range(1, 1 << 14):
        u, j = inv_sqrt_split(a)
        want.append((table[u], j))
    assert got == want


def run_arguments(arg_bits, arguments):
    """``(R[u], j)`` of each argument, one a cycle, through InverseSqrt(arg_bits)."""
    unit = InverseSqrt(arg_bits)
    got = []

    async def bench(ctx):
        for a in arguments + [None, None]:
            ctx.set(unit.i.valid, a is not None)
            ctx.set(unit.i.a, a or 0)
            await ctx.tick()
            if ctx.get(unit.o.valid):
                got.append((ctx.get(unit.o.r), ctx.get(unit.o.j)))

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("arg_bits", [11, 15, 23, 33, 39, 43, 49])
def test_every_window_edge(arg_bits):
    """Each power of two, one below and one above it, and the widest argument, against the
    contract: every window of the split, the top one included. At 11, 15, 23 and 39 bits the
    count of windows (2, 4, 8, 16) is a power of two, so ``j`` needs its every bit (39 is the
    statistics' argument with act_bits 10 and weight_bits 11; 33, 43 and 49 are others)."""
    arguments = sorted({v for k in range(arg_bits) for v in ((1 << k) - 1, 1 << k,
                                                           (1 << k) + 1, (3 << k) >> 1)
                        if 1 <= v < 1 << arg_bits} | {(1 << arg_bits) - 1})
    table = inv_sqrt_table()
    want = []
    for a in arguments:
        u, j = inv_sqrt_split(a)
        want.append((table[u], j))
    assert max(j for _, j in want) == (arg_bits - TABLE_BITS + 1) // 2
    assert run_arguments(arg_bits, arguments) == want
