import os
import pathlib

import numpy as np
import pytest

# YoWASP compiles each tool once per cache; the ASIC and FPGA tests share one inside build/.
os.environ.setdefault("YOWASP_CACHE_DIR", str(pathlib.Path(__file__).resolve().parent.parent / "build" / "yowasp-cache"))

from tinycl_hdl.config import TinyCLConfig

#: Small configurations that exercise non-square, odd and single-channel shapes.
SMALL_CONFIGS = {
    "7x5x2": TinyCLConfig(in_h=7, in_w=5, in_c=2, kernel=3, filters=3, classes=4, slots=8),
    "6x6x1k2": TinyCLConfig(in_h=6, in_w=6, in_c=1, kernel=2, filters=2, classes=3, slots=6),
    "5x9x3": TinyCLConfig(in_h=5, in_w=9, in_c=3, kernel=3, filters=4, classes=5, slots=10, n_pu=2),
}


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", help="also run the long soak tests")
    parser.addoption("--waves", action="store_true", help="dump waveforms from cocotb simulations")


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
