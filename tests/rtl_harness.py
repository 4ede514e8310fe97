"""Pytest side of the cocotb testbenches (see :func:`tinycl_hdl.flows.sim.run_design`)."""

from tinycl_hdl.flows.sim import run_design


def run_block(toplevel, cfg, simulator, test_module, params=None, waves=False, sram_blackbox=False):
    """Build ``toplevel`` for ``cfg`` once per simulator and run ``test_module`` against it."""
    run_design(toplevel, cfg, simulator, test_module, params=params, waves=waves, sram_blackbox=sram_blackbox)
