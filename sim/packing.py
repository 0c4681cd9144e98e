"""Packing of structured payloads into the flat vectors of the generated Verilog ports.

Offsets come from the Amaranth layouts, so the testbench reads the interface definition
instead of restating it.
"""

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "to_int", "from_int", "pack_rounded", "join_rounded"]


def from_int(value, shape):
    shape = Shape.cast(shape)
    value &= (1 << shape.width) - 1
    if shape.signed and value >> (shape.width - 1):
        value -= 1 << shape.width
    return value


def to_int(value, shape):
    shape = Shape.cast(shape)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1 if shape.signed else shape.width)) - 1
    if not lo <= value <= hi:
        raise ValueError(f"{value} does not fit {shape}")
    return value & ((1 << shape.width) - 1)


def pack(value, layout):
    """Python value (int, list, dict) -> int, following ``layout``."""
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            out |= pack(value[name], field.shape) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        out = 0
        for k, v in enumerate(value):
            out |= pack(v, layout.elem_shape) << (k * width)
        return out
    return to_int(value, layout)


def unpack(bits, layout):
    """int -> Python value, following ``layout``."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack(bits >> field.offset, field.shape) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return [unpack(bits >> (k * width), layout.elem_shape) for k in range(layout.length)]
    return from_int(bits, layout)


def pack_rounded(values, layout, parts=False, rng=None, lowest=None):
    """The ``rounded`` port of a drain: ``{"rounded": values packed in layout}``; with
    ``parts``, as the parts a pipelined drain takes (``DrainRounding.quotient`` and
    ``round_up``): each sum split at random into ``q + up`` (``up`` 0 where ``q`` would fall
    below ``lowest``), ``{"rounded": the quotients packed, "round_up": the bits}``."""
    if not parts:
        return {"rounded": pack(values, layout)}
    ups = [rng.randint(0, 1) if v > lowest else 0 for v in values]
    return {"rounded": pack([v - u for v, u in zip(values, ups)], layout),
            "round_up": sum(u << k for k, u in enumerate(ups))}


def join_rounded(quotients, round_up):
    """The rounded sums of :func:`pack_rounded`'s parts (``quotients`` unpacked)."""
    return [q + (round_up >> k & 1) for k, q in enumerate(quotients)]
