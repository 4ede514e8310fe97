import os
import pathlib

import numpy as np
import pytest

# A checkout keeps its caches inside it: YoWASP compiles each tool once per cache (the ASIC and
# FPGA tests share one in build/), and the simulation builds go to sim_build/.
_ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault("YOWASP_CACHE_DIR", str(_ROOT / "build" / "yowasp-cache"))
os.environ.setdefault("TINYCL_BUILD_DIR", str(_ROOT / "sim_build"))

from tinycl_hdl.spec.catalogue import SMALL

#: Small configurations that exercise non-square, odd and single-channel shapes.
SMALL_CONFIGS = SMALL


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", help="also run the long soak tests")
    parser.addoption("--waves", action="store_true", help="dump waveforms from cocotb simulations")
    parser.addoption("--gate-level", default="generic:icarus",
                     help="netlists and simulators of tests/flows/test_gatelevel.py, as target:sim,... or 'all' "
                          "(make test-gl)")
    _add_random_options(parser)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=sorted(SMALL_CONFIGS))
def small_cfg(request):
    return SMALL_CONFIGS[request.param]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _add_random_options(parser):
    group = parser.getgroup("random configurations (tests/rtl/test_random_configs.py)")
    group.addoption("--random-seed", type=int, default=None,
                    help="seed of the random configurations (default: drawn afresh, printed in the header)")
    group.addoption("--random-configs", type=int, default=12, help="random configurations on Icarus")
    group.addoption("--random-verilator", type=int, default=3, help="random configurations on Verilator")
    group.addoption("--random-models", type=int, default=100,
                    help="random configurations for the golden model against the float reference")


def pytest_configure(config):
    # One seed for the controller and every xdist worker: the workers inherit the variable.
    if config.option.random_seed is None:
        config.option.random_seed = int(os.environ.setdefault("TINYCL_RANDOM_SEED",
                                                              str(int.from_bytes(os.urandom(4), "little") >> 1)))


def pytest_report_header(config):
    return f"random configurations: --random-seed {config.option.random_seed}"


@pytest.fixture
def random_seed(request):
    return request.config.option.random_seed
