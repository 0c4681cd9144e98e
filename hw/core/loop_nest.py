"""The loop nest of a phase: which MAC-array beat comes next."""

from amaranth.hdl import Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LoopNest"]


class LoopNest(wiring.Component):
    """Three nested counters, ``outer`` over ``mid`` over ``inner``, each from 0 to its limit.

    A beat is the counters' current values. In a cycle where the nest is ``active`` and not
    stalled, the beat either issues (its operands are ``ready`` and it is not ``dead``), and the
    counters step as nested loops; or, when ``dead`` (its samples have all exited early), the
    whole iteration it belongs to is skipped at once: the ``mid`` iteration, or with
    ``skip_outer`` the ``outer`` one (``mid`` back to 0). ``inner`` is not touched by a skip.
    After the last ``outer`` iteration the nest goes inactive until the next ``start``.

    With ``positions``, a fourth loop runs between ``mid`` and ``inner`` outside the nest (a
    convolution's output positions, hw/core/patch_walker.py): an ``inner`` wrap ends a ``mid``
    iteration only where ``position_last`` says the walk is at its last position.

    Parameters
    ----------
    width : int
        Width of each counter and limit.
    positions : bool
        Build the ``position_last`` input.

    Members
    -------
    start : In(1); limits : In(StructLayout(outer, mid, inner))
        Start a nest whose counters run to ``limits`` (inclusive: the count minus 1). Starting
        overrides a step in the same cycle.
    last : Out(StructLayout(outer, mid, inner))
        The limits of the running nest.
    stall, ready, dead, skip_outer : In(1)
        No beat this cycle; the beat's operands are ready; skip instead of issuing; what a
        skip skips.
    outer, mid, inner : Out(width)
        The beat's counters.
    active : Out(1)
        Beats remain.
    issue, skip : Out(1)
        The beat issues; the iteration is skipped.
    inner_last : Out(1)
        ``inner`` is at its limit (the beat ends a sum).
    mid_done, outer_done : Out(1)
        A ``mid`` (``outer``) iteration ends this cycle, by its last beat or a skip of that
        iteration (an ``outer`` skip does not raise ``mid_done``).
    position_last : In(1)
        (``positions`` only) The beat is of the last position of its ``mid`` iteration.
    """

    def __init__(self, width, positions=False):
        self.width, self.positions = width, positions
        counters = data.StructLayout({"outer": width, "mid": width, "inner": width})
        super().__init__({
            "start": In(1), "limits": In(counters), "last": Out(counters),
            "stall": In(1), "ready": In(1), "dead": In(1), "skip_outer": In(1),
            "outer": Out(width), "mid": Out(width), "inner": Out(width),
            "active": Out(1), "issue": Out(1), "skip": Out(1), "inner_last": Out(1),
            "mid_done": Out(1), "outer_done": Out(1),
            **({"position_last": In(1)} if positions else {}),
        })

    def elaborate(self, platform):
        m = Module()
        outer, mid, inner = self.outer, self.mid, self.inner
        last = self.last
        mid_last, outer_last = mid == last.mid, outer == last.outer
        moving = self.active & ~self.stall
        m.d.comb += [
            self.inner_last.eq(inner == last.inner),
            self.issue.eq(moving & ~self.dead & self.ready),
            self.skip.eq(moving & self.dead),
            self.mid_done.eq((self.issue & self.inner_last & self.position_last
                              if self.positions else self.issue & self.inner_last)
                             | (self.skip & ~self.skip_outer)),
            self.outer_done.eq((self.mid_done & mid_last) | (self.skip & self.skip_outer)),
        ]
        with m.If(self.issue):
            m.d.sync += inner.eq(Mux(self.inner_last, 0, inner + 1))
        with m.If(self.mid_done):
            m.d.sync += mid.eq(Mux(mid_last, 0, mid + 1))
        with m.If(self.skip & self.skip_outer):
            m.d.sync += mid.eq(0)
        with m.If(self.outer_done):
            m.d.sync += outer.eq(outer + 1)
            with m.If(outer_last):
                m.d.sync += self.active.eq(0)
        with m.If(self.start):
            m.d.sync += [self.active.eq(1), outer.eq(0), mid.eq(0), inner.eq(0),
                         last.eq(self.limits)]
        return m
