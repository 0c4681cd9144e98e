"""Amaranth 0.5 datapaths of the accelerator (docs/ARITHMETIC.md is their specification)."""
