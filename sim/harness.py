"""The Verilator harness of ``lela_accelerator`` (sim/harness/harness.cpp) and its transport.

:func:`build_harness` compiles the harness around a design's Verilog (cached by content);
:class:`VerilatorTransport` runs it and speaks its stdin/stdout protocol
(docs/HOST_INTERFACE.md, "The simulation harness"), so Python never wakes per cycle.
"""

import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import time

from host.transport import Transport, TransportTimeout

from .primitive_models import primitive_models
from .verilator_env import FAST, find_verilator, verilator_env, waiver_args

__all__ = ["build_harness", "compile_harness", "VerilatorTransport", "HARNESS_CPP", "LEN_BITS"]

HARNESS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness")
HARNESS_CPP = os.path.join(HARNESS_DIR, "harness.cpp")
LEN_BITS = 16
TOPLEVEL = "lela_accelerator"
EXE_NAME = "lela_harness"


_EXCHANGE, _STATS, _QUIT = 0x01, 0x02, 0x03
_NO_FRAME_LIMIT = 0xFFFFFFFF


def _optimisation_words():
    # The make variables the build runs with change the executable as much as the arguments.
    return " ".join(f"{k}={v}" for k, v in sorted(FAST.items()))


def _config_header(word_bits, addr_bits, mem_words):
    return ("// written by sim/harness.py: build_harness\n"
            f"#define ADDR_BITS {addr_bits}\n#define LEN_BITS {LEN_BITS}\n"
            f"#define WORD_BITS {word_bits}\n#define MEM_WORDS {mem_words}u\n")


def build_harness(verilog_path, word_bits, addr_bits, mem_words, build_dir, trace=False):
    """Compile the harness for the ``lela_accelerator`` in ``verilog_path``; returns the executable.

    Skipped when ``build_dir`` holds a build of the same Verilog, harness source, widths and
    flags. Raises RuntimeError with the tail of the build log when Verilator fails."""
    if not 8 <= word_bits <= 512:
        raise ValueError(f"word_bits {word_bits} outside 8..512")
    if not 1 <= addr_bits <= 32:
        raise ValueError(f"addr_bits {addr_bits} outside 1..32")
    if not 1 <= mem_words <= 1 << addr_bits:
        raise ValueError(f"mem_words {mem_words} outside 1..2**{addr_bits}")
    return compile_harness(verilog_path, HARNESS_CPP, TOPLEVEL, "harness_config.h",
                           _config_header(word_bits, addr_bits, mem_words), EXE_NAME, build_dir,
                           trace)


def compile_harness(verilog_path, cpp, toplevel, header_name, header, exe_name, build_dir,
                    trace=False):
    """Build ``cpp`` around the Verilog top ``toplevel`` (as ``Vtop``) with ``header`` written
    to ``build_dir/header_name``; cached by a hash of everything that goes in. ``cpp`` includes
    the shared pieces in sim/harness/*.h (ports, memory model, byte pipes, the Verilated top)."""
    build_dir = os.path.abspath(build_dir)
    os.makedirs(build_dir, exist_ok=True)
    obj_dir = os.path.join(build_dir, "obj_dir")
    exe = os.path.join(obj_dir, exe_name)
    args = ["--cc", "--exe", "--build", "-j", "0", "--top-module", toplevel, "--prefix", "Vtop",
            "--Mdir", obj_dir, "-o", exe_name, "--x-assign", "fast", "--x-initial", "fast",
            *waiver_args(), "-CFLAGS", f"-I{build_dir}", "-CFLAGS", f"-I{HARNESS_DIR}"]
    if trace:
        args += ["--trace", "-CFLAGS", "-DLELA_TRACE"]
    # (The models of the vendor primitives the Verilog instantiates come after it.)
    models = primitive_models(verilog_path)
    args += [cpp, os.path.abspath(verilog_path), *models]

    digest = hashlib.sha256()
    # The harness's headers (sim/harness/*.h) are part of every harness build.
    shared = [os.path.join(HARNESS_DIR, n) for n in sorted(os.listdir(HARNESS_DIR))
              if n.endswith(".h")]
    for part in (open(verilog_path, "rb").read(), open(cpp, "rb").read(),
                 *(open(n, "rb").read() for n in models),
                 *(n.encode() + b"\0" + open(n, "rb").read() for n in shared),
                 header.encode(), "\0".join(args).encode(), _optimisation_words().encode()):
        digest.update(len(part).to_bytes(8, "little") + part)
    digest = digest.hexdigest()
    stamp = os.path.join(build_dir, f"{exe_name}.stamp")
    if os.path.exists(exe) and os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == digest:
                return exe

    if os.path.exists(stamp):
        os.remove(stamp)
    # A build of another design leaves objects and dependency files make would trust.
    shutil.rmtree(obj_dir, ignore_errors=True)
    header_path = os.path.join(build_dir, header_name)
    if not os.path.exists(header_path) or open(header_path).read() != header:
        with open(header_path, "w") as f:
            f.write(header)
    env = verilator_env(FAST)
    verilator = find_verilator(env)
    log_path = os.path.join(build_dir, f"{exe_name}_build.log")
    for attempt in range(2):
        with open(log_path, "w") as log:
            result = subprocess.run([verilator, *args], cwd=build_dir, env=env, stdout=log,
                                    stderr=subprocess.STDOUT)
        if result.returncode == 0 and os.path.exists(exe):
            break
        # Verilator's precompiled header goes wrong now and then: the C++ compiler crashes on
        # it when two builds run at once (seen under pytest-xdist), or a stale one from an
        # earlier design is refused. Build once more from scratch.
        shutil.rmtree(obj_dir, ignore_errors=True)
    if result.returncode != 0 or not os.path.exists(exe):
        with open(log_path, errors="replace") as f:
            tail = "".join(f.readlines()[-40:])
        raise RuntimeError(f"building the Verilator harness failed (exit {result.returncode}, "
                           f"log {log_path}):\n{tail}")
    with open(stamp, "w") as f:
        f.write(digest + "\n")
    return exe


class VerilatorTransport(Transport):
    """Runs a harness executable and exchanges bytes with the simulated accelerator.

    ``quiet_cycles`` is how long :meth:`drain` waits for silence. ``cycle`` is the simulated
    cycle the harness last reported; ``harness_seconds`` the wall time spent waiting on the
    harness, ``wall_seconds`` the time since start (their ratio is the share of the run spent
    simulating rather than in Python)."""

    def __init__(self, executable, seed=0, read_latency=0, stall=0.0, rx_stall=0.0, tx_stall=0.0,
                 vcd=None, write_log=None, quiet_cycles=20_000):
        cmd = [executable, "--seed", str(int(seed)), "--read-latency", str(int(read_latency)),
               "--stall", repr(float(stall)), "--rx-stall", repr(float(rx_stall)),
               "--tx-stall", repr(float(tx_stall))]
        if vcd is not None:
            cmd += ["--vcd", os.fspath(vcd)]
        if write_log is not None:
            cmd += ["--write-log", os.fspath(write_log)]
        self.command = cmd
        self.quiet_cycles = quiet_cycles
        self.cycle = 0
        self.harness_seconds = 0.0
        self._started = time.perf_counter()
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)

    @property
    def wall_seconds(self):
        return time.perf_counter() - self._started

    def _died(self, doing):
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._stderr.seek(0)
        err = self._stderr.read().decode(errors="replace").strip()
        raise RuntimeError(f"the Verilator harness died during {doing} (exit {code}): "
                           f"{err or 'no message'}")

    def _request(self, data, reply_len, doing):
        if self._proc is None:
            raise RuntimeError("the Verilator transport is closed")
        if self._proc.poll() is not None:
            self._died(doing)
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except OSError:             # BrokenPipeError: the harness has exited
            self._died(doing)
        return self._read(reply_len, doing)

    def _read(self, n, doing):
        out = self._proc.stdout.read(n) if n else b""
        if len(out) != n:
            self._died(doing)
        return out

    def exchange(self, data, frames=1, max_cycles=10**9, *, timeout=None):
        """Send ``data``; run until ``frames`` reply frames left the device; return their bytes.

        With ``frames=0``, run until the device has taken every byte. Raises
        :class:`TransportTimeout` after ``max_cycles`` cycles (its ``received`` attribute holds
        the bytes that came out). ``timeout`` (seconds, from :class:`Transport`) is not used: the
        simulation is bounded in cycles."""
        data = bytes(data)
        if not 0 <= frames <= _NO_FRAME_LIMIT:
            raise ValueError(f"frames {frames} out of range")
        status, cycle, out = self._exchange(data, frames, max_cycles)
        if status == 1:
            exc = TransportTimeout(
                f"the simulated accelerator sent {len(out)} bytes but not {frames} complete "
                f"frame(s) within {max_cycles} cycles (now at cycle {cycle})")
            exc.received = out
            raise exc
        if status != 0:
            raise RuntimeError(f"the Verilator harness answered status {status}")
        return out

    def run(self, cycles):
        """Run ``cycles`` clock cycles without sending anything; returns the bytes sent on tx."""
        return self._exchange(b"", _NO_FRAME_LIMIT, cycles)[2]

    def drain(self, quiet_cycles=None, limit=64):
        """Run until the device has sent nothing for ``quiet_cycles`` (the transport's
        ``quiet_cycles`` by default); return what it sent (after ``limit`` windows that were not
        quiet, what it sent so far)."""
        quiet = self.quiet_cycles if quiet_cycles is None else quiet_cycles
        out = bytearray()
        for _ in range(limit):
            more = self.run(quiet)
            if not more:
                break
            out += more
        return bytes(out)

    def _exchange(self, data, frames, max_cycles):
        t0 = time.perf_counter()
        head = self._request(struct.pack("<BIIQ", _EXCHANGE, len(data), frames, max_cycles) + data,
                             13, "EXCHANGE")
        status, cycle, n = struct.unpack("<BQI", head)
        out = self._read(n, "EXCHANGE")
        self.harness_seconds += time.perf_counter() - t0
        self.cycle = cycle
        return status, cycle, out

    def stats(self):
        """The memory model's and the byte pipes' counts (``cycle``, ``words_read``,
        ``words_written``, ``rx_bytes``, ``tx_bytes``)."""
        t0 = time.perf_counter()
        values = struct.unpack("<5Q", self._request(bytes([_STATS]), 40, "STATS"))
        self.harness_seconds += time.perf_counter() - t0
        stats = dict(zip(("cycle", "words_read", "words_written", "rx_bytes", "tx_bytes"),
                         values))
        self.cycle = stats["cycle"]
        return stats

    def close(self):
        """Ask the harness to quit (killed if it does not within 5 s); idempotent."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        try:
            if proc.poll() is None:
                try:
                    proc.stdin.write(bytes([_QUIT]))
                    proc.stdin.flush()
                except OSError:
                    pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self._stderr.close()

    def __del__(self):
        if getattr(self, "_proc", None) is not None:
            self.close()
