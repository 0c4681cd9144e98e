"""The batch-normalisation components' ports have the widths that docs/ARITHMETIC.md ("Batch
normalisation") and their docstrings give: a strobe (``valid``, ``clear``, ``finish``,
``training``) is one bit (a wider one would be nonzero for values its driver cannot produce),
a setting five bits (``act_frac`` and the shifts, at most 24), the sample count nine (256
samples), ``inv_b`` RECIP_BITS + 1 (``2**20`` for one sample); and the data the others size
their arithmetic from are as wide as their largest value: ``R[u]`` 13 bits (``R[1] = 4096``),
``j`` the bits of its largest value for the argument's width, ``S1`` ``act_bits + 8``
(``256 * (2**act_bits - 1)``)."""

import pytest
from amaranth.hdl import Shape
from amaranth.lib import data

from contract.batch_norm import BACK_BITS, RECIP_BITS, TABLE_FRAC, XHAT_BITS, inv_sqrt_split
from hw.core.batch_norm_backward import BatchNormBackward
from hw.core.batch_normalise import BatchNormalise
from hw.core.batch_statistics import BatchStatistics
from hw.core.inverse_sqrt import InverseSqrt

R_BITS = (1 << TABLE_FRAC).bit_length()          # R[1] = 2**TABLE_FRAC, the table's largest


def widths(component, names):
    """``{"port.field": width}`` for dotted names (an array's field: its element's width)."""
    members = component.signature.members
    got = {}
    for name in names:
        port, *fields = name.split(".")
        shape = members[port].shape
        for field in fields:
            shape = shape[field].shape
        if isinstance(shape, data.ArrayLayout):
            shape = shape.elem_shape
        got[name] = Shape.cast(shape).width
    return got


def largest_j(arg_bits):
    return inv_sqrt_split((1 << arg_bits) - 1)[1]


@pytest.mark.parametrize("arg_bits", [9, 10, 11, 14, 15, 39, 49])
def test_inverse_sqrt(arg_bits):
    want = {"i.valid": 1, "i.a": arg_bits, "o.valid": 1, "o.r": R_BITS,
            "o.j": largest_j(arg_bits).bit_length()}
    assert widths(InverseSqrt(arg_bits), want) == want


@pytest.mark.parametrize("lanes, act, wb", [(4, 8, 16), (2, 12, 16), (8, 4, 8)])
def test_batch_statistics(lanes, act, wb):
    unit = BatchStatistics(lanes, act, wb)
    want = {"add.valid": 1, "add.clear": 1, "add.y": act, "add.mask": lanes,
            "finish.valid": 1, "finish.gamma": wb, "finish.mean": 2 * wb, "finish.var": 2 * wb,
            "training": 1, "batch": 9, "inv_b": RECIP_BITS + 1, "eps_log2": 5, "stat_frac": 5,
            "momentum": 5, "frac_diff": 5, "o.valid": 1, "o.s1": act + 8, "o.r": R_BITS,
            "o.h": BACK_BITS, "o.mean": 2 * wb, "o.var": 2 * wb}
    assert widths(unit, want) == want
    # j: as wide as the largest j of the widest argument, inference's (V + 2**(eps_log2 +
    # RF)) << RF < 2**(2 * weight_bits + 17) or training's < 2**(2 * act_bits + 17)
    assert widths(unit, ["o.j"])["o.j"] == largest_j(max(2 * wb, 2 * act) + 17).bit_length()


@pytest.mark.parametrize("lanes, act, wb", [(4, 8, 16), (8, 4, 8)])
def test_batch_normalise(lanes, act, wb):
    stats = BatchStatistics(lanes, act, wb)
    unit = BatchNormalise(lanes, act, wb, stats.o.s1.shape(), stats.o.r.shape(),
                          stats.o.j.shape(), 3)
    want = {"i.valid": 1, "i.y": act, "training": 1, "batch": 9, "act_frac": 5,
            "weight_frac": 5, "stat_frac": 5, "gamma": wb, "mean": 2 * wb, "o.valid": 1,
            "o.z": act, "o.xhat": XHAT_BITS, "o.active": lanes}
    assert widths(unit, want) == want


@pytest.mark.parametrize("lanes, delta_bits", [(4, 16), (2, 20)])
def test_batch_norm_backward(lanes, delta_bits):
    unit = BatchNormBackward(lanes, delta_bits, 3)
    want = {"accumulate.valid": 1, "accumulate.clear": 1, "accumulate.pz": delta_bits,
            "accumulate.xhat": XHAT_BITS, "finish": 1, "apply.valid": 1,
            "apply.pz": delta_bits, "apply.xhat": XHAT_BITS, "apply.active": lanes,
            "inv_b": RECIP_BITS + 1, "act_frac": 5, "h": BACK_BITS, "o.valid": 1,
            "o.d": delta_bits}
    assert widths(unit, want) == want
