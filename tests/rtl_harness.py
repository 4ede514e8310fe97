"""Pytest side of the cocotb testbenches: elaborate, build once, run.

Every (block, configuration, simulator) gets its own build folder under
``sim_build/``, keyed by a hash of the configuration, so a Verilator model is
compiled once and reused by later runs.
"""

import hashlib
import json
import pathlib

from tinycl_hdl.generate import module_files

from tinycl_hdl import sim
from tinycl_hdl.config import TinyCLConfig

REPO = pathlib.Path(__file__).resolve().parent.parent
SIM_BUILD = REPO / "sim_build"


def config_key(cfg: TinyCLConfig) -> str:
    return hashlib.sha1(cfg.to_json().encode()).hexdigest()[:10]


def run_block(toplevel: str, cfg: TinyCLConfig, simulator: str, test_module: str,
              params: dict | None = None, waves: bool = False, sram_blackbox: bool = False):
    """Generate ``toplevel`` (a :data:`tinycl_hdl.generate.MODULES` name) for ``cfg``,
    build it once per configuration and simulator, and run the cocotb ``test_module``.

    With ``sram_blackbox`` the memories are SRAM macros bound to their behavioural models.
    """
    variant = "-blackbox" if sram_blackbox else ""
    build_dir = SIM_BUILD / toplevel / f"{config_key(cfg)}{variant}-{simulator}"
    sources = []
    for name, text in module_files(cfg, toplevel, sram_blackbox).items():
        sources.append(build_dir / name)
        sim.write_if_changed(sources[-1], text)
    env = {"TINYCL_CONFIG": cfg.to_json(), "TINYCL_TB_PARAMS": json.dumps(params or {})}
    sim.run(simulator, sources, toplevel, test_module, build_dir, env=env, waves=waves)
