"""The Verilator harness (sim/harness) around a small test design with the accelerator's ports.

The design echoes each frame as a reply frame (command | 0x80, same tag and payload); a frame
with command 0x03 (``u32 word address``, then words) is written to memory through aw/w, read
back through ar/r, and the reply carries the words read.
"""

import os
import random
import struct
import time

import pytest
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from gen.verilog import write_verilog
from contract.protocol import FRAME_CRC, Frame, FrameDecoder, encode
from host.transport import TransportTimeout
from sim.harness import VerilatorTransport, build_harness
from sim.verilator_env import COCOTB, FAST, public_ports_file, top_ports, verilator_env

MEM_CMD = 0x03
BUF_BYTES = 512


class EchoMemDut(wiring.Component):
    def __init__(self, word_bits, addr_bits):
        assert word_bits % 8 == 0
        self.word_bits, self.addr_bits = word_bits, addr_bits
        cmd = data.StructLayout({"addr": addr_bits, "len": 16})
        super().__init__({
            "rx": In(stream.Signature(8)),
            "tx": Out(stream.Signature(8)),
            "mem": Out(wiring.Signature({
                "ar": Out(stream.Signature(cmd)),
                "r": In(stream.Signature(word_bits)),
                "aw": Out(stream.Signature(cmd)),
                "w": Out(stream.Signature(word_bits)),
            })),
        })

    def elaborate(self, platform):
        m = Module()
        wb_n = self.word_bits // 8
        m.submodules.buf = buf = Memory(shape=8, depth=BUF_BYTES, init=[])
        rd = buf.read_port(domain="comb")
        wr = buf.write_port()
        rx, tx, mem = self.rx, self.tx, self.mem

        cmd, tag, length, cnt = Signal(8), Signal(8), Signal(16), Signal(16)
        # The frame CRC of contract.protocol, one processor per direction.
        m.submodules.rx_crc = rx_crc = FRAME_CRC.create()
        m.submodules.tx_crc = tx_crc = FRAME_CRC.create()
        m.d.comb += [rx_crc.data.eq(rx.payload), tx_crc.data.eq(tx.payload)]
        addr, nwords, wb, k = Signal(32), Signal(16), Signal(range(wb_n + 1)), Signal(16)
        ptr, word = Signal(16), Signal(self.word_bits)
        rcmd, rstart, rlen = Signal(8), Signal(16), Signal(16)
        b = rx.payload

        def start_reply(command, start, n):
            m.d.sync += [rcmd.eq(command), rstart.eq(start), rlen.eq(n)]
            m.next = "TX_SYNC"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [rx.ready.eq(1), rx_crc.start.eq(1)]
                with m.If(rx.valid & (b == 0xA5)):
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += [rx.ready.eq(1), rx_crc.valid.eq(rx.valid)]
                with m.If(rx.valid):
                    m.d.sync += cmd.eq(b)
                    m.next = "TAG"
            with m.State("TAG"):
                m.d.comb += [rx.ready.eq(1), rx_crc.valid.eq(rx.valid)]
                with m.If(rx.valid):
                    m.d.sync += tag.eq(b)
                    m.next = "LEN0"
            with m.State("LEN0"):
                m.d.comb += [rx.ready.eq(1), rx_crc.valid.eq(rx.valid)]
                with m.If(rx.valid):
                    m.d.sync += length[:8].eq(b)
                    m.next = "LEN1"
            with m.State("LEN1"):
                m.d.comb += [rx.ready.eq(1), rx_crc.valid.eq(rx.valid)]
                with m.If(rx.valid):
                    m.d.sync += [length[8:].eq(b), cnt.eq(0), nwords.eq(0), wb.eq(0)]
                    m.next = "PAYLOAD"
                    with m.If(Cat(length[:8], b) == 0):
                        m.next = "CRC"
            with m.State("PAYLOAD"):
                m.d.comb += [rx.ready.eq(1), rx_crc.valid.eq(rx.valid)]
                with m.If(rx.valid):
                    m.d.comb += [wr.addr.eq(cnt), wr.data.eq(b), wr.en.eq(1)]
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt < 4):
                        m.d.sync += addr.eq(Cat(addr[8:], b))
                    with m.Else():
                        m.d.sync += wb.eq(Mux(wb == wb_n - 1, 0, wb + 1))
                        with m.If(wb == wb_n - 1):
                            m.d.sync += nwords.eq(nwords + 1)
                    with m.If(cnt == length - 1):
                        m.next = "CRC"
            with m.State("CRC"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    with m.If(b != rx_crc.crc):
                        m.next = "IDLE"
                    with m.Elif((cmd == MEM_CMD) & (nwords != 0)):
                        m.d.sync += k.eq(0)
                        m.next = "AW"
                    with m.Else():
                        start_reply(cmd | 0x80, 0, length)
            with m.State("AW"):
                m.d.comb += [mem.aw.valid.eq(1), mem.aw.payload.addr.eq(addr),
                             mem.aw.payload.len.eq(nwords)]
                with m.If(mem.aw.ready):
                    m.d.sync += [ptr.eq(4), wb.eq(0), k.eq(0)]
                    m.next = "WLOAD"
            with m.State("WLOAD"):
                m.d.comb += rd.addr.eq(ptr)
                shifted = Cat(word[8:], rd.data) if wb_n > 1 else rd.data    # no 0-bit slice
                m.d.sync += [word.eq(shifted), ptr.eq(ptr + 1), wb.eq(wb + 1)]
                with m.If(wb == wb_n - 1):
                    m.d.sync += wb.eq(0)
                    m.next = "WSEND"
            with m.State("WSEND"):
                m.d.comb += [mem.w.valid.eq(1), mem.w.payload.eq(word)]
                with m.If(mem.w.ready):
                    m.d.sync += k.eq(k + 1)
                    m.next = "WLOAD"
                    with m.If(k == nwords - 1):
                        m.d.sync += k.eq(0)
                        m.next = "AR"
            with m.State("AR"):
                m.d.comb += [mem.ar.valid.eq(1), mem.ar.payload.addr.eq(addr),
                             mem.ar.payload.len.eq(nwords)]
                with m.If(mem.ar.ready):
                    m.d.sync += ptr.eq(4)
                    m.next = "RRECV"
            with m.State("RRECV"):
                m.d.comb += mem.r.ready.eq(1)
                with m.If(mem.r.valid):
                    m.d.sync += [word.eq(mem.r.payload), wb.eq(0)]
                    m.next = "RSTORE"
            with m.State("RSTORE"):
                m.d.comb += [wr.addr.eq(ptr), wr.data.eq(word[:8]), wr.en.eq(1)]
                m.d.sync += [word.eq(word >> 8), ptr.eq(ptr + 1), wb.eq(wb + 1)]
                with m.If(wb == wb_n - 1):
                    m.d.sync += [wb.eq(0), k.eq(k + 1)]
                    m.next = "RRECV"
                    with m.If(k == nwords - 1):
                        start_reply(cmd | 0x80, 4, length - 4)
            with m.State("TX_SYNC"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(0xA5), tx_crc.start.eq(1)]
                with m.If(tx.ready):
                    m.next = "TX_CMD"
            with m.State("TX_CMD"):
                m.d.comb += [tx_crc.valid.eq(tx.ready), tx.valid.eq(1), tx.payload.eq(rcmd)]
                with m.If(tx.ready):
                    m.next = "TX_TAG"
            with m.State("TX_TAG"):
                m.d.comb += [tx_crc.valid.eq(tx.ready), tx.valid.eq(1), tx.payload.eq(tag)]
                with m.If(tx.ready):
                    m.next = "TX_LEN0"
            with m.State("TX_LEN0"):
                m.d.comb += [tx_crc.valid.eq(tx.ready), tx.valid.eq(1), tx.payload.eq(rlen[:8])]
                with m.If(tx.ready):
                    m.next = "TX_LEN1"
            with m.State("TX_LEN1"):
                m.d.comb += [tx_crc.valid.eq(tx.ready), tx.valid.eq(1), tx.payload.eq(rlen[8:])]
                with m.If(tx.ready):
                    m.d.sync += [ptr.eq(rstart), cnt.eq(0)]
                    m.next = "TX_DATA"
                    with m.If(rlen == 0):
                        m.next = "TX_CRC"
            with m.State("TX_DATA"):
                m.d.comb += [tx_crc.valid.eq(tx.ready), rd.addr.eq(ptr), tx.valid.eq(1),
                             tx.payload.eq(rd.data)]
                with m.If(tx.ready):
                    m.d.sync += [ptr.eq(ptr + 1), cnt.eq(cnt + 1)]
                    with m.If(cnt == rlen - 1):
                        m.next = "TX_CRC"
            with m.State("TX_CRC"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(tx_crc.crc)]
                with m.If(tx.ready):
                    m.next = "IDLE"
        return m


WORD_BITS, ADDR_BITS, MEM_WORDS = 64, 24, 1024
STALLS = dict(read_latency=20, stall=0.3, rx_stall=0.3, tx_stall=0.3)


def build(tmp_path_factory, word_bits, addr_bits, mem_words, name):
    d = tmp_path_factory.mktemp(name)
    v = write_verilog(EchoMemDut(word_bits, addr_bits), "lela_accelerator", d)
    return build_harness(v, word_bits, addr_bits, mem_words, d / "build")


@pytest.fixture(scope="session")     # built once a worker (xdist interleaves modules)
def harness(tmp_path_factory):
    return build(tmp_path_factory, WORD_BITS, ADDR_BITS, MEM_WORDS, "harness64")


def decode(raw):
    dec = FrameDecoder()
    frames = dec.feed(raw)
    assert dec.buffer == b"" and dec.skipped == 0
    return frames


def mem_frame(addr, words, word_bits):
    wb = word_bits // 8
    return encode(MEM_CMD, struct.pack("<I", addr) + b"".join(w.to_bytes(wb, "little")
                                                              for w in words))


def test_echo(harness):
    with VerilatorTransport(harness) as t:
        raw = t.exchange(encode(0x11, b"hello", tag=0x3C))
        assert decode(raw) == [Frame(0x91, b"hello", 0x3C)]
        assert t.cycle > 0
        # garbage before the SYNC is skipped; an empty payload works
        assert decode(t.exchange(b"\x00\x42" + encode(0x12))) == [Frame(0x92, b"")]


def test_frame_counting(harness):
    with VerilatorTransport(harness, seed=3, rx_stall=0.5, tx_stall=0.5) as t:
        two = encode(0x21, bytes(range(40))) + encode(0x22, b"\xa5\xa5\x05")
        assert decode(t.exchange(two, frames=2)) == [Frame(0xA1, bytes(range(40))),
                                                       Frame(0xA2, b"\xa5\xa5\x05")]
        # asking for one frame returns after the first; the second comes with the next request
        first = t.exchange(two, frames=1)
        assert decode(first) == [Frame(0xA1, bytes(range(40)))]
        assert decode(t.exchange(b"", frames=1)) == [Frame(0xA2, b"\xa5\xa5\x05")]


def read_log(path, word_bits):
    raw = open(path, "rb").read()
    rec = 4 + word_bits // 8
    assert len(raw) % rec == 0
    return [(int.from_bytes(raw[i:i + 4], "little"),
             int.from_bytes(raw[i + 4:i + rec], "little")) for i in range(0, len(raw), rec)]


def roundtrip(exe, word_bits, mem_words, tmp_path, seed, bursts, tag="", **opts):
    rng = random.Random(seed)
    log = tmp_path / f"writes-{seed}{tag}.bin"      # the harness appends to it
    expected_log, sent = [], 0
    with VerilatorTransport(exe, seed=seed, write_log=log, **opts) as t:
        for _ in range(bursts):
            n = rng.randint(1, 8)
            addr = rng.randrange(mem_words - n + 1)
            words = [rng.getrandbits(word_bits) for _ in range(n)]
            frame = mem_frame(addr, words, word_bits)
            sent += len(frame)
            raw = t.exchange(frame)
            wb = word_bits // 8
            assert decode(raw) == [Frame(0x83, b"".join(w.to_bytes(wb, "little")
                                                        for w in words))]
            expected_log += [(addr + i, w) for i, w in enumerate(words)]
        stats = t.stats()
        assert stats["cycle"] == t.cycle
    assert read_log(log, word_bits) == expected_log
    return stats, expected_log, sent


def test_memory_roundtrip_with_stalls(harness, tmp_path):
    stats, log, sent = roundtrip(harness, WORD_BITS, MEM_WORDS, tmp_path, 5, 12, **STALLS)
    assert stats["words_written"] == stats["words_read"] == len(log)
    assert stats["rx_bytes"] == sent
    assert stats["tx_bytes"] == sent - 4 * 12          # replies carry the words, not the address


def test_fast_memory_and_stats(harness, tmp_path):
    with VerilatorTransport(harness) as t:
        assert t.stats() == dict(cycle=0, words_read=0, words_written=0, rx_bytes=0, tx_bytes=0)
        f = mem_frame(MEM_WORDS - 2, [1, 2], WORD_BITS)
        raw = t.exchange(f)
        assert decode(raw) == [Frame(0x83, (1).to_bytes(8, "little") + (2).to_bytes(8, "little"))]
        s = t.stats()
        assert (s["words_read"], s["words_written"], s["rx_bytes"], s["tx_bytes"]) == \
            (2, 2, len(f), len(raw))
        assert s["cycle"] == t.cycle > 0


def test_same_seed_same_cycles(harness, tmp_path):
    a, _, _ = roundtrip(harness, WORD_BITS, MEM_WORDS, tmp_path, 9, 3, "a", **STALLS)
    b, _, _ = roundtrip(harness, WORD_BITS, MEM_WORDS, tmp_path, 9, 3, "b", **STALLS)
    assert a == b


@pytest.mark.parametrize("word_bits,addr_bits", [(8, 10), (128, 24), (512, 32)])
def test_word_widths(tmp_path_factory, tmp_path, word_bits, addr_bits):
    exe = build(tmp_path_factory, word_bits, addr_bits, 256, f"harness{word_bits}")
    roundtrip(exe, word_bits, 256, tmp_path, word_bits, 4, **STALLS)


def test_out_of_range_address(harness):
    with VerilatorTransport(harness) as t:
        with pytest.raises(RuntimeError, match=r"exit 2\).*outside the memory of 1024 words"):
            t.exchange(mem_frame(MEM_WORDS - 1, [7, 8], WORD_BITS))


def test_malformed_request(harness):
    with VerilatorTransport(harness) as t:
        t._proc.stdin.write(b"\x7f")
        t._proc.stdin.flush()
        with pytest.raises(RuntimeError, match="unknown request byte 0x7f"):
            t.stats()


def test_timeout(harness):
    with VerilatorTransport(harness) as t:
        with pytest.raises(TransportTimeout, match="within 500 cycles") as info:
            t.exchange(encode(0x11, b"abc")[:-1], max_cycles=500)   # the CRC byte never comes
        assert info.value.received == b""
        assert t.cycle == 500
        # the harness is still usable; the rest of the frame completes the reply
        assert decode(t.exchange(encode(0x11, b"abc")[-1:])) == [Frame(0x91, b"abc")]


def test_vcd_needs_trace_build(harness, tmp_path):
    with VerilatorTransport(harness, vcd=tmp_path / "w.vcd") as t:
        with pytest.raises(RuntimeError, match="--vcd needs a harness built with tracing"):
            t.stats()


def test_build_is_cached(harness, tmp_path_factory):
    d = os.path.dirname(os.path.dirname(harness))       # <tmp>/build
    v = os.path.join(os.path.dirname(d), "lela_accelerator.v")
    mtime = os.path.getmtime(harness)
    t0 = time.perf_counter()
    assert build_harness(v, WORD_BITS, ADDR_BITS, MEM_WORDS, d) == harness
    assert time.perf_counter() - t0 < 1.0
    assert os.path.getmtime(harness) == mtime


def test_trace_build_writes_vcd(tmp_path):
    v = write_verilog(EchoMemDut(WORD_BITS, ADDR_BITS), "lela_accelerator", tmp_path)
    exe = build_harness(v, WORD_BITS, ADDR_BITS, MEM_WORDS, tmp_path / "build", trace=True)
    with VerilatorTransport(exe, vcd=tmp_path / "w.vcd") as t:
        assert decode(t.exchange(mem_frame(5, [3], WORD_BITS))) == \
            [Frame(0x83, (3).to_bytes(8, "little"))]
    text = (tmp_path / "w.vcd").read_text()
    assert "mem__ar__valid" in text and "#" in text


def test_public_ports_file_lists_the_top_level_ports_only(tmp_path):
    v = write_verilog(EchoMemDut(WORD_BITS, ADDR_BITS), "lela_accelerator", tmp_path)
    ports = top_ports(v, "lela_accelerator")
    assert sorted(ports) == sorted(
        ["clk", "rst"] + [f"{s}__{f}" for s in ("rx", "tx") for f in ("valid", "ready", "payload")]
        + [f"mem__{c}__{f}" for c in ("ar", "r", "aw", "w") for f in ("valid", "ready", "payload")])
    text = open(public_ports_file(v, "lela_accelerator", tmp_path)).read()
    assert text.startswith("`verilator_config\n")
    rules = [line for line in text.splitlines() if line.startswith("public")]
    assert rules == [f'public_flat_rw -module "lela_accelerator" -var "{p}"' for p in ports]
    with pytest.raises(ValueError, match="no module nowhere"):
        top_ports(v, "nowhere")


def test_verilator_env_sets_make_variables_once():
    env = verilator_env(FAST, base={"PATH": "/usr/bin", "MAKEFLAGS": "s -- OPT_FAST=-O3 X=1"})
    words = env["MAKEFLAGS"].split()
    assert words[:3] == ["s", "--", "X=1"]
    assert sorted(words[3:]) == sorted(["CFG_CXXFLAGS_PCH_I=-include", "OPT_FAST=-O2",
                                        "OPT_GLOBAL=-O2", "OPT_SLOW="])
    assert env["PATH"].split(os.pathsep)[-1] == "/usr/bin"
    assert "verilator" in os.listdir(env["PATH"].split(os.pathsep)[0])
    assert "OPT_SLOW=" in verilator_env(COCOTB, base={"PATH": "/usr/bin"})["MAKEFLAGS"].split()
    with pytest.raises(ValueError, match="one flag only"):
        verilator_env({"OPT_FAST": "-O2 -g"})
