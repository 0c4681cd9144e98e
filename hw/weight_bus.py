"""The weight bus: burst reads and writes of ``P``-weight words (docs/HOST_INTERFACE.md)."""

from amaranth.hdl import unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["command_layout", "weight_bus_signature", "BURST_LEN_BITS"]

BURST_LEN_BITS = 16


def command_layout(addr_bits):
    """``{addr, len}``, the address in the low bits."""
    return data.StructLayout({"addr": unsigned(addr_bits), "len": unsigned(BURST_LEN_BITS)})


def weight_bus_signature(addr_bits, word_bits):
    """The master's view: commands and write data out, read data in."""
    return wiring.Signature({
        "ar": Out(stream.Signature(command_layout(addr_bits))),
        "r": In(stream.Signature(unsigned(word_bits))),
        "aw": Out(stream.Signature(command_layout(addr_bits))),
        "w": Out(stream.Signature(unsigned(word_bits))),
    })
