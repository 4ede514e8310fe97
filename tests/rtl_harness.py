"""Pytest side of the cocotb testbenches: elaborate, build once, run.

Every (block, configuration, simulator) gets its own build folder under
``sim_build/``, keyed by a hash of the configuration, so a Verilator model is
compiled once and reused by later runs.
"""

import hashlib
import json
import pathlib

from tinycl_hdl.rtl.verilog import convert

from tinycl_hdl import sim
from tinycl_hdl.config import TinyCLConfig

REPO = pathlib.Path(__file__).resolve().parent.parent
SIM_BUILD = REPO / "sim_build"


def config_key(cfg: TinyCLConfig) -> str:
    return hashlib.sha1(cfg.to_json().encode()).hexdigest()[:10]


def run_block(block: str, component, toplevel: str, cfg: TinyCLConfig, simulator: str, test_module: str,
              params: dict | None = None, waves: bool = False):
    build_dir = SIM_BUILD / block / f"{config_key(cfg)}-{simulator}"
    source = build_dir / f"{toplevel}.v"
    sim.write_if_changed(source, convert(component, toplevel))
    env = {"TINYCL_CONFIG": cfg.to_json(), "TINYCL_TB_PARAMS": json.dumps(params or {})}
    sim.run(simulator, [source], toplevel, test_module, build_dir, env=env, waves=waves)
