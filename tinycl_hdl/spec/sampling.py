"""Random valid configurations, for regression over everything :class:`TinyCLConfig` accepts.

:func:`random_config` draws every field over its whole accepted range (widths, fraction
bits, accumulator width from the smallest accepted up to 64, learning-rate shift, pixel
offset, update rounding, window order, datapath, processing units among the divisors of
``filters``), and the shape
fields within a size limit so that one end-to-end simulation takes seconds: non-square
inputs, every kernel size up to the input's side, one to four channels, classes from 2,
slots from ``classes``.  A draw that :class:`TinyCLConfig` rejects (an accumulator wider
than 64 bits would be needed, say) is drawn again, so every configuration returned is
one the generator promises to build exactly.

:func:`reproduction` gives the one-line ``tinycl verify`` command that reruns a failure.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import ConfigError, TinyCLConfig

__all__ = ["SizeLimits", "RTL_LIMITS", "MODEL_LIMITS", "random_config", "set_arguments", "reproduction",
           "verify_samples"]


@dataclasses.dataclass(frozen=True)
class SizeLimits:
    """Largest shape fields :func:`random_config` draws."""
    side: int          # in_h and in_w
    filters: int
    classes: int
    extra_slots: int   # slots - classes


#: For end-to-end RTL simulations (seconds each on Icarus).
RTL_LIMITS = SizeLimits(side=8, filters=6, classes=6, extra_slots=8)
#: For the golden model against the float reference (numpy only).
MODEL_LIMITS = SizeLimits(side=14, filters=8, classes=12, extra_slots=40)


def _draw(rng, limits: SizeLimits) -> TinyCLConfig | None:
    def between(lo, hi):
        return int(rng.integers(lo, hi + 1))

    in_h, in_w = between(1, limits.side), between(1, limits.side)
    kernel = between(1, min(in_h, in_w))
    filters = between(1, limits.filters)
    datapath = str(rng.choice(["array", "serial"]))
    n_pu = 1 if datapath == "serial" else int(rng.choice([d for d in range(1, filters + 1) if filters % d == 0]))
    classes = between(2, limits.classes)
    data_width = between(4, 31)
    frac_bits = between(1, data_width - (2 if datapath == "serial" else 1))
    fields = dict(in_h=in_h, in_w=in_w, in_c=between(1, 4), kernel=kernel, filters=filters, classes=classes,
                  slots=classes + between(0, limits.extra_slots), data_width=data_width, frac_bits=frac_bits,
                  n_pu=n_pu, window=str(rng.choice(["snake", "raster"])), datapath=datapath,
                  update_rounding=str(rng.choice(["nearest", "stochastic"])),
                  pixel_offset=int(rng.choice([0, 128, between(1, 255)])),
                  lr_shift=between(0, data_width), epochs=1, seed=between(0, (1 << 31) - 1))
    try:
        widest = TinyCLConfig(**fields, acc_width=64)
    except ConfigError:
        return None                      # even 64 bits are too narrow for this shape
    # The narrowest accepted accumulator half the time (the tightest case), else any wider one.
    required = widest.required_acc_width
    return dataclasses.replace(widest, acc_width=required if rng.random() < 0.5 else between(required, 64))


def random_config(rng: np.random.Generator, limits: SizeLimits = RTL_LIMITS) -> TinyCLConfig:
    """A configuration :class:`TinyCLConfig` accepts, every field drawn from ``rng``."""
    for _ in range(1000):
        cfg = _draw(rng, limits)
        if cfg is not None:
            return cfg
    raise RuntimeError("no valid configuration in 1000 draws")


def set_arguments(cfg: TinyCLConfig, skip=("seed", "epochs")) -> list:
    """``--set key=value`` arguments that rebuild ``cfg`` from the defaults."""
    base = TinyCLConfig()
    args = []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if field.name not in skip and value != getattr(base, field.name):
            args += ["--set", f"{field.name}={value}"]
    return args


def verify_samples(cfg: TinyCLConfig) -> int:
    """Inserts that fill the memory and then evict: ``slots + 2 * classes``."""
    return cfg.slots + 2 * cfg.classes


def reproduction(cfg: TinyCLConfig, sim: str, samples: int, traffic: str = "stress") -> str:
    """The ``tinycl verify`` command line that reruns ``cfg`` (its LFSR seed is ``--seed``)."""
    return " ".join(["tinycl", "verify", "--sim", sim, "--samples", str(samples), "--seed", str(cfg.seed),
                     "--traffic", traffic, *set_arguments(cfg)])
