"""The C driver: C99 and freestanding, and run on the native model against the golden model."""

import pathlib
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinycl_hdl.flows.driver_sim import DRIVER, build_selftest, compile_c
from tinycl_hdl.flows.peakrdl import map_header
from tinycl_hdl.model import golden
from tinycl_hdl.model.accelerator import SoftwareAccelerator
from tinycl_hdl.spec.catalogue import PRESETS, SMALL
from tinycl_hdl.spec.regmap import ErrorCode, RegisterMap

PROGRAM = pathlib.Path(__file__).resolve().parent / "selftest.c"
SAMPLES_PER_CLASS, INFERS = 2, 3          # as selftest.c


def test_the_driver_includes_only_stdint_and_stddef():
    for source in (DRIVER / "tinycl.h", DRIVER / "tinycl.c"):
        includes = re.findall(r'^#include\s+([<"][^>"]+[>"])', source.read_text(), re.MULTILINE)
        assert set(includes) <= {"<stdint.h>", "<stddef.h>", '"tinycl_map.h"', '"tinycl.h"'}, source


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_the_driver_compiles_freestanding_with_no_library_call(tmp_path, compiler):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    (tmp_path / "tinycl_map.h").write_text(map_header(RegisterMap(PRESETS["cifar10"])))
    obj = tmp_path / "tinycl.o"
    compile_c(compiler, DRIVER / "tinycl.c", [tmp_path, DRIVER], obj, extra=["-ffreestanding", "-O2"])
    # No allocation and no C library: the object needs no symbol from outside.
    undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout.split()
    assert undefined == [], undefined


@pytest.mark.parametrize("preset", ["digits", "cifar10"])
def test_the_example_compiles_with_and_without_save_and_restore(tmp_path, preset):
    """The example firmware builds against a lane-array map (with save and restore) and a
    serial one (without), under the driver's warnings-as-errors flags."""
    for datapath in ("array", "serial"):
        cfg = PRESETS[preset].with_overrides([f"datapath={datapath}"])
        folder = tmp_path / datapath
        folder.mkdir()
        (folder / "tinycl_map.h").write_text(map_header(RegisterMap(cfg)))
        compile_c("gcc", DRIVER / "example.c", [folder, DRIVER], folder / "example.o", extra=["-ffreestanding"])
        undefined = set(subprocess.run(["nm", "-u", str(folder / "example.o")], capture_output=True, text=True,
                                       check=True).stdout.split()) - {"U"}
        calls = {"tinycl_init", "tinycl_mmio_bus", "tinycl_insert", "tinycl_train", "tinycl_infer", "sensor_read"}
        restore = {"tinycl_load_state", "tinycl_save_state", "nvm_read", "nvm_write"}
        assert undefined == (calls | restore if datapath == "array" else calls), undefined


def _lcg_samples(cfg, count, state=12345):
    """selftest.c's samples: the top byte of a 32-bit LCG, pixel after pixel in [H, W, C] order."""
    out = []
    for _ in range(count):
        values = []
        for _ in range(cfg.in_h * cfg.in_w * cfg.in_c):
            state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
            values.append(state >> 24)
        out.append(np.array(values, dtype=np.uint8).reshape(cfg.in_h, cfg.in_w, cfg.in_c))
    return out, state


def _parse(text):
    lines = {}
    for line in text.splitlines():
        key, *rest = line.split()
        lines.setdefault(key, []).append(rest)
    return lines


@pytest.mark.parametrize("name, cfg", [("digits", PRESETS["digits"]), ("7x5x2", SMALL["7x5x2"])])
def test_the_driver_trains_on_the_model_as_the_golden_model(name, cfg):
    result = subprocess.run([str(build_selftest(cfg, PROGRAM))], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = _parse(result.stdout)
    samples, _ = _lcg_samples(cfg, SAMPLES_PER_CLASS * cfg.classes + INFERS)
    model = SoftwareAccelerator(cfg)
    assert out["init"] == [["ok"]]
    for n, sample in enumerate(samples[:SAMPLES_PER_CLASS * cfg.classes]):
        slot = model.insert(sample, n % cfg.classes)
        assert out["insert"][n] == [str(n), "ok", str(-1 if slot is None else slot)]
    assert out["irq_pending"] == [["1"]] and out["irq_cleared"] == [["0"]]
    model.train(epochs=1)
    assert out["train"] == [["ok"]] and out["read_weights"] == [["ok"]]
    w = model.weights
    for key, values in (("conv_w", w.conv_w), ("conv_b", w.conv_b), ("dense_w", w.dense_w), ("dense_b", w.dense_b)):
        assert [int(v) for v in out[key][0]] == values.ravel().tolist(), key
    size = model.sampler.size
    assert out["memory"] == [["ok", str(size)]]
    assert [int(v) for v in out["labels"][0]] == model.sampler.labels[:size].tolist()
    assert [int(v) for v in out["counts"][0]] == np.bincount(model.sampler.labels[:size], minlength=cfg.classes).tolist()
    for k, sample in enumerate(samples[SAMPLES_PER_CLASS * cfg.classes:]):
        cls, logits = golden.infer(cfg, w, sample)
        assert out["infer"][k] == [str(k), "ok", str(cls)]
        assert [int(v) for v in out["logits"][k]] == logits.tolist()
    assert out["counters"][0][:2] == ["ok", str(size)]
    assert out["refused"] == [["command", "refused", "BAD_EPOCHS"]]
    assert out["bad_label"] == [["argument", "out", "of", "range"]]
    names = {int(code): name for code, name in out["error_name"]}
    assert names == {**{int(e): e.name for e in ErrorCode}, len(ErrorCode): "UNKNOWN"}
    # Save, power cycle, restore, train on: as the golden model that never stopped.
    assert out["save_state"] == [["ok", str(size), str(model.lfsr.state)]]
    assert out["load_full"] == [["state", "refused"]], "a restore into a memory in use is refused"
    assert out["reinit"] == [["ok"]] and out["load_state"] == [["ok"]] and out["train_on"] == [["ok"]]
    model.train(epochs=1, from_scratch=False)
    w = model.weights
    assert out["restored_read_weights"] == [["ok"]]
    for key, values in (("conv_w", w.conv_w), ("conv_b", w.conv_b), ("dense_w", w.dense_w), ("dense_b", w.dense_b)):
        assert [int(v) for v in out[f"restored_{key}"][0]] == values.ravel().tolist(), f"{key} after the restore"
