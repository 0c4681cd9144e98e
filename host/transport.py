"""How the host driver reaches the accelerator: a byte pipe that returns whole reply frames.

Two transports implement :class:`Transport`: the Verilator harness (``sim.harness``) and, later,
a UART. The driver only calls :meth:`Transport.exchange`, :meth:`Transport.drain` and
:meth:`Transport.close`.
"""

__all__ = ["Transport", "TransportTimeout"]


class TransportTimeout(Exception):
    """The device did not return the frames asked for in time (the message says how long)."""


class Transport:
    """Abstract base. A transport is also a context manager that closes itself."""

    def exchange(self, data, frames=1, timeout=None):
        """Send ``data`` and return every byte received until ``frames`` complete frames arrived.

        Raises :class:`TransportTimeout` when they do not arrive within ``timeout`` (the
        transport's own unit and default)."""
        raise NotImplementedError

    def drain(self):
        """Return whatever the device still sends until the line has been quiet for a while
        (the transport's own measure of it): the host's resynchronisation before it re-sends
        a request whose answer was lost. This base class has nothing to drain."""
        return b""

    def close(self):
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
