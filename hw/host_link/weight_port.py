"""The host's weight port: ``WRITE_WEIGHTS`` and ``READ_WEIGHTS`` over the weight bus
(docs/HOST_INTERFACE.md, the command table and "Weight layout")."""

from amaranth.hdl import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from contract.protocol import MAX_PAYLOAD, Command, Status

from ..weight_bus import BURST_LEN_BITS, weight_bus_signature
from .framing import executor_members

__all__ = ["WeightPort"]

ADDRESS_BYTES = 4        # the payload's u32 word address
COUNT_BYTES = 2          # READ_WEIGHTS' u16 word count


class WeightPort(wiring.Component):
    """Moves the held frame's weight words to the bus, or the bus's words into the reply.

    The dispatcher has checked the frame's length. ``WRITE_WEIGHTS``: the address, one write
    burst of all the payload's words, ``OK`` once the last word is taken. ``READ_WEIGHTS``: the
    address and count, ``BAD_LENGTH`` for a count of 0 or one that does not fit a reply, else
    one read burst and ``OK`` with the words as the reply body (bytes of each word little
    endian), fetched from the bus as the transmitter sends them. Either is refused with
    ``BAD_VALUE`` (and does nothing) unless its words lie inside the weight memory:
    ``address + words <= weight_words`` (contract/limits.py), judged on all 32 address bits.

    Members
    -------
    command, length : In
        The held frame's command byte and payload length.
    start : In(1)
        Pulses to execute the held ``WRITE_WEIGHTS`` or ``READ_WEIGHTS``.
    cursor : In(cursor_signature())
        Reads the held frame's payload (at byte 0 on ``start``).
    reply : Out(stream.Signature(reply_layout, always_ready=True))
        The reply to send; its payload is 0 while not valid.
    body : Out(stream.Signature(8)), body_index : In, body_active : In(1)
        ``READ_WEIGHTS``' reply body, byte ``body_index``, while the transmitter sends it
        (pipelined, through a queue: the port counts the bytes it queues).
    mem : Out(weight_bus_signature)
        The weight bus (the host's side of it).
    """

    def __init__(self, params):
        self.params = params
        wb = params.word_bytes
        if wb < 1 or wb & (wb - 1):
            raise ValueError(f"the weight port needs a power-of-two number of bytes per word, "
                             f"not {wb}")
        super().__init__({
            **executor_members(),
            "start": In(1),
            "mem": Out(weight_bus_signature(params.addr_bits, params.word_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        p = self.params
        wb = p.word_bytes
        wbits = (wb - 1).bit_length()
        cursor, mem = self.cursor, self.mem

        addr = Signal(p.addr_bits)                 # the u32 address's low bits
        addr_high = Signal()                       # a bit above them is set
        outside = Signal()                         # the words run past the weight memory
        weight_words = p.weight_words or 1 << p.addr_bits
        # Payload bytes shift in at the top: a write's word, then (READ_WEIGHTS) the count in
        # the top 16 bits; while a read's reply is sent, the word being sent.
        # (Pipelined, not reset: bytes shift in before it is read, and the reset's net into
        # it was 15.3 ns of an 8 x 8 ULX3S build; the iCE40's cells pack tighter with it.)
        word = Signal(max(BURST_LEN_BITS, p.word_bits), reset_less=p.pipelined)
        weight_word = word[len(word) - p.word_bits:]
        count = word[len(word) - BURST_LEN_BITS:]
        have_word = Signal()                       # weight_word holds bytes yet to be sent
        write_words = (self.length - ADDRESS_BYTES) >> wbits

        def reply(code, body_length=0):
            m.d.comb += [self.reply.valid.eq(1), self.reply.payload.status.eq(code),
                         self.reply.payload.length.eq(body_length)]
            m.next = "IDLE"

        def take_byte():
            m.d.comb += cursor.advance.eq(1)
            m.d.sync += word.eq(Cat(word[8:], cursor.data))

        m.d.comb += [
            mem.ar.payload.addr.eq(addr), mem.ar.payload.len.eq(count),
            mem.aw.payload.addr.eq(addr), mem.aw.payload.len.eq(write_words),
            mem.w.payload.eq(weight_word),
        ]

        # Each payload byte takes two states: one while the cursor's read is under way, one
        # that uses its byte and moves the cursor on.
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [addr.eq(0), addr_high.eq(0)]
                    m.next = "ADDR"
            with m.State("ADDR"):
                m.next = "ADDR_BYTE"
            with m.State("ADDR_BYTE"):
                with m.Switch(cursor.position):            # little endian, byte by byte
                    for k in range(ADDRESS_BYTES):
                        with m.Case(k):
                            if 8 * k < p.addr_bits:
                                m.d.sync += addr[8 * k:8 * k + 8].eq(cursor.data)
                            if 8 * k + 8 > p.addr_bits:
                                above = cursor.data[max(0, p.addr_bits - 8 * k):]
                                with m.If(above != 0):
                                    m.d.sync += addr_high.eq(1)
                m.d.comb += cursor.advance.eq(1)
                with m.If(cursor.position == ADDRESS_BYTES - 1):
                    with m.If(self.command == Command.WRITE_WEIGHTS):
                        m.next = "WRITE_RANGE"
                    with m.Else():
                        m.next = "COUNT"
                with m.Else():
                    m.next = "ADDR"

            with m.State("COUNT"):
                m.next = "COUNT_BYTE"
            with m.State("COUNT_BYTE"):
                take_byte()
                with m.If(cursor.position == ADDRESS_BYTES + COUNT_BYTES - 1):
                    m.next = "READ_WORDS" if p.pipelined else "READ_RANGE"
                with m.Else():
                    m.next = "COUNT"
            # The range, registered (for timing) before the command acts; one adder for both.
            # Pipelined, the words too, a state earlier (the command's decode ends there).
            words = Mux(self.command == Command.WRITE_WEIGHTS, write_words, count)
            if p.pipelined:
                # (READ_WEIGHTS' count is whole the cycle after its last byte: READ_WORDS.)
                words_counted = Signal.like(words)
                m.d.sync += words_counted.eq(words)
                words = words_counted
                with m.State("READ_WORDS"):
                    m.next = "READ_RANGE"
            for name, after in (("READ_RANGE", "READ_COMMAND"), ("WRITE_RANGE", "WRITE_COMMAND")):
                with m.State(name):
                    m.d.sync += outside.eq(addr_high | (addr + words > weight_words))
                    m.next = after
            with m.State("READ_COMMAND"):
                with m.If((count == 0) | (count > (MAX_PAYLOAD - 1) // wb)):
                    reply(Status.BAD_LENGTH)
                with m.Elif(outside):
                    reply(Status.BAD_VALUE)
                with m.Else():
                    m.d.comb += mem.ar.valid.eq(1)
                    with m.If(mem.ar.ready):
                        reply(Status.OK, count << wbits)

            with m.State("WRITE_COMMAND"):
                with m.If(outside):
                    reply(Status.BAD_VALUE)
                with m.Else():
                    m.d.comb += mem.aw.valid.eq(1)
                    with m.If(mem.aw.ready):
                        m.next = "WRITE_WAIT"
            with m.State("WRITE_WAIT"):
                with m.If(cursor.at_end):
                    reply(Status.OK)
                with m.Else():
                    m.next = "WRITE_BYTE"
            with m.State("WRITE_BYTE"):
                take_byte()
                # The word's last byte: (position - ADDRESS_BYTES) % wb == wb - 1.
                last = (cursor.position[:wbits] == (wb - 1 + ADDRESS_BYTES) % wb) if wbits else 1
                with m.If(last):
                    m.next = "WRITE_PUSH"
                with m.Else():
                    m.next = "WRITE_WAIT"
            with m.State("WRITE_PUSH"):
                m.d.comb += mem.w.valid.eq(1)
                with m.If(mem.w.ready):
                    m.next = "WRITE_WAIT"

        sending = self.body_active & (self.command == Command.READ_WEIGHTS)
        if p.pipelined:
            # From a register (the command's decode does not reach the word's clock enable):
            # a word is fetched a cycle into the body, and none is left to fetch after it.
            sending_registered = Signal()
            m.d.sync += sending_registered.eq(sending)
            sending = sending_registered
        fetch = sending & ~have_word
        if p.pipelined:
            # The bus's words through a queue of two, so that whether one is there comes
            # from a register: the bus's valid follows its owner, the sequencer's state, and
            # reached the word's clock enable (14.39 ns of an 8 x 8 ULX3S build). It takes
            # words while the body is sent, as the port did; a command's start empties it (a
            # reply takes every word of its burst, so it holds none then).
            m.submodules.read_queue = read_queue = ResetInserter(self.start)(
                SyncFIFO(width=p.word_bits, depth=2))
            m.d.comb += [read_queue.w_en.eq(mem.r.valid & sending),
                         read_queue.w_data.eq(mem.r.payload),
                         mem.r.ready.eq(read_queue.w_rdy & sending), read_queue.r_en.eq(fetch)]
            word_there, word_read = read_queue.r_rdy, read_queue.r_data
        else:
            m.d.comb += mem.r.ready.eq(fetch)
            word_there, word_read = mem.r.valid, mem.r.payload
        with m.If(word_there & fetch):
            m.d.sync += [weight_word.eq(word_read), have_word.eq(1)]
        if p.pipelined:
            self._queued_body(m, weight_word, have_word)
            return m
        # READ_WEIGHTS' reply body: a word from the bus whenever the last one is sent.
        m.d.comb += [self.body.valid.eq(have_word), self.body.payload.eq(weight_word[:8])]
        with m.If(self.body.valid & self.body.ready):
            m.d.sync += weight_word.eq(weight_word >> 8)
            with m.If((self.body_index[:wbits] == wb - 1) if wbits else 1):
                m.d.sync += have_word.eq(0)
        return m

    def _queued_body(self, m, weight_word, have_word):
        """Pipelined: READ_WEIGHTS' reply body through a queue of two bytes, which stands
        between the transmitter's ``ready`` and the word's clock enable (all ``word_bits`` of
        it): a byte moves in when the queue has room, a register. A command's start empties
        it (a reply takes every byte, so it holds none then)."""
        wb = self.params.word_bytes
        wbits = (wb - 1).bit_length()
        m.submodules.body_queue = queue = ResetInserter(self.start)(SyncFIFO(width=8, depth=2))
        byte_in_word = Signal(max(1, wbits))
        push = have_word & queue.w_rdy
        m.d.comb += [queue.w_en.eq(push), queue.w_data.eq(weight_word[:8]),
                     self.body.valid.eq(queue.r_rdy), self.body.payload.eq(queue.r_data),
                     queue.r_en.eq(self.body.ready)]
        with m.If(push):
            m.d.sync += [weight_word.eq(weight_word >> 8), byte_in_word.eq(byte_in_word + 1)]
            with m.If((byte_in_word == wb - 1) if wbits else 1):
                m.d.sync += have_word.eq(0)
        with m.If(self.start):
            m.d.sync += [have_word.eq(0), byte_in_word.eq(0)]
