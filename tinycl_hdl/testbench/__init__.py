"""The cocotb testbenches, shipped with the package so that an installed wheel simulates.

cocotb imports each ``tb_*`` module by its plain name: :func:`tinycl_hdl.flows.sim.prepare_environment`
puts this folder on ``sys.path``.  A ``TB`` class in :mod:`tbutil` owns clock and reset;
:mod:`axil_bus` holds the AXI4-Lite bus models and monitors.
"""
