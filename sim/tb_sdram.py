"""cocotb testbench of hw/sdram_controller.py's generated Verilog with the SDRAM device model
(sim/sdram_model.py) on its pins: random write bursts, each read back (and some read while the
next write burst streams in), random idle cycles on ``w`` and backpressure on ``r``; every word
read compared with a plain array, every command checked by the model (docs/SDRAM.md)."""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from contract.sdram import MT48LC16M16A2_6A, SdramTiming
from sim import params as tb_params
from sim.sdram_model import SdramModel
from sim.stream_bench import reset

def bit(handle):
    """A control output as 0/1; X (Icarus, before the logic driving it first settles) is 0."""
    v = handle.value
    return int(v) if v.is_resolvable else 0


async def settle_combinational(dut):
    """Icarus: Yosys's Verilog runs each `always @*` block once at time 0 through a trigger
    register whose declaration initialiser Icarus does not treat as an event, so a block whose
    inputs are registers that have not changed yet stays X (the whole command logic, through
    the power-up wait). Toggling the trigger runs every such block once. Verilator evaluates
    them anyway, and has no such register."""
    for handle in dut:
        if "verilog_initial_trigger" in handle._name or "dump_module" in handle._name:
            handle.value = 1
            await Timer(1, "ns")
            handle.value = 0


PINS = ("cke", "cs_n", "ras_n", "cas_n", "we_n", "ba", "a", "dqm", "dq_o", "dq_oe")


@cocotb.test()
async def sdram_controller_with_device_model(dut):
    p = tb_params.load()
    rng = random.Random(p["seed"])
    timing = SdramTiming.derive(MT48LC16M16A2_6A, clock_hz=p["clock_hz"], cl=p["cl"],
                                powerup_cycles=p["powerup"])
    model = SdramModel(MT48LC16M16A2_6A, clock_hz=p["clock_hz"],
                       powerup_ns=p["powerup"] * 1e9 / p["clock_hz"], max_postponed=0)
    addr_bits, word_bits = p["addr_bits"], p["word_bits"]
    per_row = p["words_per_row"]
    cocotb.start_soon(Clock(dut.clk, 10, "ns").start(start_high=False))
    names = ("bus__ar__valid", "bus__ar__payload", "bus__aw__valid", "bus__aw__payload",
             "bus__w__valid", "bus__w__payload", "bus__r__ready", "sdram__dq_i")
    for name in names:
        getattr(dut, name).value = 0
    await reset(dut)
    await settle_combinational(dut)
    pins = {name: getattr(dut, f"sdram__{name}") for name in PINS}

    array = {}
    # The bursts: each write burst (random, across row and bank boundaries) then a read of it.
    # Bursts do not overlap, so a read racing the next burst's writes has one right answer.
    bursts, base = [], rng.randrange(per_row)
    for _ in range(p["bursts"]):
        n = rng.randint(1, 2 * per_row)
        bursts += [("w", base, n), ("r", base, n)]
        base += n + rng.choice([0, rng.randrange(per_row), 3 * per_row + rng.randrange(per_row)])
    ar_q = [b for b in bursts if b[0] == "r"]
    aw_q = [b for b in bursts if b[0] == "w"]
    w_words = []            # (addr, value) to send, in order
    r_expect = []           # addr of each word still to read, in order
    writes_done = 0         # bursts whose words were all accepted
    reads_issued = 0
    errors = []
    cycle = 0
    ready_seen = False
    while (ar_q or aw_q or w_words or r_expect) and cycle < p["cycles"]:
        await RisingEdge(dut.clk)
        await Timer(1, "ns")                    # the registered pins of this cycle
        values = {}
        for name, h in pins.items():
            v = h.value
            if v.is_resolvable:
                values[name] = int(v)
            else:
                raise AssertionError(f"cycle {model.cycle}: sdram__{name} is {v}")
        out = model.step(**values)
        dut.sdram__dq_i.value = rng.getrandbits(16) if out is None else out
        ready_seen = ready_seen or bit(dut.ready)
        # The master's side for this cycle.
        ar_v = int(ready_seen and bool(ar_q) and reads_issued < writes_done)
        if ar_v:
            _, a, n = ar_q[0]
            dut.bus__ar__payload.value = a | (n << addr_bits)
        aw_v = int(ready_seen and bool(aw_q) and not w_words)
        if aw_v:
            _, a, n = aw_q[0]
            dut.bus__aw__payload.value = a | (n << addr_bits)
        w_v = int(bool(w_words) and rng.random() >= p["idle"])
        if w_v:
            dut.bus__w__payload.value = w_words[0][1]
        r_r = int(rng.random() >= p["stall"])
        dut.bus__ar__valid.value = ar_v
        dut.bus__aw__valid.value = aw_v
        dut.bus__w__valid.value = w_v
        dut.bus__r__ready.value = r_r
        await ReadOnly()
        ar_fire = ar_v and bit(dut.bus__ar__ready)
        aw_fire = aw_v and bit(dut.bus__aw__ready)
        w_fire = w_v and bit(dut.bus__w__ready)
        r_fire = r_r and bit(dut.bus__r__valid)
        r_data = int(dut.bus__r__payload.value) if r_fire else None
        if r_fire:
            if not r_expect:
                errors.append(f"cycle {cycle}: a word read with no read outstanding")
            else:
                addr = r_expect.pop(0)
                if r_data != array[addr]:
                    errors.append(f"cycle {cycle}: word {addr} read {r_data:#x}, "
                                  f"written {array[addr]:#x}")
        if w_fire:
            addr, value = w_words.pop(0)
            array[addr] = value
            if not w_words:
                writes_done += 1
        if aw_fire:
            _, a, n = aw_q.pop(0)
            w_words = [(a + k, rng.getrandbits(word_bits)) for k in range(n)]
        if ar_fire:
            _, a, n = ar_q.pop(0)
            r_expect += [a + k for k in range(n)]
            reads_issued += 1
        cycle += 1
        if len(errors) > 5:
            break
    assert not errors, errors
    assert not (ar_q or aw_q or w_words or r_expect), \
        f"unfinished after {cycle} cycles: {len(r_expect)} words to read, {len(w_words)} to write"
    assert model.counts["AUTO REFRESH"] > timing.init_refreshes, "no refresh after the init"
    dut._log.info(f"{cycle} cycles, {model.beats} columns, commands {model.counts}")
