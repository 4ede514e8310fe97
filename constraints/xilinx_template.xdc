# TinyCL on a Xilinx FPGA: template constraints for the `tinycl` top.
#
# 1. Generate the Verilog: `tinycl generate --preset digits -o build/digits`
#    and add build/digits/tinycl.v to a Vivado project with `tinycl` as top
#    (or instantiate it below your own AXI interconnect, as an AXI4-Lite slave).
# 2. Replace the PACKAGE_PIN values with your board's pins (or drop the
#    pin lines when tinycl sits inside a block design), and set the clock
#    period to your clock (10.000 ns = 100 MHz).
# 3. The reset is synchronous and active high; it is not timed.

create_clock -name clk -period 10.000 [get_ports clk]
set_property -dict {PACKAGE_PIN XX IOSTANDARD LVCMOS33} [get_ports clk]
set_property -dict {PACKAGE_PIN XX IOSTANDARD LVCMOS33} [get_ports rst]
set_false_path -from [get_ports rst]

# When the AXI4-Lite port leaves the FPGA, constrain it like any synchronous
# interface (2 ns = 20 % of a 100 MHz period on each side):
set_input_delay  2.000 -clock clk [get_ports -filter {DIRECTION == IN && NAME =~ "s_axil_*"}]
set_output_delay 2.000 -clock clk [get_ports -filter {DIRECTION == OUT}]
