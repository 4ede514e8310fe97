"""The flows layer: what users run on the generated design.

Verilog generation (:mod:`.generate`), lint (:mod:`.lint`), cocotb simulation
(:mod:`.sim`), the FPGA flow (:mod:`.fpga`), the ASIC hand-off (:mod:`.asic`) and
the SymbiYosys checks (:mod:`.formal`).
"""
