import numpy as np
import pytest

from tinycl_hdl.spec.catalogue import PRESETS
from tinycl_hdl.model.data import DataError, load_cifar10, load_digits, write_cifar10_batch
from tinycl_hdl.model.accelerator import SoftwareAccelerator
from tinycl_hdl.model.protocol import run_protocol, task_classes


def test_task_split():
    assert task_classes(10) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert task_classes(5) == [[0, 1], [2, 3], [4]]


def test_digits_dataset():
    ds = load_digits()
    assert ds.train_x.shape[1:] == (8, 8, 1) and ds.train_x.dtype == np.uint8
    assert ds.train_x.max() == 255 and len(ds.train_x) + len(ds.test_x) == 1797
    assert set(ds.test_y.tolist()) == set(range(10))
    # The split is fixed.
    assert np.array_equal(load_digits().test_y, ds.test_y)


@pytest.fixture(scope="module")
def digits_results():
    ds = load_digits()
    cfg = PRESETS["digits"]
    return {arith: run_protocol(cfg, ds, SoftwareAccelerator(cfg, arith), backend=arith, preset="digits")
            for arith in ("float", "golden")}


def test_digits_accuracy_targets(digits_results):
    """Issue targets: float final accuracy >= 0.93, golden within 2 points of float."""
    f = digits_results["float"].final_accuracy
    g = digits_results["golden"].final_accuracy
    assert f >= 0.93
    assert abs(g - f) <= 0.02


def test_gdumb_memory_follows_the_greedy_balance_rule(digits_results):
    """Once the memory is full, a class only enters while below ``slots // seen``
    and evictions come from the largest class, so no class outgrows
    ``max(previous largest, slots // seen)``."""
    tasks = digits_results["golden"].tasks
    previous_max = 0
    for number, task in enumerate(tasks, 1):
        counts = task.memory_counts
        seen = 2 * number
        assert sum(counts) == task.memory_size <= 500
        assert all(c > 0 for c in counts[:seen]) and not any(counts[seen:])
        if number > 1 and tasks[number - 2].memory_size == 500:
            threshold = 500 // seen
            assert all(c <= threshold for c in counts[seen - 2:seen])
            assert max(counts) <= max(previous_max, threshold)
        previous_max = max(counts)
    # Five tasks later the memory holds every class about equally.
    assert max(tasks[-1].memory_counts) - min(tasks[-1].memory_counts) <= 2


def test_float_and_golden_share_memory_selection(digits_results):
    # Same LFSR stream: the GDumb decisions depend on labels only.
    for f, g in zip(digits_results["float"].tasks, digits_results["golden"].tasks):
        assert f.memory_counts == g.memory_counts


def make_cifar_folder(folder, rng, per_batch=20):
    folder.mkdir(parents=True, exist_ok=True)
    samples = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        y = np.arange(per_batch) % 10
        write_cifar10_batch(folder / name, x, y)
        samples[name] = (x, y)
    return samples


def test_cifar10_reader_round_trips_the_official_layout(tmp_path, rng):
    samples = make_cifar_folder(tmp_path / "cifar-10-batches-py", rng)
    ds = load_cifar10(tmp_path)
    assert ds.train_x.shape == (100, 32, 32, 3)
    assert np.array_equal(ds.test_x, samples["test_batch"][0])
    # Independent check of the plane layout: byte 1024 of a row is green (0, 0).
    import pickle
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        raw = pickle.load(f, encoding="bytes")[b"data"]
    assert raw[0, 1024] == ds.train_x[0, 0, 0, 1] and raw[0, 2048 + 32] == ds.train_x[0, 1, 0, 2]


def test_cifar10_errors(tmp_path, rng):
    with pytest.raises(DataError, match="does not exist"):
        load_cifar10(tmp_path / "nowhere")
    with pytest.raises(DataError, match="lacks"):
        load_cifar10(tmp_path)
    make_cifar_folder(tmp_path, rng, per_batch=2)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_3"):
        load_cifar10(tmp_path)
    with pytest.raises(DataError, match="--data-dir"):
        load_cifar10(None)


def test_cifar10_protocol_runs_on_a_small_folder(tmp_path, rng):
    make_cifar_folder(tmp_path, rng, per_batch=10)
    ds = load_cifar10(tmp_path)
    cfg = PRESETS["cifar10"].with_overrides(["slots=20", "epochs=1"])
    result = run_protocol(cfg, ds, SoftwareAccelerator(cfg, "golden"), backend="golden", preset="cifar10")
    assert [t.classes for t in result.tasks] == task_classes(10)
    assert result.tasks[-1].memory_size == 20
