"""Host side: the driver and its transports (simulation, serial port)."""
