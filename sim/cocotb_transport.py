"""The host transport over a cocotb simulation of ``lela_accelerator``'s ``rx``/``tx`` ports.

The host driver (:class:`host.driver.Accelerator`) is synchronous: run it in a thread started
with ``cocotb.task.bridge``; :meth:`CocotbTransport.exchange` then blocks that thread and lets
the simulation run (through ``cocotb.task.resume``) until the reply frames have left ``tx``.
cocotb 2.1 has both in ``cocotb.task`` (1.x called them ``external`` and ``function``)::

    link = CocotbTransport(dut, rx_stall=0.3, tx_stall=0.3, seed=1)
    link.start()

    def host():
        acc = Accelerator(link)
        ...

    await bridge(host)()

Per clock cycle the transport offers the next queued byte on ``rx`` (``valid`` raised with
probability ``1 - rx_stall`` and then held, with its payload, until taken) and raises
``tx__ready`` with probability ``1 - tx_stall``; an X on ``rx__ready`` or ``tx__valid`` counts
as low. Simulated time only passes while an exchange
waits, as the driver's thread is otherwise holding the simulator.
"""

import collections
import math
import random

import cocotb
from cocotb.task import resume
from cocotb.triggers import Event, ReadOnly, RisingEdge

from contract.protocol import FRAME_OVERHEAD, SYNC
from host.transport import Transport, TransportTimeout

__all__ = ["CocotbTransport"]


class CocotbTransport(Transport):
    """Bytes to ``dut.rx__*`` and from ``dut.tx__*``; ``timeout`` is counted in clock cycles.

    Attributes: ``cycle`` (cycles since :meth:`start`), ``rx_bytes`` and ``tx_bytes`` (bytes
    that moved), ``frames`` (complete frames that left ``tx``)."""

    def __init__(self, dut, clk=None, rx_stall=0.0, tx_stall=0.0, seed=0, default_timeout=10**6):
        for name, value in (("rx_stall", rx_stall), ("tx_stall", tx_stall)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} {value} outside [0, 1)")
        self.dut = dut
        self.clk = dut.clk if clk is None else clk
        self.rx_stall, self.tx_stall = float(rx_stall), float(tx_stall)
        self.rng = random.Random(seed)
        self.default_timeout = int(default_timeout)
        self.cycle = 0
        self.rx_bytes = self.tx_bytes = self.frames = 0
        self._queue = collections.deque()
        self._out = bytearray()            # tx bytes since the current exchange began
        self._frame_pos = self._frame_len = 0
        self._wait = None                  # (frames target or None, deadline cycle, Event)
        self._task = None
        self._exchange_blocking = resume(self._exchange)

    # ---- the simulation side -----------------------------------------------------------------
    def start(self):
        """Start driving the ports (call from a cocotb test, after or during reset)."""
        if self._task is None:
            self._task = cocotb.start_soon(self._run())
        return self._task

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _tx_byte(self, b):
        self._out.append(b)
        self.tx_bytes += 1
        i = self._frame_pos
        if i == 0:
            if b == SYNC:
                self._frame_pos = 1
            return
        # SYNC, command, tag, length (2), payload, CRC: FRAME_OVERHEAD bytes besides the payload.
        if i == 3:
            self._frame_len = b
        elif i == 4:
            self._frame_len |= b << 8
        self._frame_pos = i + 1
        if self._frame_pos >= 5 and self._frame_pos == FRAME_OVERHEAD + self._frame_len:
            self.frames += 1
            self._frame_pos = 0

    async def _run(self):
        dut = self.dut
        rx_valid, rx_ready, rx_payload = dut.rx__valid, dut.rx__ready, dut.rx__payload
        tx_valid, tx_ready, tx_payload = dut.tx__valid, dut.tx__ready, dut.tx__payload
        edge, settle = RisingEdge(self.clk), ReadOnly()
        rnd = self.rng.random
        queue = self._queue
        valid = 0
        rx_valid.value = 0
        rx_payload.value = 0
        tx_ready.value = 0
        ready = 0
        while True:
            if not valid and queue and rnd() >= self.rx_stall:
                valid = 1
                rx_payload.value = queue[0]
                rx_valid.value = 1
            new_ready = int(rnd() >= self.tx_stall)
            if new_ready != ready:
                ready = new_ready
                tx_ready.value = ready
            await settle
            rx_fire = valid and rx_ready.value == 1
            tx_fire = ready and tx_valid.value == 1
            byte = int(tx_payload.value) if tx_fire else 0
            await edge
            self.cycle += 1
            if rx_fire:
                queue.popleft()
                self.rx_bytes += 1
                valid = 0
                rx_valid.value = 0
            if tx_fire:
                self._tx_byte(byte)
            wait = self._wait
            if wait is not None:
                target, deadline, event = wait
                done = not queue if target is None else self.frames >= target
                if done or self.cycle >= deadline:
                    self._wait = None
                    event.set()

    async def _exchange(self, data, frames, timeout):
        self._out = bytearray()
        self._queue.extend(data)
        # frames < 0 (run): no target, only the deadline ends the wait.
        target = None if frames == 0 else math.inf if frames < 0 else self.frames + frames
        if target is not None and self.frames >= target:
            return bytes(self._out), True
        event = Event()
        self._wait = (target, self.cycle + timeout, event)
        await event.wait()
        done = (not self._queue) if target is None else self.frames >= target
        return bytes(self._out), done

    # ---- the host side -----------------------------------------------------------------
    def exchange(self, data, frames=1, timeout=None):
        """Queue ``data`` for ``rx``; return every byte that left ``tx`` until ``frames`` more
        complete frames did (``frames=0``: until ``rx`` took every queued byte).

        Raises :class:`TransportTimeout` (its ``received`` holds the bytes that came out) after
        ``timeout`` clock cycles (default ``default_timeout``). Call from a
        :func:`cocotb.task.bridge` thread."""
        if self._task is None:
            raise RuntimeError("CocotbTransport.start() was not called")
        if frames < 0:
            raise ValueError(f"frames {frames} < 0")
        timeout = self.default_timeout if timeout is None else int(timeout)
        start = self.cycle
        out, done = self._exchange_blocking(bytes(data), int(frames), timeout)
        if not done:
            exc = TransportTimeout(
                f"the simulated accelerator sent {len(out)} bytes but not {frames} complete "
                f"frame(s) within {timeout} cycles (cycles {start}..{self.cycle}, "
                f"{len(self._queue)} bytes not taken by rx)")
            exc.received = out
            raise exc
        return out

    def run(self, cycles):
        """Let ``cycles`` clock cycles pass without sending; returns the bytes that left tx."""
        self._exchange_blocking(b"", -1, int(cycles))
        return bytes(self._out)

    def close(self):
        self.stop()
