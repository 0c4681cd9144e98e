"""Generators: configuration to Verilog (and later register maps and bitstreams)."""
