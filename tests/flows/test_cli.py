import json

import numpy as np
from click.testing import CliRunner

from tinycl_hdl.model import golden

from tinycl_hdl.model import reference
from tinycl_hdl.cli import main
from tinycl_hdl.model.vectors import read_vectors
import reference_loops as loops


def test_train_writes_json_and_plot(tmp_path):
    out, plot = tmp_path / "r.json", tmp_path / "r.png"
    result = CliRunner().invoke(main, ["train", "--backend", "float", "--epochs", "1", "--train-limit", "30",
                                       "--quiet", "--json", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["backend"] == "float" and data["preset"] == "digits"
    assert [t["classes"] for t in data["tasks"]] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert data["final_accuracy"] == data["tasks"][-1]["accuracy"]
    assert all(0 <= t["accuracy"] <= 1 for t in data["tasks"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "final accuracy" in result.output


def test_train_cifar10_without_data_is_a_clear_error():
    result = CliRunner().invoke(main, ["train", "--preset", "cifar10", "--quiet"])
    assert result.exit_code != 0 and "--data-dir" in result.output


def test_vectors_file_format(tmp_path):
    path = tmp_path / "v.npz"
    result = CliRunner().invoke(main, ["vectors", "--set", "in_h=7", "--set", "in_w=5", "--set", "in_c=2",
                                       "--set", "filters=3", "--seed", "5", "--steps", "3", "-o", str(path)])
    assert result.exit_code == 0, result.output
    cfg, v = read_vectors(path)
    assert (cfg.in_h, cfg.in_w, cfg.in_c, cfg.filters) == (7, 5, 2, 3)
    n, k, ho, wo = 3, cfg.kernel, 5, 3
    shapes = {"x": (n, 7, 5, 2), "y": (n,), "conv_w0": (3, 2, k, k), "conv_b0": (3,),
              "dense_w0": (10, 3, ho, wo), "dense_b0": (10,), "logits": (n, 10), "delta": (n, 10),
              "conv_w": (n, 3, 2, k, k), "conv_b": (n, 3), "dense_w": (n, 10, 3, ho, wo), "dense_b": (n, 10)}
    for key, shape in shapes.items():
        assert v[key].shape == shape, key
    assert v["x"].dtype == np.uint8 and int(v["lr_shift"]) == cfg.lr_shift
    # Step 0's logits agree with the float reference on the initial weights
    # (within the forward bound), and each step starts from the previous weights.
    w0 = golden.Weights(v["conv_w0"], v["conv_b0"], v["dense_w0"], v["dense_b0"])
    wf = reference.FloatWeights.from_fixed(cfg, w0)
    logits = reference.forward(cfg, wf, reference.input_from_pixels(v["x"][0], cfg.pixel_offset))["logits"]
    lsb = 2.0 ** -cfg.frac_bits
    bound = lsb / 2 * (1 + np.abs(wf.dense_w.reshape(10, -1)).sum(axis=1))
    assert np.all(np.abs(v["logits"][0] * lsb - logits) <= bound)
    w1 = golden.Weights(v["conv_w"][0], v["conv_b"][0], v["dense_w"][0], v["dense_b"][0])
    assert np.array_equal(golden.infer(cfg, w1, v["x"][1])[1], v["logits"][1])


def test_vectors_carry_the_stochastic_update(tmp_path):
    """An outside reference rebuilds step 0's dense update from the file alone: the formats, the
    input mapping, the loss gradient and each weight's dither (with the loops of
    tests/reference_loops.py, not the golden model)."""
    path = tmp_path / "v.npz"
    result = CliRunner().invoke(main, ["vectors", "--set", "filters=2", "--set", "update_rounding=stochastic",
                                       "--seed", "3", "--steps", "2", "-o", str(path)])
    assert result.exit_code == 0, result.output
    cfg, v = read_vectors(path)
    assert str(v["update_rounding"]) == "stochastic" and v["step_seed"].shape == (2,)
    bits, frac, shift = int(v["dither_bits"]), int(v["frac_bits"]), int(v["frac_bits"]) + int(v["lr_shift"])
    x = ((v["x"][0].astype(np.int64) - int(v["pixel_offset"])) << (frac - 8)).transpose(2, 0, 1)
    z = np.array(loops.conv_forward(cfg, x.tolist(), v["conv_w0"].tolist(), v["conv_b0"].tolist()))
    a = np.maximum(z, 0).reshape(-1)
    g = np.outer(v["delta"][0], a)
    scaled = g >> (shift - bits) if shift >= bits else g << (bits - shift)
    step = (scaled + v["dense_w_dither"][0].reshape(g.shape)) >> bits
    want = np.clip(v["dense_w0"].reshape(g.shape) - step, -(1 << 15), (1 << 15) - 1)
    assert np.array_equal(v["dense_w"][0].reshape(g.shape), want)
    assert not np.array_equal(v["dense_w"][0], v["dense_w0"])


def test_generate_board_top_with_a_uart_divisor(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--module", "tinycl_uart", "--uart-divisor", "260",
                                       "--set", "slots=6", "--set", "filters=2", "--set", "classes=3",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "tinycl_uart.v").read_text()
    assert "module tinycl_uart" in text and "input rx;" in text and "output tx;" in text
    assert (tmp_path / "regmap.md").exists()
    # The divisor reaches the UART: its bit timers reload with 260 - 1 = 0x103 (9 bits).
    assert "= 9'h103;" in text


def test_uart_divisor_only_for_the_board_top_and_fpga_choices_checked(tmp_path):
    result = CliRunner().invoke(main, ["generate", "--uart-divisor", "100", "-o", str(tmp_path)])
    assert result.exit_code != 0 and "--uart-divisor applies to --module tinycl_uart only" in result.output
    result = CliRunner().invoke(main, ["synth", "--target", "ice40-hx8k"])
    assert result.exit_code != 0 and "ice40-up5k" in result.output
    result = CliRunner().invoke(main, ["bitstream", "--board", "arty"])
    assert result.exit_code != 0 and "ulx3s-85f" in result.output


def test_the_scaling_table_gives_speed_ups_over_the_smallest_n_pu():
    from tinycl_hdl.cli import _scaling_table

    def run(n_pu, cycles):
        return {"config": {"n_pu": n_pu}, "phases": {"conv_fwd": cycles / 2, "loss": cycles / 2},
                "cycles_per_sample": cycles, "bound_cycles_per_sample": cycles // 2,
                "ratio_to_bound": 2.0, "mac_utilisation": 0.5}
    table = _scaling_table({8: run(8, 250.0), 1: run(1, 1600.0), 2: run(2, 820.0)}).splitlines()
    assert [line.split()[0] for line in table[1:4]] == ["1", "2", "8"]
    assert table[1].endswith("1.00x") and table[2].endswith(f"{1600 / 820:.2f}x") and table[3].endswith("6.40x")
    assert table[-1] == "(speed-up over n_pu = 1)"
