"""scripts/paper_table.py: the FPGA builds beside the paper, from build and report JSONs."""

import importlib.util
import pathlib

from tinycl_hdl.spec.catalogue import PRESETS

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "paper_table.py"


def _module():
    spec = importlib.util.spec_from_file_location("paper_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(cfg, fmax, meets=True):
    return {"target": "ecp5-85f", "config": cfg.to_dict(), "fmax_mhz": fmax, "clock_mhz": 75.0, "meets_clock": meets,
            "luts": 1000, "ffs": 2000, "dsps": 83, "brams": 30, "pnr_seed": 3}


def test_each_build_gets_its_measured_cycles_and_the_epoch_times():
    table = _module().table
    digits8 = PRESETS["digits"].with_overrides(["n_pu=8"])
    cifar = PRESETS["cifar10"].with_overrides(["n_pu=8", "slots=80"])
    report = {"config": PRESETS["digits"].to_dict(), "cycles_per_sample": 1614.0, "bound_cycles_per_sample": 1544,
              "ratio_to_bound": 1614 / 1544,
              "runs": {"n_pu=8": {"config": digits8.to_dict(), "cycles_per_sample": 240.0,
                                  "bound_cycles_per_sample": 193, "ratio_to_bound": 240 / 193}}}
    cifar_report = {"config": dict(cifar.to_dict(), slots=500), "cycles_per_sample": 8460.0,
                    "bound_cycles_per_sample": 8403, "ratio_to_bound": 8460 / 8403}
    text = table([_build(digits8, 80.0), _build(cifar, 100.0, meets=False)], [report, cifar_report])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in text.splitlines()[2:]}
    digits = rows["8x8x1, n_pu=8, slots=500"]
    # 240 cycles at 80 MHz: 3 us a sample, 0.15 s for 50,000 and 1.5 ms for the 500 slots;
    # 193 x 72 useful MACs in 240 cycles of 156 multipliers: 37.1 %.
    assert digits[5] == "80.0 MHz, seed 3"
    assert digits[6].startswith("240.0 (1.244x)") and digits[7] == "37.1 %"
    assert digits[8] == "0.15 s" and digits[9] == "0.002 s"
    big = rows["32x32x3, n_pu=8, slots=80"]
    # The memory size does not change the cycles per sample: the 500-slot report serves the
    # 80-slot build.  8,460 cycles at 100 MHz: 4.23 s for 50,000 samples, 6.8 ms for 80.
    assert big[5] == "100.0 MHz (misses 75), seed 3" and big[8] == "4.23 s" and big[9] == "0.007 s"
    assert any("quoted" in name and row[-2] == "1.76 s" for name, row in rows.items())


def test_a_build_without_a_measurement_says_so():
    table = _module().table
    cfg = PRESETS["digits"].with_overrides(["n_pu=4"])
    text = table([_build(cfg, 90.0)], [])
    assert "not measured" in text.splitlines()[2]
