"""Random valid configurations end to end (tinycl_hdl.spec.sampling).

Every run draws fresh configurations from one seed, printed in pytest's header
(``--random-seed`` replays a run).  Each RTL case runs ``tinycl verify``'s test: INSERT
with eviction, TRAIN, INFER and TRAIN_KEEP, with every slot label, weight, logit and
prediction compared with the golden model; the Icarus cases under stressed bus traffic
(cocotb), the Verilator cases on the native backend.  A failure names the one-line
command that reproduces it.  ``make test-random N=...`` runs a larger
sweep (``--random-configs N``).
"""

import numpy as np
import pytest

from tinycl_hdl.cli import run_rtl
from tinycl_hdl.spec.sampling import MODEL_LIMITS, random_config, reproduction, verify_samples


def _config(seed, kind, index, limits=None):
    rng = np.random.default_rng([seed, {"icarus": 0, "verilator": 1, "model": 2}[kind], index])
    return random_config(rng, *([limits] if limits else []))


def pytest_generate_tests(metafunc):
    options = metafunc.config.option
    if "rtl_case" in metafunc.fixturenames:
        cases = [("icarus", i) for i in range(options.random_configs)] + \
                [("verilator", i) for i in range(options.random_verilator)]
        metafunc.parametrize("rtl_case", cases, ids=[f"{sim}-{i}" for sim, i in cases])
    if "model_case" in metafunc.fixturenames:
        metafunc.parametrize("model_case", range(options.random_models))


def test_random_configuration_on_the_rtl(rtl_case, random_seed):
    sim, index = rtl_case
    cfg = _config(random_seed, sim, index)
    samples = verify_samples(cfg)
    traffic = "stress" if sim == "icarus" else "plain"      # stressed traffic needs cocotb
    command = reproduction(cfg, sim, samples, traffic)
    print(command)
    try:
        data = run_rtl(cfg, sim, "verify", {"samples": samples, "seed": cfg.seed, "epochs": 1, "traffic": traffic})
    except (Exception, SystemExit) as error:       # cocotb's runner exits on a failed test
        pytest.fail(f"{error!r}\nreproduce with: {command}", pytrace=False)
    # Every comparison with the golden model is an assertion inside the verify run.
    assert data["evictions"] > 0, f"no INSERT evicted: {command}"
    if traffic == "stress":
        assert data["traffic"]["most_writes_behind_a_read"] <= 1
    if cfg.datapath == "array":
        check_schedule(cfg, sim)


def check_schedule(cfg, sim):
    """The lane array's phase counters over an epoch equal its schedule's prediction
    (tinycl_hdl.spec.schedule), on the build the verify run made."""
    from tinycl_hdl.spec.schedule import ArraySchedule

    report = run_rtl(cfg, sim, "report", {"samples": min(cfg.slots, 6)})
    counters = report["counters"]
    want = ArraySchedule(cfg).epoch_phases(counters["TRAIN_SAMPLES"])
    assert {phase: counters[f"CYC_{phase}"] for phase in want} == want


# -- the golden model against float arithmetic ------------------------------------------

#: Unit roundoff of float64.
U = 2.0 ** -53


def _float_error(n_terms, magnitude):
    """Bound on a float64 sum of ``n_terms`` products whose absolute values sum to
    ``magnitude`` (Higham's gamma_n, plus one rounding per product)."""
    n = n_terms + 1
    return n * U / (1 - n * U) * magnitude


def _check(name, got_fixed, want_real, cfg, slack=0.0):
    """``got_fixed`` (data words) is ``want_real`` clipped to the data range and rounded:
    within half an LSB, plus ``slack`` (float error), everywhere."""
    lsb = 2.0 ** -cfg.frac_bits
    lo, hi = -(2 ** (cfg.data_width - 1)) * lsb, (2 ** (cfg.data_width - 1) - 1) * lsb
    error = np.abs(np.asarray(got_fixed) * lsb - np.clip(want_real, lo, hi))
    worst = float((error - (lsb / 2 + slack)).max())
    assert worst <= 0, f"{name}: off by {float(error.max()) / lsb:.3f} LSB (allowed 0.5 + float error)"


def test_golden_model_tracks_float_on_random_configuration(model_case, random_seed):
    """Every rounding and saturation point of one training step and one inference, on a
    random configuration, against float64 arithmetic on the same fixed-point inputs: each
    narrowed value is the real value, saturated, within half an LSB (plus the float sum's
    own error bound); the loss gradient within its derived bound (tests/spec/test_softmax.py)."""
    from bounds import softmax_error_bound

    from tinycl_hdl.model import golden

    from tinycl_hdl.model import reference
    from tinycl_hdl.spec.lfsr import Lfsr
    from tinycl_hdl.spec.update import DITHER_BITS

    cfg = _config(random_seed, "model", model_case, MODEL_LIMITS)
    print(reproduction(cfg, "icarus", verify_samples(cfg)))
    rng = np.random.default_rng([random_seed, 3, model_case])
    lsb, lr = 2.0 ** -cfg.frac_bits, 2.0 ** -cfg.lr_shift
    lo_int, hi_int = -(1 << (cfg.data_width - 1)), (1 << (cfg.data_width - 1)) - 1
    for trial in range(3):
        if trial == 0:
            w = golden.init_weights(cfg, Lfsr(cfg.seed))
        else:           # full-range weights, some small: saturating and not
            scale = [hi_int, 1 << cfg.frac_bits][trial % 2]
            w = golden.Weights(*(np.clip(rng.integers(-scale, scale + 1, a.shape), lo_int, hi_int)
                                 for a in golden.Weights.zeros(cfg).arrays().values()))
        pixels = rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c))
        label = int(rng.integers(cfg.classes))
        new, tr = golden.train_step(cfg, w, pixels, label, seed=int(rng.integers(1 << DITHER_BITS)))
        f = {name: a * lsb for name, a in w.arrays().items()}
        _check("input", tr.x, reference.input_from_pixels(pixels, cfg.pixel_offset), cfg)
        x = tr.x * lsb
        # Conv forward: one rounding of the exact sum.
        patches = reference._patches(cfg, x)
        cw = f["conv_w"].reshape(cfg.filters, -1)
        z = (cw @ patches.T + f["conv_b"][:, None]).reshape(tr.z.shape)
        z_mag = (np.abs(cw) @ np.abs(patches).T + np.abs(f["conv_b"])[:, None]).reshape(tr.z.shape)
        _check("conv forward", tr.z, z, cfg, _float_error(cfg.conv_fan_in, z_mag))
        assert np.array_equal(tr.a, np.maximum(tr.z, 0)), "ReLU"
        # Dense forward from the rounded activations.
        dw = f["dense_w"].reshape(cfg.classes, -1)
        a = tr.a.reshape(-1) * lsb
        logits = dw @ a + f["dense_b"]
        _check("dense forward", tr.logits, logits, cfg, _float_error(cfg.dense_in, np.abs(dw) @ np.abs(a)
                                                                      + np.abs(f["dense_b"])))
        # Loss gradient: softmax of the fixed-point logits, within its derived bound.
        p = reference.softmax(tr.logits * lsb)
        p[label] -= 1.0
        bound = softmax_error_bound(cfg.data_width, cfg.frac_bits, cfg.classes)
        _check("loss gradient", tr.delta, p, cfg, bound - lsb / 2)
        delta = tr.delta * lsb
        # Dense backward: the input gradient with the old weights, the updates with one rounding.
        _check("dense input gradient", tr.grad_a.reshape(-1), delta @ dw, cfg,
               _float_error(cfg.classes, np.abs(delta) @ np.abs(dw)))
        # A stochastic update is the floor or the ceiling: within one LSB, not half.
        rounding = lsb / 2 if cfg.update_rounding == "stochastic" else 0.0
        _check("dense weight update", new.dense_w.reshape(cfg.classes, -1), dw - lr * np.outer(delta, a), cfg,
               rounding)
        _check("dense bias update", new.dense_b, f["dense_b"] - lr * delta, cfg, rounding)
        assert np.array_equal(tr.grad_z, np.where(tr.a > 0, tr.grad_a, 0)), "ReLU backward"
        gz = tr.grad_z.reshape(cfg.filters, -1) * lsb
        grad_w = gz @ patches
        slack = _float_error(cfg.out_h * cfg.out_w, np.abs(gz) @ np.abs(patches)) * lr
        _check("conv weight update", new.conv_w.reshape(cfg.filters, -1), cw - lr * grad_w, cfg, slack + rounding)
        _check("conv bias update", new.conv_b, f["conv_b"] - lr * gz.sum(axis=1), cfg,
               _float_error(cfg.out_h * cfg.out_w, np.abs(gz).sum(axis=1)) * lr + rounding)
