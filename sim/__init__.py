"""cocotb testbenches that compare the RTL with the golden model's per-cycle unit models."""
