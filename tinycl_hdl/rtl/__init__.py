"""Amaranth RTL of the TinyCL accelerator."""
