"""TinyCL-HDL: an open implementation of the TinyCL continual-learning accelerator."""

from .config import PRESETS, ConfigError, TinyCLConfig, load_config

__all__ = ["PRESETS", "ConfigError", "TinyCLConfig", "load_config"]
