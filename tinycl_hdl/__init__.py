"""TinyCL-HDL: an open implementation of the TinyCL continual-learning accelerator.

Layers, each a subpackage: :mod:`.spec` (what is computed), :mod:`.model` (the
golden model and the software accelerator), :mod:`.rtl` (the Amaranth design),
:mod:`.host` (the driver), :mod:`.flows` (generation, simulation, FPGA, ASIC) and
the command line (:mod:`.cli`) on top.
"""

from .spec.catalogue import PRESETS, load_config
from .spec.config import ConfigError, TinyCLConfig

__all__ = ["PRESETS", "ConfigError", "TinyCLConfig", "load_config"]
