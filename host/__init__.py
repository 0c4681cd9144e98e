"""Host side: the protocol definition and (issue 4) the driver with its transports."""
