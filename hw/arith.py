"""Rounding and saturation of docs/ARITHMETIC.md as Amaranth expressions."""

from amaranth.hdl import Cat, Const, Mux, Shape, Value

__all__ = ["as_signed", "rne_shift", "stochastic_shift", "rne_shift_var", "rne_shift_var_parts",
           "stochastic_shift_var", "shift_round_parts", "shift_remainder", "round_up_bit",
           "saturate", "saturate_parts", "magnitude_above", "at_most_parts", "is_positive",
           "classifier_weight", "rne_shift_any"]


def as_signed(value):
    """``value`` as a signed expression of the same numeric value (zero-extends unsigned)."""
    if value.shape().signed:
        return value
    return Cat(value, Const(0, 1)).as_signed()


def rne_shift(value, shift):
    """``value / 2**shift`` rounded to nearest, ties to even (a signed expression)."""
    value = as_signed(value)
    if shift == 0:
        return value
    q = value >> shift
    rem = value.as_unsigned()[:shift]
    # Round up above one half, and at exactly one half when that makes q even.
    above_half = rem[shift - 1] & (rem[:shift - 1] != 0) if shift > 1 else 0
    at_half = rem == (1 << (shift - 1))
    return q + (above_half | (at_half & q[0]))


def stochastic_shift(value, shift, rand, rand_bits):
    """``floor(value / 2**shift + rand / 2**rand_bits)`` (``rand`` unsigned)."""
    v = as_signed(value)
    if shift >= rand_bits:
        return (v + as_signed(rand.as_unsigned() << (shift - rand_bits))) >> shift
    return (v + as_signed(rand.as_unsigned() >> (rand_bits - shift))) >> shift


def saturate(value, shape):
    """Clamp ``value`` into ``shape``'s range (a value of ``shape``).

    Decided from the bits above the range (all equal to the sign: it fits), not by comparing
    with the bounds: or- and and-trees, no carry chain."""
    shape = Shape.cast(shape)
    value = Value.cast(value)
    w, n = shape.width, len(value)
    negative = value[-1] if value.shape().signed else Const(0, 1)
    if shape.signed:
        lo, hi = Const(-(1 << (w - 1)), shape), Const((1 << (w - 1)) - 1, shape)
        if n < w + value.shape().signed:          # always in range
            return value if value.shape().signed else Cat(value, Const(0, 1)).as_signed()
        return Mux(_fits(value, shape), value[:w].as_signed(), Mux(negative, lo, hi))
    hi = Const((1 << w) - 1, shape)
    if n <= w and not value.shape().signed:
        return value
    return Mux(negative, Const(0, shape), Mux(magnitude_above(value, w), hi, value[:w]))


def _fits(value, shape):
    """Whether ``value`` (at least as wide as ``shape``) lies in ``shape``'s range, from the bits
    above the range: all equal to the sign (signed), or none set and not negative (unsigned)."""
    w = shape.width
    if shape.signed:
        top = value[w - 1:]                       # the target's sign bit and everything above
        return ~top.any() | (top.all() if value.shape().signed else Const(0, 1))
    negative = value[-1] if value.shape().signed else Const(0, 1)
    return ~negative & ~magnitude_above(value, w)


def _widened(q, width):
    """Signed ``q`` sign-extended to at least ``width`` bits."""
    q = Value.cast(q)
    return Cat(q, q[-1].replicate(width - len(q))).as_signed() if len(q) < width else q


def saturate_parts(q, up, shape):
    """``saturate(q + up, shape)`` for a rounding's parts: a signed quotient ``q`` and its
    rounding bit ``up``, without adding them at ``q``'s width. Where ``q`` is in ``shape``'s
    range and below its top, ``q + up`` is too: only ``shape``'s width is added; elsewhere the
    bound of ``q``'s side is the result (``q`` at the top or above: the top; below the range,
    ``q + up`` is at most the bottom). The bounds are decided from ``q``'s bits, as
    :func:`saturate` decides them: the drains' rounding adder (41 bits on the ULX3S) is no longer
    in front of their saturation."""
    shape = Shape.cast(shape)
    w = shape.width
    q = _widened(q, w + 1)
    top = (1 << (w - 1 if shape.signed else w)) - 1
    lo, hi = Const(-(top + 1) if shape.signed else 0, shape), Const(top, shape)
    below_top = _fits(q, shape) & (q[:w] != top)
    added = (q[:w] + up)[:w]
    return Mux(below_top, added.as_signed() if shape.signed else added, Mux(q[-1], lo, hi))


def at_most_parts(q, up, width):
    """Whether ``q + up`` (a rounding's parts, as for :func:`saturate_parts`) is negative or at
    most ``2**width - 1``, from ``q``'s bits: ``~magnitude_above(q + up, width)`` or its sign."""
    q = _widened(q, width + 1)
    return q[-1] | (~magnitude_above(q, width) & ~(q[:width].all() & up))


def magnitude_above(value, width):
    """Whether any magnitude bit of ``value`` (its sign bit excluded) lies at ``width`` or
    above: for a non-negative ``value``, ``value > 2**width - 1``."""
    value = Value.cast(value)
    top = len(value) - 1 if value.shape().signed else len(value)
    return value[width:top].any() if top > width else Const(0, 1)


def is_positive(value):
    """``value > 0`` for a signed ``value``, without a comparator."""
    value = Value.cast(value)
    return ~value[-1] & value.any()


def classifier_weight(chunk, bits):
    """A ``bits``-bit LFSR chunk ``u`` as the odd, zero-mean weight ``2u - (2**bits - 1)``
    (``signed(bits + 1)``).

    Wiring and one inverter, no adder: ``2u + 1`` is ``u`` above a one, and subtracting
    ``2**bits`` in ``bits + 1`` bits flips the top bit."""
    chunk = Value.cast(chunk).as_unsigned()[:bits]
    return Cat(Const(1, 1), chunk[:bits - 1], ~chunk[bits - 1]).as_signed()


def _shift_parts(value, shift, frac_bits):
    """``value >> shift`` (floor) and the ``frac_bits`` bits below it (the remainder's top,
    zero-filled below bit 0), from one shifter; and the sticky bit: whether any bit below
    ``shift - 1`` is set (``shift`` at most 31), those bits chosen by a mask shifted by
    ``shift``, not by comparisons with it (Yosys maps those to carry chains on the ECP5: 17.7
    ns of an 8 x 8 ULX3S build)."""
    value = as_signed(value)
    shift = shift[:5]
    wide = Cat(Const(0, frac_bits), value).as_signed() >> shift
    low = value.as_unsigned()[:min(30, len(value))]          # below bit shift - 1 <= 30
    below = ~(Const((1 << 32) - 1, 32) << shift)               # bit i: i < shift
    sticky = (low & below[1:1 + len(low)]).any()                 # i + 1 < shift
    return wide[frac_bits:].as_signed(), wide[:frac_bits], sticky


def rne_shift_var_parts(value, shift):
    """:func:`rne_shift_var` before its final addition: ``(q, up)`` with the result ``q + up``
    (``q`` the floor of the quotient, ``up`` one bit), for a register between the two.

    One shifter gives both the quotient and the rounding bit; the bits below it are or-ed
    under a mask decoded from ``shift``. No comparison of remainders."""
    q, rnd, sticky = _shift_parts(value, shift, 1)
    return q, rnd[0] & (sticky | q[0])


def rne_shift_var(value, shift):
    """:func:`rne_shift` by a run-time amount ``shift`` (unsigned, at most 31; 0 passes through).

    Every intermediate stays within 64 bits (the rounding bits sit in the low 32 bits), which
    keeps the Verilator model fast."""
    q, up = rne_shift_var_parts(value, shift)
    return q + up


def shift_round_parts(value, shift, rand, rand_bits, stochastic):
    """``(q, up)``: ``value >> shift`` (floor) and the bit that rounds it, stochastically
    (``stochastic`` high: :func:`stochastic_shift` by a run-time amount) or to nearest-even
    (:func:`rne_shift_var`); the result is ``q + up``.

    ``floor(v / 2**s + r / 2**R)`` is ``q`` plus the carry out of the remainder's top ``R``
    bits plus ``r``: the draw is added only below the quotient, so the carry is all that reaches
    it. One shifter serves both roundings."""
    q, top, sticky = shift_remainder(value, shift, rand_bits)
    return q, round_up_bit(q[0], top, sticky, rand, rand_bits, stochastic)


def shift_remainder(value, shift, rand_bits):
    """The shifter of :func:`shift_round_parts`: ``(q, top, sticky)``, the quotient's floor,
    the remainder's top ``rand_bits`` bits and whether any bit below ``shift - 1`` is set, for
    a register between the shifter and :func:`round_up_bit`."""
    return _shift_parts(value, shift, rand_bits)


def round_up_bit(q_low, top, sticky, rand, rand_bits, stochastic):
    """The rounding bit of :func:`shift_round_parts` from the shifter's parts (``q_low`` the
    quotient's bit 0): the carry of ``top + rand`` (``stochastic``), or nearest-even."""
    carry = (top + rand.as_unsigned())[rand_bits]
    nearest = top[rand_bits - 1] & (sticky | q_low)
    return Mux(stochastic, carry, nearest)


def stochastic_shift_var(value, shift, rand, rand_bits):
    """:func:`stochastic_shift` by a run-time amount ``shift`` (at most 31)."""
    q, up = shift_round_parts(value, shift, rand, rand_bits, 1)
    return q + up


def rne_shift_any(value, shift):
    """:func:`rne_shift` by a run-time amount ``shift`` of any width (0 passes through).

    For the batch normalisation's once-a-neuron arithmetic, whose shifts reach past 31: one
    shifter for the quotient and its rounding bit, and the bits below that or-ed under a mask
    ``(2**shift - 1) >> 1`` built from ``shift``."""
    value = as_signed(value)
    shift = Value.cast(shift)
    wide = Cat(Const(0, 1), value).as_signed() >> shift
    q, half = wide[1:].as_signed(), wide[0]
    below_half = ((Const(1, len(value) + 1) << shift) - 1) >> 1
    sticky = (value.as_unsigned() & below_half[:len(value)]).any()
    return q + (half & (sticky | q[0]))
