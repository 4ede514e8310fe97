# TinyCL-HDL: every target sets up what it needs itself: the system packages of
# scripts/system-packages.txt (scripts/system-deps installs what is missing as root, or
# stops at once with the apt-get line to run), then .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= auto

.PHONY: system-deps install demo report bench bench-pytorch paper-builds paper-table asic asic-table fusesoc synth bitstream formal docs test test-random test-soak test-gl coverage fuzz clean

install: $(STAMP)

system-deps:
	@scripts/system-deps

# Order-only: the check runs before every target, and a venv that exists is not rebuilt for it.
$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The main job on the embedded digits preset: the class-incremental GDumb
# protocol on the golden model, the generated Verilog, and the whole protocol
# again on that Verilator (the native backend).
demo: install
	mkdir -p build/digits
	$(BIN)/tinycl train --preset digits --json build/digits/train.json --plot build/digits/accuracy.png
	$(BIN)/tinycl generate --preset digits -o build/digits
	$(BIN)/tinycl train --backend rtl --preset digits --json build/digits/train_rtl.json

# Simulation speed of the native Verilator backend (and of cocotb, for comparison).
bench: install
	mkdir -p build
	$(BIN)/python scripts/bench_sim.py --json build/bench_sim.json

# ASIC hand-off and figures for the digits preset: Verilog with SRAM macros, SDC, macro list and
# models, the logic mapped to the shipped SKY130 cells, timing and power with OpenSTA, power at
# the activity measured over one TRAIN (build/digits-asic/asic.md).
asic: install
	$(BIN)/tinycl asic --preset digits -o build/digits-asic

# The ASIC table of docs/asic.md: digits and cifar10 at n_pu 1 and 8, beside the paper's quoted
# 65 nm figures (about 40 minutes, most of it the n_pu 8 builds).
asic-table: install
	$(BIN)/tinycl asic --preset digits -o build/asic/digits-n1
	$(BIN)/tinycl asic --preset digits --set n_pu=8 -o build/asic/digits-n8
	$(BIN)/tinycl asic --preset cifar10 -o build/asic/cifar10-n1
	$(BIN)/tinycl asic --preset cifar10 --set n_pu=8 -o build/asic/cifar10-n8
	$(BIN)/python scripts/asic_table.py build/asic/digits-n1/asic.json build/asic/digits-n8/asic.json \
		build/asic/cifar10-n1/asic.json build/asic/cifar10-n8/asic.json | tee build/asic/table.md

# FPGA flow (YoWASP Yosys + nextpnr): resource and clock reports of the digits board top on
# both targets (build/digits-<target>/report.json); a target that does not fit is reported,
# and make carries on to the next.  The UP5K build fills 99 % of the device and its clock
# depends on the placement seed (docs/fpga.md gives the figures).  It rounds weight updates to
# nearest: the stochastic rule's runtime shift and dither add about 250 LCs, which the UP5K
# does not have.
UP5K_SEED ?= 3
synth: install
	-$(BIN)/tinycl synth --preset digits --target ecp5-85f --json build/synth_ecp5-85f.json
	-$(BIN)/tinycl synth --preset digits --set datapath=serial --set update_rounding=nearest --target ice40-up5k --pnr-seed $(UP5K_SEED) \
		--json build/synth_ice40-up5k.json

# The FuseSoC core (fusesoc/tinycl.core): Verilator lint, and the self-checking AXI4-Lite
# testbench on Icarus and on Verilator (build/fusesoc/).
fusesoc: install
	$(BIN)/tinycl fusesoc

# Board bitstreams (not programmed): ULX3S-85F (.bit) and ICEBreaker (.bin).
bitstream: install
	$(BIN)/tinycl bitstream --preset digits --board ulx3s-85f
	$(BIN)/tinycl bitstream --preset digits --set datapath=serial --set update_rounding=nearest --board icebreaker --pnr-seed $(UP5K_SEED)

# Cycles per sample and reads per sweep from the RTL counters (Verilator): both presets at every
# n_pu that divides their filters, the other window order, and the serial datapath.
report: install
	mkdir -p build
	$(BIN)/tinycl report --preset digits --json build/report_digits.json
	$(BIN)/tinycl report --preset cifar10 --json build/report_cifar10.json
	$(BIN)/tinycl report --preset digits --set datapath=serial --no-scaling --json build/report_digits_serial.json

# The PyTorch CPU baseline of the paper table: installs the torch extra (several GB) first.
bench-pytorch: install
	$(BIN)/pip install --quiet -e '.[torch]'
	$(BIN)/python scripts/bench_pytorch.py --json build/bench_pytorch.json

# ECP5-85F builds of both presets at every n_pu (hours), then the table beside the paper's epoch
# time (docs/performance.md, "Beside the paper"), from make report's and make bench-pytorch's
# results.  ECP5_SEED is the placement seed; CIFAR10_SLOTS the cifar10 builds' GDumb memory
# (at n_pu = 1, 62 slots need 209 of the 208 block RAMs: a bank's one-bit planes grow by
# 16K-word blocks).
ECP5_SEED ?= 1
CIFAR10_SLOTS ?= 61
paper-builds: install
	for n in 1 2 4 8; do \
	  $(BIN)/tinycl synth --preset digits --set n_pu=$$n --target ecp5-85f --pnr-seed $(ECP5_SEED) \
	    -o build/digits-npu$$n-ecp5-85f --json build/digits-npu$$n-ecp5-85f.json; \
	  $(BIN)/tinycl synth --preset cifar10 --set n_pu=$$n --set slots=$(CIFAR10_SLOTS) --target ecp5-85f \
	    --pnr-seed $(ECP5_SEED) -o build/cifar10-npu$$n-ecp5-85f --json build/cifar10-npu$$n-ecp5-85f.json; \
	done
paper-table: install
	$(BIN)/python scripts/paper_table.py --report build/report_digits.json --report build/report_cifar10.json \
	  --pytorch build/bench_pytorch.json build/*-npu*-ecp5-85f.json

# The documentation site (Sphinx, the API reference from the docstrings), warnings as errors.
docs: install
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs build/docs
	@echo "build/docs/index.html"

test: install
	$(BIN)/python -m pytest -n $(JOBS)

test-soak: install
	$(BIN)/python -m pytest -n $(JOBS) --soak

# Verilator line and toggle coverage of the end-to-end runs on both datapaths, with what the
# control unit reached and the annotated Verilog (build/coverage/).
coverage: install
	$(BIN)/tinycl coverage --out build/coverage

# Gate-level: the end-to-end check on the generic, iCE40, ECP5 and SKY130 netlists of a small
# top, each on Icarus and on Verilator (make test runs the generic one on Icarus).
test-gl: install
	$(BIN)/python -m pytest -n $(JOBS) tests/flows/test_gatelevel.py --gate-level all

# Differential fuzzing of the host port: Hypothesis sequences on the RTL (native backend)
# against the register-level model (make test runs 60).
FUZZ ?= 3000
fuzz: install
	TINYCL_FUZZ_EXAMPLES=$(FUZZ) $(BIN)/python -m pytest tests/flows/test_fuzz_hostport.py --hypothesis-show-statistics

# A larger sweep of random valid configurations end to end on Icarus, under stressed bus
# traffic (SEED=... replays one; the seed is printed in the header).
N ?= 200
SEED ?=
test-random: install
	$(BIN)/python -m pytest -n $(JOBS) tests/rtl/test_random_configs.py --random-configs $(N) --random-verilator 0 \
		--random-models $$(( $(N) * 10 )) $(if $(SEED),--random-seed $(SEED))

# SymbiYosys: the bare AXI4-Lite slave by k-induction, a bounded check (with covers) of a
# small whole top on both datapaths, the window generator, the LFSR and GDumb's bookkeeping.
FORMAL_SET := --set in_h=3 --set in_w=3 --set kernel=2 --set filters=1 --set classes=2 --set slots=2 \
	--set data_width=8 --set frac_bits=4
formal: install
	$(BIN)/tinycl formal $(FORMAL_SET) --window --lfsr --gdumb -o build/formal/array
	$(BIN)/tinycl formal $(FORMAL_SET) --set datapath=serial --no-slave -o build/formal/serial

clean:
	rm -rf build sim_build .pytest_cache .hypothesis docs/_generated
