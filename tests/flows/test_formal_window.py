"""The sliding-window generator's bounded proof (tinycl_hdl.flows.formal_window)."""

import pathlib

import pytest

from tinycl_hdl.flows import formal_window
from tinycl_hdl.flows.formal_window import SHAPES, prove_window
from tinycl_hdl.rtl.window import SnakeWindow


def test_the_window_generator_is_proved_on_a_shape(tmp_path):
    passed, summary = prove_window(SHAPES[0], tmp_path / "bmc")
    assert passed, summary
    passed, summary = prove_window(SHAPES[0], tmp_path / "cover", mode="cover")
    assert passed, summary


def test_the_proof_fails_for_a_generator_of_the_other_order(tmp_path):
    """The properties come from the configuration: a raster generator under the snake
    configuration's properties reads more pixels than the snake formula, and fails."""
    snake = SHAPES[0]
    raster = SnakeWindow(SHAPES[1])
    assert snake.window == "snake" and SHAPES[1].window == "raster"
    passed, summary = prove_window(snake, tmp_path, generator=raster)
    source = pathlib.Path(formal_window.__file__)
    line = next(n for n, text in enumerate(source.read_text().splitlines(), 1)
                if "pixel reads other than the formula" in text)
    assert not passed and "failed assertion harness._witness_" in summary
    assert f"formal_window.py:{line} " in summary, summary
