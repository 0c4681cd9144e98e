"""On-chip weight memories: the weight bus served from block RAM, or from one single-port RAM
(the iCE40UP5K's SPRAM) shared by the bus's read and write sides."""

from amaranth.hdl import ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .banked_ram import BankedRam
from .weight_bus import BURST_LEN_BITS, weight_bus_signature

__all__ = ["OnChipWeightMemory", "SinglePortRam", "SinglePortWeightMemory"]


def _burst(m, command, step):
    """The address and the words left of the burst ``command`` (a stream of ``{addr, len}``)
    started; ``step`` moves it on by one word. A new burst is taken when none is left."""
    addr, left = Signal.like(command.payload.addr), Signal(BURST_LEN_BITS)
    m.d.comb += command.ready.eq(left == 0)
    with m.If(command.valid & command.ready):
        m.d.sync += [addr.eq(command.payload.addr), left.eq(command.payload.len)]
    with m.If(step):
        m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
    return addr, left


class _WeightBusSlave(wiring.Component):
    """A slave of the weight bus (docs/HOST_INTERFACE.md, "The weight bus") holding ``depth``
    words.

    Members
    -------
    bus : In(weight_bus_signature)
        Connect the accelerator's ``mem`` here.
    """

    def __init__(self, addr_bits, word_bits, depth):
        self.depth = depth
        super().__init__({"bus": In(weight_bus_signature(addr_bits, word_bits))})


class OnChipWeightMemory(_WeightBusSlave):
    """The weight bus from block RAM: one read burst and one write burst in flight, one word
    a cycle each way.

    The words are a :class:`~hw.banked_ram.BankedRam` of ``BANK_WORDS`` words a bank: each
    bank has its own copies of the addresses and the write, its own read register, and a
    register chooses the bank, so no signal reaches every block and the RAMs' late read data
    (an ECP5 DP16KD's clock-to-output is 5.8 ns) ends at a register beside them. The words
    read then pass through a small FIFO of LUT RAM: a read is issued while the FIFO has room
    for it and every read still on its way, whatever ``r.ready`` is this cycle, so a
    consumer's ``ready`` logic makes no path into the RAMs either. A word reaches ``r``
    ``READ_LATENCY + 2`` (6) cycles after its read is issued: the RAM's pipeline, the write
    into the buffer, the buffer's output register. A write lands a cycle after it is taken
    (a read issued in a later cycle sees it)."""

    #: Words a bank: a power of two (2048 words are 2048 x 9 block RAMs side by side).
    BANK_WORDS = 2048
    #: Words the read side holds: enough for a read a cycle while ``r`` takes one a cycle.
    READ_BUFFER = BankedRam.READ_LATENCY + 3

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        width = len(bus.r.payload)
        m.submodules.memory = ram = BankedRam(self.depth, width,
                                              min(self.BANK_WORDS,
                                                  1 << (self.depth - 1).bit_length()))
        m.submodules.read_buffer = buffer = SyncFIFOBuffered(width=width,
                                                             depth=self.READ_BUFFER)

        issue, take = Signal(), Signal()
        rd_addr, rd_left = _burst(m, bus.ar, issue)
        wr_addr, wr_left = _burst(m, bus.aw, take)
        # Whether a read is on its way through the RAM's pipeline, a register a cycle: room
        # for a read counts them all.
        on_the_way = [Signal(name=f"reading_{k}") for k in range(BankedRam.READ_LATENCY)]
        m.d.sync += [on_the_way[0].eq(issue),
                     *(later.eq(earlier) for earlier, later in zip(on_the_way, on_the_way[1:]))]
        in_flight = sum(on_the_way)
        m.d.comb += [issue.eq((buffer.w_level + in_flight < self.READ_BUFFER) & (rd_left != 0)),
                     ram.read_addr.eq(rd_addr)]
        m.d.comb += [buffer.w_en.eq(on_the_way[-1]), buffer.w_data.eq(ram.read_data),
                     bus.r.valid.eq(buffer.r_rdy), bus.r.payload.eq(buffer.r_data),
                     buffer.r_en.eq(bus.r.ready)]

        m.d.comb += [bus.w.ready.eq(wr_left != 0), take.eq(bus.w.valid & bus.w.ready),
                     ram.write.addr.eq(wr_addr), ram.write.data.eq(bus.w.payload),
                     ram.write.en.eq(take)]
        return m


class SinglePortRam(wiring.Component):
    """One port: a read (``re``; ``rdata`` has the word a cycle later) or a write (``we``) a
    cycle. A write leaves ``rdata`` undefined: the iCE40UP5K's SPRAM does, and the simulation
    model scrambles it. On an iCE40 platform these are ``SB_SPRAM256KA`` primitives (16 bits by
    16 Ki words each); elsewhere (simulation, Verilog) a :class:`Memory`.

    Members
    -------
    addr, wdata, we, re : In
    rdata : Out
    """

    SPRAM_WIDTH, SPRAM_DEPTH = 16, 1 << 14

    def __init__(self, width, depth):
        self.width, self.depth = width, depth
        super().__init__({"addr": In(range(max(depth, 2))), "wdata": In(width), "we": In(1),
                          "re": In(1), "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if getattr(platform, "family", None) == "iCE40":
            if self.width % self.SPRAM_WIDTH or self.depth > self.SPRAM_DEPTH:
                raise ValueError(f"a {self.width}-bit x {self.depth} RAM is not whole iCE40 "
                                 f"SPRAMs ({self.SPRAM_WIDTH} bits x {self.SPRAM_DEPTH})")
            for k in range(self.width // self.SPRAM_WIDTH):
                lanes = slice(k * self.SPRAM_WIDTH, (k + 1) * self.SPRAM_WIDTH)
                m.submodules[f"spram_{k}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=self.addr, i_DATAIN=self.wdata[lanes], i_MASKWREN=0b1111,
                    i_WREN=self.we, i_CHIPSELECT=1, i_CLOCK=ClockSignal(), i_STANDBY=0,
                    i_SLEEP=0, i_POWEROFF=1, o_DATAOUT=self.rdata[lanes])
            return m
        m.submodules.memory = mem = Memory(shape=self.width, depth=self.depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()
        wrote = Signal()
        m.d.sync += wrote.eq(self.we)
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.re), wr.addr.eq(self.addr),
                     wr.en.eq(self.we), wr.data.eq(self.wdata),
                     self.rdata.eq(Mux(wrote, ~rd.data, rd.data))]
        return m


class SinglePortWeightMemory(_WeightBusSlave):
    """The weight bus served from one :class:`SinglePortRam` (on the iCE40UP5K, its SPRAM):
    one access a cycle, a write before a read (the writes of an update trail its reads, so
    neither side starves the other). A word read is kept in a register as it arrives, since a
    later write disturbs the RAM's output."""

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.ram = ram = SinglePortRam(len(bus.r.payload), self.depth)

        issue, take = Signal(), Signal()
        rd_addr, rd_left = _burst(m, bus.ar, issue)
        wr_addr, wr_left = _burst(m, bus.aw, take)
        m.d.comb += [
            bus.w.ready.eq(wr_left != 0), take.eq(bus.w.valid & bus.w.ready),
            issue.eq(~take & (~bus.r.valid | bus.r.ready) & (rd_left != 0)),
            ram.addr.eq(Mux(take, wr_addr, rd_addr)), ram.wdata.eq(bus.w.payload),
            ram.we.eq(take), ram.re.eq(issue),
        ]
        fresh, held = Signal(), Signal.like(bus.r.payload)
        m.d.sync += fresh.eq(issue)
        with m.If(fresh):
            m.d.sync += held.eq(ram.rdata)
        m.d.comb += bus.r.payload.eq(Mux(fresh, ram.rdata, held))
        with m.If(issue):
            m.d.sync += bus.r.valid.eq(1)
        with m.Elif(bus.r.ready):
            m.d.sync += bus.r.valid.eq(0)
        return m
