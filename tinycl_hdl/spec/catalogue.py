"""Every named configuration: the presets users build, and the sets the tests run.

One place names a configuration, so that the CLI, the tests, the docs and the
benchmarks mean the same design by the same name.  :func:`load_config` resolves
``--preset``, ``--config`` and ``--set`` into one :class:`TinyCLConfig`.
"""

import json
import pathlib
import tomllib

from .config import ConfigError, TinyCLConfig

__all__ = ["PRESETS", "load_config", "SMALL", "TOPS", "SERIAL_TOPS", "PROCESSING_UNITS", "LOSS_UNITS",
           "WINDOWS", "BOARD", "FORMAL_TOP"]

PRESETS = {
    "digits": TinyCLConfig(),
    # The learning rate that the float reference learns best with on the synthetic CIFAR-10 set
    # (docs/fixed-point.md, "Choosing the rule").
    "cifar10": TinyCLConfig(in_h=32, in_w=32, in_c=3, lr_shift=6),
}


def load_config(preset: str | None = None, config_file: str | None = None,
                overrides=()) -> TinyCLConfig:
    """Resolve ``--preset`` / ``--config`` / ``--set`` into one configuration.

    A configuration file (JSON or TOML) may hold a ``preset`` key naming the
    preset it starts from; its other keys override that preset.
    """
    if preset is not None and config_file is not None:
        raise ConfigError("give either a preset or a configuration file, not both")
    if config_file is not None:
        path = pathlib.Path(config_file)
        try:
            text = path.read_text()
        except OSError as error:
            raise ConfigError(f"cannot read configuration file {str(path)!r}: {error.strerror}") from None
        try:
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"configuration file {str(path)!r} is not valid: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"configuration file {str(path)!r} must hold a table of keys")
        base_name = data.pop("preset", "digits")
        if base_name not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, not {base_name!r}")
        config = TinyCLConfig.from_dict(data, PRESETS[base_name])
    else:
        name = preset or "digits"
        if name not in PRESETS:
            raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, not {name!r}")
        config = PRESETS[name]
    return config.with_overrides(overrides)


# -- the sets the tests run ------------------------------------------------------------------

#: Small shapes (non-square, odd, single-channel) for the golden model and the generators.
SMALL = {
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=3, classes=4, slots=8),
    "6x6x1k2": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6),
    "5x9x3": TinyCLConfig(in_h=5, in_w=9, in_c=3, kernel=3, filters=4, classes=5, slots=10, n_pu=2),
}

#: Lane-array tops run end to end (several units, raster order, another fixed-point format, the
#: other update rounding and pixel offset).
TOPS = {
    "digits-small": TinyCLConfig(slots=12, filters=4, classes=4),
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=4, classes=4, slots=8, n_pu=2),
    "6x6x1-k2-raster": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6,
                                    window="raster", lr_shift=3, update_rounding="nearest", pixel_offset=0),
    "5x9x3-q3.12": TinyCLConfig(in_h=5, in_w=9, in_c=3, kernel=3, filters=3, classes=5, slots=10, n_pu=3,
                                frac_bits=12, lr_shift=5),
}

#: Serial-datapath tops.  Six filters and four classes make the parameter memory's regions
#: wider than the class index, and clearing them (4 x 8 words) counts past the slots.
SERIAL_TOPS = {
    "digits-small-serial": TinyCLConfig(slots=8, filters=6, classes=4, datapath="serial"),
    "6x6x1-k2-raster-serial": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6,
                                           window="raster", lr_shift=3, datapath="serial", update_rounding="nearest",
                                           pixel_offset=0),
    "7x5x2-serial": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=4, classes=4, slots=8,
                                 datapath="serial"),
}

#: Processing-unit block tests: the kernel sizes 2, 3, 5, three fixed-point formats, both update roundings.
PROCESSING_UNITS = {
    "digits": TinyCLConfig(filters=3, classes=4),
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=3, classes=4, slots=8),
    "6x6x1-k2-q12.6": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6,
                                   data_width=12, frac_bits=6, acc_width=30, lr_shift=3, update_rounding="nearest"),
    "6x7x1-k5-q3.12": TinyCLConfig(in_h=6, in_w=7, in_c=1, kernel=5, filters=2, classes=3, slots=6,
                                   frac_bits=12, lr_shift=6),
}

#: Loss-gradient block tests.  Q2.21 and Q9.18 have the ``frac_bits`` at which the two
#: rounded exp2 tables multiply to 2.0 or just above.
LOSS_UNITS = {
    "q5.10-10": TinyCLConfig(),
    "q3.12-4": TinyCLConfig(classes=4, slots=8, frac_bits=12),
    "q7.8-3": TinyCLConfig(classes=3, slots=6, frac_bits=8),
    "q5.6-12b-5": TinyCLConfig(classes=5, slots=10, data_width=12, frac_bits=6, acc_width=33, lr_shift=3),
    "q2.21-24b-4": TinyCLConfig(classes=4, slots=8, data_width=24, frac_bits=21, acc_width=58),
    "q9.18-28b-3": TinyCLConfig(classes=3, slots=6, data_width=28, frac_bits=18, acc_width=62, in_h=4, in_w=4),
}

#: Sliding-window block tests: kernels 2, 3, 4 on square, tall and wide inputs.
WINDOWS = {
    "digits": TinyCLConfig(slots=20),
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=3, classes=4, slots=8),
    "6x6x1-k2": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6),
    "9x6x3-k4": TinyCLConfig(in_h=9, in_w=6, in_c=3, kernel=4, filters=2, classes=3, slots=5),
    "3x8x1-k3": TinyCLConfig(in_h=3, in_w=8, in_c=1, kernel=3, filters=2, classes=2, slots=4),
}

#: The board top (UART bridge) in simulation.
BOARD = TinyCLConfig(slots=6, filters=2, classes=3)

#: The whole top that ``make formal`` and the formal tests check: 3x3x1, K=2, Q3.4.
FORMAL_TOP = TinyCLConfig(in_h=3, in_w=3, kernel=2, filters=1, classes=2, slots=2, data_width=8, frac_bits=4)
