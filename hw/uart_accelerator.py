"""The accelerator behind a UART, with its weights on chip or in an SDRAM: the logic of every
board."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .accelerator import Accelerator
from .uart import UartRx, UartTx

__all__ = ["UartAccelerator"]


class UartAccelerator(wiring.Component):
    """UART receiver -> accelerator -> UART transmitter, weights in ``weight_memory``.

    Parameters
    ----------
    params : CoreParams
    divisor : int or Fraction
        Clock cycles per UART bit (hw/uart.py).
    weight_memory : wiring.Component
        The weight-bus slave (``bus`` member), e.g. :class:`OnChipWeightMemory`, or
        :class:`~hw.boards.sdram.SdramWeights` (``bus`` and ``sdram`` members).
    rx_fifo_depth : int
        Bytes the receiver buffers (the config's ``rx_buffer`` on a board: the host streams
        that many bytes behind a frame that executes).

    Members
    -------
    rx : In(1)
        The UART line from the host (idle high).
    tx : Out(1)
        The UART line to the host.
    framing_error, overrun, rx_byte, tx_byte, executing : Out(1)
        Status for LEDs: a bad stop bit, a receive FIFO overflow, a byte taken or sent by the
        accelerator this cycle, a command executing.
    sdram : Out(sdram_pins_signature)
        Only with a weight memory that has pins of its own (hw/boards/sdram.py): its pins,
        passed through to the board's pads.
    """

    def __init__(self, params, divisor, weight_memory, rx_fifo_depth=16):
        self.params, self.divisor = params, divisor
        self.weight_memory, self.rx_fifo_depth = weight_memory, rx_fifo_depth
        members = {
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "framing_error": Out(1), "overrun": Out(1),
            "rx_byte": Out(1), "tx_byte": Out(1), "executing": Out(1),
        }
        if "sdram" in weight_memory.signature.members:
            members["sdram"] = weight_memory.signature.members["sdram"]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UartRx(self.divisor, self.rx_fifo_depth)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.submodules.accelerator = acc = Accelerator(self.params)
        m.submodules.weights = wmem = self.weight_memory
        wiring.connect(m, urx.o, acc.rx)
        wiring.connect(m, acc.tx, utx.i)
        wiring.connect(m, acc.mem, wmem.bus)
        if "sdram" in self.signature.members:
            wiring.connect(m, wmem.sdram, wiring.flipped(self.sdram))
        m.d.comb += [
            urx.rx.eq(self.rx), self.tx.eq(utx.tx),
            self.framing_error.eq(urx.framing_error), self.overrun.eq(urx.overrun),
            self.rx_byte.eq(acc.rx.valid & acc.rx.ready),
            self.tx_byte.eq(acc.tx.valid & acc.tx.ready),
            self.executing.eq(~acc.rx.ready),
        ]
        return m
