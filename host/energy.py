"""An energy estimate per training sample: operation counts times per-operation energies.

The energies are those of M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014, for a 45 nm process at 0.9 V: an 8-bit integer multiply 0.2 pJ, a 32-bit
integer add 0.1 pJ, a 64-bit read of an 8 KB SRAM 10 pJ. A multiplier's energy grows about with
the product of its operand widths (the table's 32-bit multiply, 3.1 pJ, is 15.5 times the 8-bit
one for 16 times the product), so a ``w x a``-bit multiply is taken as ``0.2 * w * a / 64`` pJ.

What is counted: every multiply-accumulate of a training sample (host.throughput.macs_per_sample:
forward, local scores, back projection, weight gradient) as one multiply of the MAC array's
operand widths and one 32-bit add, and the weight memory's traffic (each layer's weight words
read once per tile of ``array_cols`` samples in the forward pass, then read and written once by
the mini-batch's update), at the SRAM's energy per bit. What is not: the activation buffers, the
LFSRs, control, the UART, and everything an FPGA adds (routing, LUTs for logic an ASIC does in
gates): this is the arithmetic's and the weight memory's share on a 45 nm ASIC, a lower bound
for comparing configurations, not a board's power.
"""

from contract.registers import layer_words

from .throughput import macs_per_sample

__all__ = ["HOROWITZ_45NM_PJ", "training_energy"]

#: Horowitz, ISSCC 2014, 45 nm: energies in pJ.
HOROWITZ_45NM_PJ = {"mult_8bit": 0.2, "add_32bit": 0.1, "sram_8kb_read_64bit": 10.0}


def training_energy(cfg):
    """``{"mac_pj", "weight_memory_pj", "total_pj", ...}`` per training sample of ``cfg``."""
    e = HOROWITZ_45NM_PJ
    a_bits = max(cfg.weight_bits, cfg.delta_bits)      # the MAC array's signed operand
    mult_pj = e["mult_8bit"] * a_bits * cfg.act_bits / 64
    macs = macs_per_sample(cfg.arch, cfg.classes)
    mac_pj = macs * (mult_pj + e["add_32bit"])
    word_bits = cfg.array_rows * cfg.weight_bits
    tiles = -(-cfg.batch // cfg.array_cols)            # forward passes over the weights
    words = sum(layer_words(cfg, i) for i in range(cfg.layers))
    bits_per_sample = words * word_bits * (tiles + 2) / cfg.batch
    memory_pj = bits_per_sample / 64 * e["sram_8kb_read_64bit"]
    return {"mac_pj": mac_pj, "weight_memory_pj": memory_pj, "total_pj": mac_pj + memory_pj,
            "macs": macs, "mult_pj": mult_pj, "weight_bits_per_sample": bits_per_sample,
            "source": "Horowitz, ISSCC 2014, 45 nm (host/energy.py)"}
