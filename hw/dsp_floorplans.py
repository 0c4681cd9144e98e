"""Floorplans of the ECP5 multiplier blocks: on which MULT18X18D site of the die each MAC lane's
block and each of the forward drain's dropout blocks sits (the config's ``dsp_floorplan``; only
with ``multiplier = "ecp5"``). A site is a nextpnr BEL name, ``X<column>/Y<row>/MULT18_<z>``;
hw/registered_multiplier.py puts it on its block as the ``BEL`` attribute, which nextpnr's
placers take as a fixed placement before they place anything else.

Why: nextpnr's static placer spreads the fabric logic first and then moves the blocks onto the
few DSP sites, and at some seeds it lands them far from the product registers and accumulators
it had placed around them; the products' nets then crowd the routing (an 8 x 8 ULX3S build's
seed 1 never finished routing: docs/RESULTS.md, "eleventh pass"). With the blocks fixed from the
start, the placer builds the fabric around them.

``"lfe5u-85f-8x8"``: the ULX3S 85F's 8 x 8 array (configs/ulx3s_8x8.toml). The lanes' sites are
those nextpnr's static placer chose for a633169's 8 x 8 netlist at seed 2, a placement that
routed and met 75 MHz: 31 lanes in the DSP row at Y = 34, 26 in the row at Y = 58 and 7 at
Y = 10, all in the die's right two thirds (X 32-119). The eight dropout blocks are together in
the two DSP tiles at the middle of the row at Y = 34 (X 69-83), next to one another: all eight
take their operands from the drains' one rounding stage, and spread over X 32-118 (where that
placement had them) the farthest was 13.4 ns from it (docs/RESULTS.md, "twelfth pass"); the
five lanes that sat there took the dropout blocks' old sites.
"""

from contract.config import DSP_FLOORPLANS

__all__ = ["dsp_sites"]

_SITES = {
    "lfe5u-85f-8x8": {
        # Lane p * 8 + q (row p, column q of the array).
        "lanes": (
            "X41/Y34/MULT18_1", "X49/Y34/MULT18_0", "X58/Y34/MULT18_0", "X78/Y58/MULT18_0",
            "X97/Y58/MULT18_1", "X106/Y58/MULT18_1", "X115/Y58/MULT18_1", "X119/Y34/MULT18_5",
            "X50/Y34/MULT18_1", "X44/Y34/MULT18_4", "X63/Y58/MULT18_5", "X74/Y58/MULT18_5",
            "X110/Y58/MULT18_5", "X118/Y58/MULT18_4", "X119/Y58/MULT18_5", "X101/Y34/MULT18_5",
            "X62/Y58/MULT18_4", "X70/Y58/MULT18_1", "X87/Y58/MULT18_0", "X109/Y58/MULT18_4",
            "X101/Y58/MULT18_5", "X114/Y58/MULT18_0", "X62/Y34/MULT18_4", "X110/Y34/MULT18_5",
            "X69/Y58/MULT18_0", "X73/Y58/MULT18_4", "X100/Y58/MULT18_4", "X82/Y58/MULT18_4",
            "X92/Y58/MULT18_5", "X100/Y34/MULT18_4", "X92/Y34/MULT18_5", "X45/Y34/MULT18_5",
            "X96/Y58/MULT18_0", "X105/Y58/MULT18_0", "X79/Y58/MULT18_1", "X63/Y34/MULT18_5",
            "X40/Y34/MULT18_0", "X115/Y34/MULT18_1", "X118/Y34/MULT18_4", "X35/Y34/MULT18_4",
            "X88/Y58/MULT18_1", "X91/Y58/MULT18_4", "X59/Y34/MULT18_1", "X106/Y34/MULT18_1",
            "X91/Y34/MULT18_4", "X32/Y34/MULT18_1", "X109/Y34/MULT18_4", "X105/Y10/MULT18_0",
            "X83/Y58/MULT18_5", "X54/Y34/MULT18_5", "X88/Y34/MULT18_1", "X97/Y34/MULT18_1",
            "X96/Y34/MULT18_0", "X100/Y10/MULT18_4", "X114/Y10/MULT18_0", "X109/Y10/MULT18_4",
            "X53/Y34/MULT18_4", "X105/Y34/MULT18_0", "X87/Y34/MULT18_0", "X114/Y34/MULT18_0",
            "X36/Y34/MULT18_5", "X97/Y10/MULT18_1", "X101/Y10/MULT18_5", "X110/Y10/MULT18_5",
        ),
        # The forward drain's sample lane q: together, in the two DSP tiles at the middle
        # of the row at Y = 34.
        "dropout": (
            "X69/Y34/MULT18_0", "X70/Y34/MULT18_1", "X73/Y34/MULT18_4", "X74/Y34/MULT18_5",
            "X78/Y34/MULT18_0", "X79/Y34/MULT18_1", "X82/Y34/MULT18_4", "X83/Y34/MULT18_5",
        ),
    },
}


def dsp_sites(floorplan):
    """``(lane_sites, dropout_sites)`` of one of the config's ``DSP_FLOORPLANS``: the MAC
    lanes' sites (lane ``p * cols + q``) and the forward drain's (sample lane ``q``); both
    None for ``"none"`` (the placer chooses)."""
    if floorplan not in DSP_FLOORPLANS:
        raise ValueError(f"DSP floorplan {floorplan!r}: one of {', '.join(DSP_FLOORPLANS)}")
    if DSP_FLOORPLANS[floorplan] is None:
        return None, None
    sites = _SITES[floorplan]
    return sites["lanes"], sites["dropout"]
