"""Datasets of the presets: scikit-learn's bundled digits and CIFAR-10 batches.

Every dataset is returned as :class:`Dataset` with ``[N, H, W, C]`` uint8
pixels and integer labels, split into train and test parts.
"""

from __future__ import annotations

import pathlib
import pickle
from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "DataError", "load_digits", "load_cifar10", "write_cifar10_batch", "load_for",
           "SYNTHETIC_KINDS", "synthetic_cifar10", "synthetic_shapes", "write_synthetic_cifar10"]


class DataError(RuntimeError):
    """A data folder or file that cannot be used; the message says why."""


@dataclass(frozen=True)
class Dataset:
    name: str
    train_x: np.ndarray  # [N, H, W, C] uint8
    train_y: np.ndarray  # [N] int64
    test_x: np.ndarray
    test_y: np.ndarray

    @property
    def shape(self):
        return self.train_x.shape[1:]


def load_digits(test_fraction: float = 0.3) -> Dataset:
    """scikit-learn's 8x8 digits, pixels 0..16 scaled to 0..255.

    The split is fixed: a stratified split with ``random_state=0``.
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    bunch = _load()
    pixels = np.floor(bunch.images * (255.0 / 16.0) + 0.5).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        pixels, labels, test_size=test_fraction, random_state=0, stratify=labels)
    return Dataset("digits", train_x, train_y, test_x, test_y)


_CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_CIFAR_TEST = "test_batch"


def _read_cifar_batch(path: pathlib.Path):
    try:
        with path.open("rb") as file:
            batch = pickle.load(file, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise DataError(f"{path} is not a CIFAR-10 python batch: {error}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 python batch: it lacks the 'data' and 'labels' entries")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path} is not a CIFAR-10 python batch: 'data' has shape {data.shape}, "
                        f"expected [N, 3072] with N = {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path} has labels outside 0..9")
    # Rows hold 1024 red, 1024 green, then 1024 blue values, each plane row-major.
    return data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(data_dir) -> Dataset:
    """The official CIFAR-10 python batches from ``data_dir`` (or its ``cifar-10-batches-py``)."""
    if data_dir is None:
        raise DataError("the cifar10 preset needs --data-dir: a folder with the CIFAR-10 python batches "
                        "(data_batch_1 .. data_batch_5 and test_batch)")
    folder = pathlib.Path(data_dir)
    if (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    if not folder.is_dir():
        raise DataError(f"CIFAR-10 folder {str(folder)!r} does not exist")
    missing = [name for name in _CIFAR_TRAIN + [_CIFAR_TEST] if not (folder / name).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 folder {str(folder)!r} lacks {', '.join(missing)}")
    train = [_read_cifar_batch(folder / name) for name in _CIFAR_TRAIN]
    test_x, test_y = _read_cifar_batch(folder / _CIFAR_TEST)
    return Dataset("cifar10", np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                   test_x, test_y)


def write_cifar10_batch(path, pixels, labels) -> None:
    """Write ``[N, 32, 32, 3]`` uint8 pixels in the CIFAR-10 python batch format."""
    pixels = np.asarray(pixels, dtype=np.uint8)
    data = pixels.transpose(0, 3, 1, 2).reshape(len(pixels), 3072)
    with open(path, "wb") as file:
        pickle.dump({b"data": data, b"labels": [int(v) for v in labels],
                     b"batch_label": b"written by tinycl_hdl"}, file)


def synthetic_cifar10(seed: int = 1, train_per_class: int = 5000, test_per_class: int = 1000):
    """A learnable stand-in for CIFAR-10 with its shapes and counts: ``[N, 32, 32, 3]`` uint8
    pixels and labels 0..9.  Class ``c`` is a colour and a stripe pattern of its own (an
    orientation and a frequency) under per-sample noise, shifts and contrast, so that the
    network separates the classes only partly, as on the real data.  Returns
    ``(train_x, train_y, test_x, test_y)``, each split shuffled."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)

    def draw(count_per_class):
        pixels, labels = [], []
        for c in range(10):
            angle = np.pi * c / 10
            freq = 0.25 + 0.05 * (c % 5)
            colour = np.array([(c * 37) % 256, (c * 91 + 60) % 256, (c * 53 + 120) % 256], np.float32) / 255
            shift = rng.uniform(0, 2 * np.pi, count_per_class)[:, None, None]
            contrast = rng.uniform(0.6, 1.0, count_per_class)[:, None, None, None]
            wave = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy)[None] + shift)
            image = 0.5 + 0.5 * contrast * wave[..., None] * colour[None, None, None]
            image = image + rng.normal(0, 0.1, (count_per_class, 32, 32, 3))
            pixels.append(np.clip(image * 255, 0, 255).astype(np.uint8))
            labels.append(np.full(count_per_class, c, np.int64))
        pixels, labels = np.concatenate(pixels), np.concatenate(labels)
        order = rng.permutation(len(labels))
        return pixels[order], labels[order]

    train_x, train_y = draw(train_per_class)
    test_x, test_y = draw(test_per_class)
    return train_x, train_y, test_x, test_y


#: The shapes of :func:`synthetic_shapes`, one a class.
SHAPES = ("disk", "ring", "square", "square outline", "triangle", "plus", "cross", "horizontal bar",
          "vertical bar", "diamond")


def synthetic_shapes(seed: int = 1, train_per_class: int = 5000, test_per_class: int = 1000):
    """A second stand-in for CIFAR-10, made differently from :func:`synthetic_cifar10`: class
    ``c`` is the shape ``SHAPES[c]`` (radius 6 to 9 pixels, centred within 3 pixels of the
    middle), in a random colour on a random background colour with a brightness gradient and
    noise.  Colour and position carry no
    class information; only the outline does.  Returns ``(train_x, train_y, test_x, test_y)``
    like :func:`synthetic_cifar10`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)

    def masks(c, n):
        cy, cx = rng.uniform(13, 19, (2, n, 1, 1))
        r = rng.uniform(6, 9, (n, 1, 1))
        dy, dx = yy[None] - cy, xx[None] - cx
        ady, adx, dist = np.abs(dy), np.abs(dx), np.hypot(dy, dx)
        w = np.maximum(1.5, r / 3)
        shape = [dist <= r, (dist <= r) & (dist >= r - w), np.maximum(ady, adx) <= r,
                 (np.maximum(ady, adx) <= r) & (np.maximum(ady, adx) >= r - w),
                 (dy <= r) & (dy >= -r) & (adx <= (dy + r) / 2), ((ady <= w / 2) | (adx <= w / 2)) & (dist <= r),
                 (np.abs(dy - dx) <= w / 1.4) | (np.abs(dy + dx) <= w / 1.4), (ady <= w / 2) & (adx <= r),
                 (adx <= w / 2) & (ady <= r), ady + adx <= r][c]
        return (shape & (np.maximum(ady, adx) <= r + 1)).astype(np.float32) if c == 6 else shape.astype(np.float32)

    def draw(count_per_class):
        pixels, labels = [], []
        for c in range(10):
            n = count_per_class
            fg, bg = rng.uniform(0, 1, (2, n, 1, 1, 3))
            slope = rng.uniform(-0.3, 0.3, (2, n, 1, 1, 1))
            gradient = slope[0] * (yy[None, ..., None] / 31 - 0.5) + slope[1] * (xx[None, ..., None] / 31 - 0.5)
            mask = masks(c, n)[..., None]
            image = np.clip(bg + gradient, 0, 1) * (1 - mask) + fg * mask + rng.normal(0, 0.08, (n, 32, 32, 3))
            pixels.append(np.clip(image * 255, 0, 255).astype(np.uint8))
            labels.append(np.full(n, c, np.int64))
        pixels, labels = np.concatenate(pixels), np.concatenate(labels)
        order = rng.permutation(len(labels))
        return pixels[order], labels[order]

    train_x, train_y = draw(train_per_class)
    test_x, test_y = draw(test_per_class)
    return train_x, train_y, test_x, test_y


#: The synthetic sets ``tinycl data synth-cifar10 --kind`` writes.
SYNTHETIC_KINDS = {"stripes": synthetic_cifar10, "shapes": synthetic_shapes}


def write_synthetic_cifar10(out_dir, seed: int = 1, train_per_class: int = 5000, test_per_class: int = 1000,
                            kind: str = "stripes"):
    """Write a synthetic set (``kind``: ``"stripes"``, :func:`synthetic_cifar10`, or ``"shapes"``,
    :func:`synthetic_shapes`) as ``data_batch_1..5`` and ``test_batch`` (the CIFAR-10 python
    format that ``--data-dir`` reads); returns the folder."""
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SYNTHETIC_KINDS)}, not {kind!r}")
    folder = pathlib.Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y, test_x, test_y = SYNTHETIC_KINDS[kind](seed, train_per_class, test_per_class)
    for i, (x, y) in enumerate(zip(np.array_split(train_x, 5), np.array_split(train_y, 5)), 1):
        write_cifar10_batch(folder / f"data_batch_{i}", x, y)
    write_cifar10_batch(folder / _CIFAR_TEST, test_x, test_y)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({b"label_names": [f"class{c}".encode() for c in range(10)], b"num_cases_per_batch": len(train_x) // 5,
                     b"num_vis": 3072}, file)
    return folder


def load_for(cfg, data_dir=None) -> Dataset:
    """The dataset matching a configuration's input shape."""
    shape = (cfg.in_h, cfg.in_w, cfg.in_c)
    if shape == (8, 8, 1):
        dataset = load_digits()
    elif shape == (32, 32, 3):
        dataset = load_cifar10(data_dir)
    else:
        raise DataError(f"no bundled dataset has samples of shape {shape}: training runs use "
                        f"8x8x1 (digits) or 32x32x3 (cifar10)")
    if cfg.classes != 10:
        raise DataError(f"the bundled datasets have 10 classes, the configuration has classes={cfg.classes}")
    return dataset
