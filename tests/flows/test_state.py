"""Save and restore the learner: the state file, the golden model, and the RTL (native backend).

The reference for every restored run is an uninterrupted golden run of the same history:
after the restore the accelerator must insert, train and infer exactly as if it had never
stopped (the same slots, the same shuffles from the LFSR, the same weights)."""

import asyncio
import dataclasses
import json

import numpy as np
import pytest

from tinycl_hdl.flows.native import native_host
from tinycl_hdl.host.driver import BusError
from tinycl_hdl.model import golden
from tinycl_hdl.model.accelerator import SoftwareAccelerator
from tinycl_hdl.model.state import FORMAT_VERSION, LearnerState, StateError, load_state, save_state
from tinycl_hdl.spec.catalogue import SERIAL_TOPS, TOPS
from tinycl_hdl.spec.regmap import Command, RegisterMap

CFG = TOPS["7x5x2"]            # two units, two channels, eight slots


def history(cfg, rng, accelerators, inserts):
    """The same inserts into every accelerator in ``accelerators`` (software ones: plain
    calls); the labels skewed so that the memory fills with half the classes, then evicts."""
    for n in range(inserts):
        label = int(rng.integers(max(1, cfg.classes // 2))) if n < cfg.slots else int(rng.integers(cfg.classes))
        x = rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8)
        slots = {acc.insert(x, label) for acc in accelerators}
        assert len(slots) == 1


def same_learner(a: SoftwareAccelerator, b: SoftwareAccelerator):
    assert a.weights.equals(b.weights), "weights"
    assert a.sampler.size == b.sampler.size and np.array_equal(a.sampler.labels, b.sampler.labels), "labels"
    assert np.array_equal(a.sampler.pixels, b.sampler.pixels) and np.array_equal(a.sampler.counts, b.sampler.counts)
    assert a.lfsr.state == b.lfsr.state, "LFSR"


def trained_golden(cfg, seed=3):
    acc = SoftwareAccelerator(cfg)
    rng = np.random.default_rng(seed)
    history(cfg, rng, [acc], cfg.slots + 5)
    acc.train(epochs=2)
    return acc, rng


def test_golden_save_load_continue_equals_an_uninterrupted_run(tmp_path):
    acc, rng = trained_golden(CFG)
    path = tmp_path / "learner.npz"
    save_state(acc.save_state(), path)
    restored = SoftwareAccelerator(CFG)
    restored.load_state(load_state(path, CFG))
    same_learner(acc, restored)
    # Continue both: inserts that evict (LFSR draws), TRAIN_KEEP, a fresh TRAIN.
    history(CFG, rng, [acc, restored], 6)
    for epochs, scratch in ((1, False), (2, True)):
        acc.train(epochs, from_scratch=scratch)
        restored.train(epochs, from_scratch=scratch)
    same_learner(acc, restored)
    assert acc.sampler.size == CFG.slots and acc.weights.conv_w.any()


def test_the_state_file_keeps_every_part(tmp_path):
    acc, _ = trained_golden(CFG)
    state = acc.save_state()
    save_state(state, tmp_path / "s.npz")
    again = load_state(tmp_path / "s.npz", CFG)
    assert again.equals(state) and again.size == CFG.slots
    assert again.counts.tolist() == acc.sampler.counts.tolist()


def test_bad_state_files_are_refused_by_name(tmp_path):
    acc, _ = trained_golden(CFG)
    good = tmp_path / "good.npz"
    save_state(acc.save_state(), good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(StateError, match="truncated"):
        load_state(truncated, CFG)
    with np.load(good) as archive:
        parts = dict(archive)
    parts["format_version"] = np.int64(FORMAT_VERSION + 1)
    np.savez(tmp_path / "v2.npz", **parts)
    with pytest.raises(StateError, match=f"version {FORMAT_VERSION + 1}"):
        load_state(tmp_path / "v2.npz", CFG)
    other = dataclasses.replace(CFG, filters=2, classes=5)
    with pytest.raises(StateError, match=r"filters: 4 in the state, 2 here; classes: 4 in the state, 5 here"):
        load_state(good, other)
    # The workload registers may differ: the file's values are restored.
    assert load_state(good, dataclasses.replace(CFG, lr_shift=2, seed=9)).lr_shift == CFG.lr_shift


def test_a_refused_state_changes_nothing():
    acc, _ = trained_golden(CFG)
    state = acc.save_state()
    target = SoftwareAccelerator(dataclasses.replace(CFG, pixel_offset=0))
    before = target.save_state()
    with pytest.raises(StateError, match="pixel_offset"):
        target.load_state(state)
    assert target.save_state().equals(before)


def test_states_out_of_range_are_refused():
    acc, _ = trained_golden(CFG)
    state = acc.save_state()
    w = golden.Weights(*(a.copy() for a in state.weights.arrays().values()))
    w.dense_w[0, 0, 0, 0] = 1 << (CFG.data_width - 1)
    with pytest.raises(StateError, match="dense_w holds values outside"):
        dataclasses.replace(state, weights=w)
    with pytest.raises(StateError, match="labels must satisfy"):
        dataclasses.replace(state, labels=np.full(state.size, CFG.classes))
    with pytest.raises(StateError, match="lfsr must be a nonzero"):
        dataclasses.replace(state, lfsr=0)


def test_the_float_reference_has_no_state():
    with pytest.raises(StateError, match="float reference"):
        SoftwareAccelerator(CFG, "float").save_state()


def test_the_serial_datapath_cannot_restore():
    cfg = SERIAL_TOPS["6x6x1-k2-raster-serial"]
    rm = RegisterMap(cfg)
    assert not rm.restorable and rm.samples is None and "LFSR" not in rm.by_name
    assert rm.conv_w.access == "ro" and rm.by_name["CONV_B0"].access == "ro"


# -- the RTL ------------------------------------------------------------------------------


def same(rtl: LearnerState, model: SoftwareAccelerator) -> bool:
    """The RTL's state equals the model's; ``EPOCHS`` aside, which ``TinyCLHost.train(epochs)``
    writes and ``SoftwareAccelerator.train(epochs)`` takes as an argument."""
    return rtl.equals(dataclasses.replace(model.save_state(), epochs=rtl.epochs))


def _run(cfg, coroutine_function):
    with native_host(cfg) as host:
        async def go():
            await host.identify()
            return await coroutine_function(host)
        return asyncio.run(go())


def test_rtl_save_reset_restore_continue_is_bit_exact(tmp_path):
    """Insert and train on the RTL, save, start a fresh model (a reset), load, then insert
    (evicting), train on and from scratch, and infer: every weight, slot, LFSR state and
    prediction equals an uninterrupted golden run's."""
    cfg, rng = CFG, np.random.default_rng(11)
    uninterrupted = SoftwareAccelerator(cfg)
    first = [(rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8),
              int(rng.integers(cfg.classes // 2)) if n < cfg.slots else int(rng.integers(cfg.classes)))
             for n in range(cfg.slots + 5)]
    later = [(rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8), int(rng.integers(cfg.classes)))
             for _ in range(6)]
    probes = [rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8) for _ in range(4)]
    path = tmp_path / "rtl.npz"

    async def before_reset(host):
        for x, y in first:
            assert await host.insert(x, y) == uninterrupted.insert(x, y)
        await host.train(epochs=2)
        uninterrupted.train(epochs=2)
        state = await host.save_state()
        assert same(state, uninterrupted), "the RTL's saved state is the golden model's"
        save_state(state, path)
    _run(cfg, before_reset)

    async def after_reset(host):
        assert await host.read("MEM_SIZE") == 0 and await host.read("LFSR") == RegisterMap(cfg).by_name["LFSR"].reset
        await host.load_state(load_state(path, cfg))
        assert same(await host.save_state(), uninterrupted), "restored"
        for x, y in later:
            assert await host.insert(x, y) == uninterrupted.insert(x, y)
        for epochs, scratch in ((1, False), (2, True)):
            await host.train(epochs=epochs, from_scratch=scratch)
            uninterrupted.train(epochs, from_scratch=scratch)
        assert same(await host.save_state(), uninterrupted), "after training on"
        return [await host.infer(x) for x in probes]
    predictions = _run(cfg, after_reset)
    assert predictions == [uninterrupted.infer(x) for x in probes]


def test_rtl_refuses_state_writes_while_busy_and_bad_values():
    cfg = CFG
    rm = RegisterMap(cfg)

    async def run(host):
        acc = SoftwareAccelerator(cfg)
        rng = np.random.default_rng(5)
        for _ in range(cfg.slots):
            x, y = rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8), int(rng.integers(cfg.classes))
            assert await host.insert(x, y) == acc.insert(x, y)
        t = host.transport
        too_big = 1 << (cfg.data_width - 1)
        refused = [(rm.conv_w.address(f=0, c=0, i=0, j=0), too_big),
                   (rm.dense_w.address(o=0, f=0, y=0, x=0), (-too_big - 1) & 0xFFFFFFFF),
                   (rm.by_name["CONV_B0"].offset, too_big), (rm.by_name["LFSR"].offset, 0)]
        for addr, value in refused:
            with pytest.raises(BusError):
                await t.write(addr, value)
        await host.write("EPOCHS", 40)
        await host.command(Command.TRAIN, wait=False)
        busy_writes = refused[:3] + [(rm.by_name["DENSE_B0"].offset, 1), (rm.by_name["LFSR"].offset, 5)]
        for addr, _ in busy_writes:
            with pytest.raises(BusError):
                await t.write(addr, 1)
        with pytest.raises(BusError):
            await t.read(rm.samples.address(slot=0, row=0, col=0))
        with pytest.raises(StateError, match="busy"):
            await host.save_state()
        await host.wait_idle()
        acc.train(epochs=40)
        # Nothing the refused writes carried landed: the run equals the golden model's.
        state = await host.save_state()
        assert same(state, acc)
        # A restore into a memory that is not empty is refused before it writes.
        with pytest.raises(StateError, match="empty GDumb memory"):
            await host.load_state(state)
        assert (await host.save_state()).equals(state)
    _run(cfg, run)


def test_trained_float_weights_load_and_infer_as_the_golden_model():
    """A float network (the float reference trained on the same memory) quantised by the
    golden model's rule, written into the RTL: INFER's classes and logits equal the golden
    model's on the same quantised weights."""
    cfg = CFG
    float_acc = SoftwareAccelerator(cfg, "float")
    rng = np.random.default_rng(8)
    history(cfg, rng, [float_acc], cfg.slots)
    float_acc.train(epochs=3)
    weights = golden.quantise_weights(cfg, float_acc.weights)
    probes = [rng.integers(0, 256, (cfg.in_h, cfg.in_w, cfg.in_c), dtype=np.uint8) for _ in range(8)]

    async def run(host):
        await host.write_weights(weights)
        assert (await host.read_weights()).equals(weights)
        out = []
        for x in probes:
            cls = await host.infer(x)
            out.append((cls, (await host.read_logits()).tolist()))
        return out
    got = _run(cfg, run)
    want = [golden.infer(cfg, weights, x) for x in probes]
    assert [g[0] for g in got] == [int(w[0]) for w in want]
    assert [g[1] for g in got] == [w[1].tolist() for w in want]


def test_train_saves_and_loads_state_on_golden_and_rtl(tmp_path):
    """``tinycl train --save-state`` after a protocol, then ``--load-state`` before another on
    the golden model and on the RTL: both continue to the same accuracies and the same
    saved state."""
    from click.testing import CliRunner

    from tinycl_hdl.cli import main

    base = ["train", "--quiet", "--set", "slots=40", "--train-limit", "40", "--test-limit", "60", "--epochs", "2"]
    runner = CliRunner()
    first = tmp_path / "first.npz"
    result = runner.invoke(main, base + ["--backend", "golden", "--save-state", str(first)])
    assert result.exit_code == 0, result.output
    tasks = {}
    for backend in ("golden", "rtl"):
        saved, out = tmp_path / f"{backend}.npz", tmp_path / f"{backend}.json"
        result = runner.invoke(main, base + ["--backend", backend, "--load-state", str(first),
                                             "--save-state", str(saved), "--json", str(out)])
        assert result.exit_code == 0, result.output
        tasks[backend] = json.loads(out.read_text())["tasks"]
    assert tasks["golden"] == tasks["rtl"]
    cfg = load_state(first).cfg
    assert load_state(tmp_path / "golden.npz", cfg).equals(load_state(tmp_path / "rtl.npz", cfg))
    assert load_state(tmp_path / "golden.npz").size == 40
    result = runner.invoke(main, ["train", "--backend", "float", "--load-state", str(first)])
    assert result.exit_code != 0 and "float reference has no fixed-point state" in result.output
    result = runner.invoke(main, base + ["--set", "filters=4", "--load-state", str(first)])
    assert result.exit_code != 0 and "filters: 8 in the state, 4 here" in result.output
