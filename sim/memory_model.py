"""A cocotb model of the weight memory on ``lela_accelerator``'s ``mem__*`` ports.

It follows docs/HOST_INTERFACE.md ("The weight bus") and behaves like the C++ harness's model
(sim/harness/memory_model.h): the read and write sides are independent; read commands are served
in order, each burst waiting a random ``0 .. read_latency`` cycles before its first beat; write
beats go to the accepted write commands in order (``w.ready`` is high only while one has beats
left). Each cycle a channel the memory drives is withheld with probability ``stall``
(``ar.ready``, ``aw.ready``, ``w.ready`` low; ``r.valid`` not raised, but once raised it stays
high with a stable payload until taken). All choices come from one seeded ``random.Random``.
A ``valid`` or ``ready`` the design drives that is X (Icarus, before its logic first settles)
counts as low.

Words are held as unsigned integers (zero at start); :meth:`lanes` splits one into its ``P``
signed lanes (lane ``p`` in bits ``[p*wb, (p+1)*wb)``). Every accepted write beat is recorded in
``writes`` as ``(addr, [P signed lanes])``, in the order the beats were accepted.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["MemoryModel", "LEN_BITS"]

LEN_BITS = 16


class MemoryModel:
    """Weight memory of ``size`` words of ``lanes_per_word x lane_bits`` bits.

    Bus errors (a zero-length burst, an access past ``size``, a read of a word never written)
    are not raised inside the simulation (the host thread may be waiting on it); they are
    collected in ``errors`` for the test to check. ``reads``/``writes_count`` count bus words.
    """

    def __init__(self, dut, size, lanes_per_word, lane_bits, addr_bits, read_latency=0,
                 stall=0.0, seed=0, clk=None, prefix="mem"):
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall {stall} outside [0, 1)")
        self.dut, self.prefix = dut, prefix
        self.clk = dut.clk if clk is None else clk
        self.size, self.lanes_per_word, self.lane_bits = size, lanes_per_word, lane_bits
        self.word_bits = lanes_per_word * lane_bits
        self.addr_bits = addr_bits
        self.read_latency, self.stall = int(read_latency), float(stall)
        self.rng = random.Random(seed)
        self.mem = [0] * size
        self.written = [False] * size
        self.writes = []
        self.errors = []
        self.reads = 0
        self.writes_count = 0
        self._task = None

    # ---- words and lanes -------------------------------------------------------------------
    def lanes(self, word):
        wb = self.lane_bits
        mask, half = (1 << wb) - 1, 1 << (wb - 1)
        out = []
        for p in range(self.lanes_per_word):
            v = (word >> (p * wb)) & mask
            out.append(v - (1 << wb) if v >= half else v)
        return out

    def word(self, lanes):
        mask = (1 << self.lane_bits) - 1
        return sum((int(v) & mask) << (p * self.lane_bits) for p, v in enumerate(lanes))

    def read_word(self, addr):
        return self.lanes(self.mem[addr])

    def take_writes(self):
        """The writes recorded since the last call (and forget them)."""
        out, self.writes = self.writes, []
        return out

    # ---- the simulation side -----------------------------------------------------------------
    def start(self):
        if self._task is None:
            self._task = cocotb.start_soon(self._run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _error(self, cycle, message):
        self.errors.append(f"cycle {cycle}: {message}")
        self.dut._log.error(f"memory model: cycle {cycle}: {message}")

    def _burst(self, cycle, what, payload):
        addr = payload & ((1 << self.addr_bits) - 1)
        length = (payload >> self.addr_bits) & ((1 << LEN_BITS) - 1)
        if length == 0:
            self._error(cycle, f"{what} command with len 0 at address {addr} (ignored)")
            return None
        if addr + length > self.size:
            self._error(cycle, f"{what} command addr={addr} len={length} outside the memory of "
                               f"{self.size} words")
        return [addr, length]

    async def _run(self):
        dut, pre = self.dut, self.prefix
        h = {name: getattr(dut, f"{pre}__{name}") for name in (
            "ar__valid", "ar__ready", "ar__payload", "r__valid", "r__ready", "r__payload",
            "aw__valid", "aw__ready", "aw__payload", "w__valid", "w__ready", "w__payload")}
        ar_valid, ar_ready, ar_payload = h["ar__valid"], h["ar__ready"], h["ar__payload"]
        r_valid, r_ready, r_payload = h["r__valid"], h["r__ready"], h["r__payload"]
        aw_valid, aw_ready, aw_payload = h["aw__valid"], h["aw__ready"], h["aw__payload"]
        w_valid, w_ready, w_payload = h["w__valid"], h["w__ready"], h["w__payload"]
        edge, settle = RisingEdge(self.clk), ReadOnly()
        rnd, stall = self.rng.random, self.stall
        ar_q, aw_q = [], []             # accepted bursts [addr, left], oldest first
        r_cur, r_wait, rv = None, 0, 0
        driven = {"ar": None, "aw": None, "w": None}
        for hd in (ar_ready, aw_ready, w_ready, r_valid):
            hd.value = 0
        r_payload.value = 0
        cycle = 0
        while True:
            # The memory's inputs to the core for this cycle.
            ar_r = int(rnd() >= stall)
            if rv == 0:
                if r_cur is None and ar_q:
                    r_cur = ar_q.pop(0)
                    r_wait = self.rng.randint(0, self.read_latency) if self.read_latency else 0
                if r_cur is not None:
                    if r_wait:
                        r_wait -= 1
                    elif rnd() >= stall:
                        rv = 1
                        addr = r_cur[0]
                        if 0 <= addr < self.size:
                            if not self.written[addr]:
                                self._error(cycle, f"read of word {addr}, never written")
                            r_payload.value = self.mem[addr]
                        else:
                            r_payload.value = 0
                        r_valid.value = 1
            aw_r = int(rnd() >= stall)
            w_r = int(bool(aw_q) and rnd() >= stall)
            for name, hd, v in (("ar", ar_ready, ar_r), ("aw", aw_ready, aw_r),
                                ("w", w_ready, w_r)):
                if driven[name] != v:
                    driven[name] = v
                    hd.value = v
            await settle
            ar_fire = ar_r and ar_valid.value == 1
            ar_cmd = int(ar_payload.value) if ar_fire else 0
            r_fire = rv and r_ready.value == 1
            aw_fire = aw_r and aw_valid.value == 1
            aw_cmd = int(aw_payload.value) if aw_fire else 0
            w_fire = w_r and w_valid.value == 1
            w_data = int(w_payload.value) if w_fire else 0
            await edge
            if ar_fire:
                burst = self._burst(cycle, "read", ar_cmd)
                if burst is not None:
                    ar_q.append(burst)
            if r_fire:
                rv = 0
                r_valid.value = 0
                self.reads += 1
                r_cur[0] += 1
                r_cur[1] -= 1
                if r_cur[1] <= 0:
                    r_cur = None
            if w_fire:
                burst = aw_q[0]
                addr = burst[0]
                if 0 <= addr < self.size:
                    self.mem[addr] = w_data
                    self.written[addr] = True
                self.writes.append((addr, self.lanes(w_data)))
                self.writes_count += 1
                burst[0] += 1
                burst[1] -= 1
                if burst[1] <= 0:
                    aw_q.pop(0)
            if aw_fire:
                burst = self._burst(cycle, "write", aw_cmd)
                if burst is not None:
                    aw_q.append(burst)
            cycle += 1
