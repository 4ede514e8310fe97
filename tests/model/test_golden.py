import dataclasses

import numpy as np
import pytest

import reference_loops as loops
from tinycl_hdl.model import golden
from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.spec.fixedpoint import FixedFormat
from tinycl_hdl.spec.lfsr import Lfsr


def random_weights(cfg, rng, scale=None):
    fmt = FixedFormat.of(cfg)
    scale = scale or fmt.one
    shapes = golden.Weights.zeros(cfg).arrays()
    return golden.Weights(**{name: rng.integers(-scale, scale, a.shape) for name, a in shapes.items()})


def random_pixels(cfg, rng):
    return rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)


@pytest.fixture(params=["nearest", "stochastic"])
def rule_cfg(small_cfg, request):
    """The small configurations with each update rounding."""
    return dataclasses.replace(small_cfg, update_rounding=request.param)


#: A step seed (any 8-bit value: the dither's range).
SEED = 0xA5


def test_conv_forward_matches_loops(small_cfg, rng):
    w = random_weights(small_cfg, rng)
    x = golden.input_from_pixels(small_cfg, random_pixels(small_cfg, rng))
    got = golden.conv_forward(small_cfg, x, w.conv_w, w.conv_b)
    assert got.tolist() == loops.conv_forward(small_cfg, x.tolist(), w.conv_w.tolist(), w.conv_b.tolist())


def test_conv_forward_saturates_instead_of_wrapping(small_cfg):
    fmt = FixedFormat.of(small_cfg)
    x = golden.input_from_pixels(small_cfg, np.full((small_cfg.in_h, small_cfg.in_w, small_cfg.in_c), 255, np.uint8))
    w = golden.Weights.zeros(small_cfg)
    big = np.full_like(w.conv_w, fmt.max)
    assert np.all(golden.conv_forward(small_cfg, x, big, w.conv_b + fmt.max) == fmt.max)
    assert np.all(golden.conv_forward(small_cfg, x, -big - 1, w.conv_b + fmt.min) == fmt.min)


def test_conv_patches_are_windows(small_cfg, rng):
    x = rng.integers(-100, 100, (small_cfg.in_c, small_cfg.in_h, small_cfg.in_w))
    patches = golden.conv_patches(small_cfg, x)
    k = small_cfg.kernel
    for y in range(small_cfg.out_h):
        for xx in range(small_cfg.out_w):
            assert np.array_equal(patches[y, xx], x[:, y:y + k, xx:xx + k])


def test_dense_backward_uses_old_weights_and_matches_loops(rule_cfg, rng):
    cfg = rule_cfg
    w = random_weights(cfg, rng)
    a = golden.relu(rng.integers(-1024, 1024, (cfg.filters, cfg.out_h, cfg.out_w)))
    delta = rng.integers(-1024, 1025, cfg.classes)
    grad_a, new_w, new_b = golden.dense_backward(cfg, a, delta, w.dense_w, w.dense_b, SEED)
    want_a, want_w, want_b = loops.dense_backward(
        cfg, a.reshape(-1).tolist(), delta.tolist(), w.dense_w.reshape(cfg.classes, -1).tolist(), w.dense_b.tolist(),
        SEED)
    assert grad_a.reshape(-1).tolist() == want_a
    assert new_w.reshape(cfg.classes, -1).tolist() == want_w
    assert new_b.tolist() == want_b


def test_relu_backward_mask_is_a_positive():
    grad = np.array([5, -3, 7, 9])
    a = np.array([0, 2, -1, 1])
    assert golden.relu_backward(grad, a).tolist() == [0, -3, 0, 9]


def test_conv_backward_matches_loops(rule_cfg, rng):
    cfg = dataclasses.replace(rule_cfg, lr_shift=2)
    w = random_weights(cfg, rng)
    x = golden.input_from_pixels(cfg, random_pixels(cfg, rng))
    grad_z = rng.integers(-2048, 2048, (cfg.filters, cfg.out_h, cfg.out_w))
    new_w, new_b = golden.conv_backward(cfg, x, grad_z, w.conv_w, w.conv_b, SEED)
    want_w, want_b = loops.conv_backward(cfg, x.tolist(), grad_z.tolist(), w.conv_w.tolist(), w.conv_b.tolist(),
                                         SEED)
    assert new_w.tolist() == want_w and new_b.tolist() == want_b


def test_train_step_chains_the_stages(rule_cfg, rng):
    cfg = rule_cfg
    w = random_weights(cfg, rng, scale=300)
    pixels, label = random_pixels(cfg, rng), 1
    new, trace = golden.train_step(cfg, w, pixels, label, SEED)
    x = golden.input_from_pixels(cfg, pixels)
    z = np.array(loops.conv_forward(cfg, x.tolist(), w.conv_w.tolist(), w.conv_b.tolist()))
    a = np.maximum(z, 0)
    assert np.array_equal(trace.z, z) and np.array_equal(trace.a, a)
    grad_a, dw, db = loops.dense_backward(cfg, a.reshape(-1).tolist(), trace.delta.tolist(),
                                          w.dense_w.reshape(cfg.classes, -1).tolist(), w.dense_b.tolist(), SEED)
    assert new.dense_w.reshape(cfg.classes, -1).tolist() == dw and new.dense_b.tolist() == db
    grad_z = np.where(a > 0, np.array(grad_a).reshape(a.shape), 0)
    cw, cb = loops.conv_backward(cfg, x.tolist(), grad_z.tolist(), w.conv_w.tolist(), w.conv_b.tolist(), SEED)
    assert new.conv_w.tolist() == cw and new.conv_b.tolist() == cb


def test_infer_batch_equals_infer(small_cfg, rng):
    w = random_weights(small_cfg, rng, scale=600)
    xs = np.stack([random_pixels(small_cfg, rng) for _ in range(20)])
    assert golden.infer_batch(small_cfg, w, xs).tolist() == [golden.infer(small_cfg, w, x)[0] for x in xs]


def test_init_weights_draw_order_and_range(small_cfg):
    cfg = small_cfg
    weights = golden.init_weights(cfg, Lfsr(77))
    lfsr = Lfsr(77)
    conv_bits = cfg.frac_bits + 1 - golden.init_shift(cfg.conv_fan_in)
    first = (lfsr.draw() >> (32 - conv_bits)) - (1 << (conv_bits - 1))
    assert weights.conv_w.reshape(-1)[0] == first
    bound = 1 << (cfg.frac_bits - golden.init_shift(cfg.dense_in))
    assert np.abs(weights.dense_w).max() <= bound and weights.dense_w.std() > bound / 4
    assert not weights.conv_b.any() and not weights.dense_b.any()
    assert weights.equals(golden.init_weights(cfg, Lfsr(77)))
    assert not weights.equals(golden.init_weights(cfg, Lfsr(78)))


def test_init_shift_is_inverse_sqrt_fan_in():
    for fan_in in (1, 9, 27, 288, 7200):
        assert 0.5 / np.sqrt(fan_in) < 2.0 ** -golden.init_shift(fan_in) <= 1 / np.sqrt(fan_in) + 1e-12


def test_shuffle_is_a_reproducible_permutation():
    order = golden.shuffle_order(np.arange(50), Lfsr(3))
    assert sorted(order.tolist()) == list(range(50))
    assert order.tolist() != list(range(50))
    assert golden.shuffle_order(np.arange(50), Lfsr(3)).tolist() == order.tolist()


def sample(value, cfg):
    return np.full((cfg.in_h, cfg.in_w, cfg.in_c), value, np.uint8)


def test_gdumb_fills_then_balances():
    cfg = dataclasses.replace(PRESETS["digits"], slots=6, classes=3)
    sampler, lfsr = golden.GDumbSampler(cfg), Lfsr(1)
    # Six samples of class 0 fill the memory in order.
    assert [sampler.insert(sample(i, cfg), 0, lfsr) for i in range(6)] == list(range(6))
    # Class 1 arrives: 2 classes seen, threshold 6 // 2 = 3; class 1 may grow to 3
    # by evicting class-0 samples, then is refused.
    kept = [sampler.insert(sample(100 + i, cfg), 1, lfsr) for i in range(5)]
    assert [k is not None for k in kept] == [True, True, True, False, False]
    assert sampler.counts.tolist() == [3, 3, 0]
    # Class 2: threshold 6 // 3 = 2; ties between classes 0 and 1 evict class 0 first.
    sampler.insert(sample(200, cfg), 2, lfsr)
    assert sampler.counts.tolist() == [2, 3, 1]
    sampler.insert(sample(201, cfg), 2, lfsr)
    assert sampler.counts.tolist() == [2, 2, 2]
    assert sampler.insert(sample(202, cfg), 2, lfsr) is None
    # Labels and pixels stay together, and counts agree with the labels.
    assert np.bincount(sampler.labels, minlength=3).tolist() == sampler.counts.tolist()
    for slot in range(6):
        value = int(sampler.pixels[slot, 0, 0, 0])
        assert sampler.labels[slot] == {0: 0, 1: 1, 2: 2}[value // 100]


def test_gdumb_eviction_picks_the_lfsr_chosen_slot_of_the_largest_class():
    cfg = dataclasses.replace(PRESETS["digits"], slots=4, classes=2)
    sampler = golden.GDumbSampler(cfg)
    lfsr = Lfsr(5)
    for i, label in enumerate([0, 1, 0, 0]):
        sampler.insert(sample(i, cfg), label, lfsr)
    replay = Lfsr(5)
    victim = replay.below(3)                   # independent: the victim-th class-0 slot
    expected_slot = [0, 2, 3][victim]
    assert sampler.insert(sample(9, cfg), 1, lfsr) == expected_slot


def test_gdumb_rejects_bad_label():
    cfg = PRESETS["digits"]
    with pytest.raises(ValueError, match="label"):
        golden.GDumbSampler(cfg).insert(sample(0, cfg), 10, Lfsr(1))
