"""Per-cycle model of hw/banked_ram.py: a RAM read with a latency of four cycles; a read sees
every write given in an earlier cycle."""

__all__ = ["BankedRam"]


class BankedRam:
    READ_LATENCY = 4

    def __init__(self, depth):
        self.depth = depth
        self.words = {}
        self.read_given = None          # the address given last cycle: at the RAM this cycle
        self.write_given = None         # (address, byte) given last cycle: written at this edge
        self.on_the_way = [None] * (self.READ_LATENCY - 1)   # RAM out, bank register, shown

    def outputs(self, inputs):
        """``read_data``; None where the RTL's is unspecified (a byte never written, an
        address beyond ``depth``, the first cycles)."""
        return {"read_data": self.on_the_way[-1]}

    def step(self, inputs):
        # The RAM reads before this edge's write lands (a write given in the read's own
        # cycle is not seen).
        addr = self.read_given
        read = self.words.get(addr) if addr is not None and addr < self.depth else None
        if self.write_given is not None and self.write_given[0] < self.depth:
            self.words[self.write_given[0]] = self.write_given[1]
        self.on_the_way = [read] + self.on_the_way[:-1]
        self.read_given = inputs["read_addr"]
        self.write_given = ((inputs["write__addr"], inputs["write__data"])
                            if inputs["write__en"] else None)
