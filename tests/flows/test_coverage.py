"""Coverage of the end-to-end runs (tinycl_hdl.flows.coverage): every state of the control
unit, every command and every error code is reached on both datapaths, read from
Verilator's coverage data."""

import pytest

from tinycl_hdl.flows.coverage import PREFIX, control_states, observers, run_coverage, summarise
from tinycl_hdl.spec.catalogue import SERIAL_TOPS, TOPS
from tinycl_hdl.spec.regmap import Command, ErrorCode

RUNS = {"array": TOPS["6x6x1-k2-raster"], "serial": SERIAL_TOPS["6x6x1-k2-raster-serial"]}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_coverage(RUNS, tmp_path_factory.mktemp("coverage"))


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_state_command_and_error_code_is_reached(results, name):
    result = results[name]
    # Observed: every state the FSM declares, every command and every error code.
    states = control_states(RUNS[name])
    want = ({f"{PREFIX}state_{s}" for s in states} | {f"{PREFIX}command_{c.name}" for c in Command if c}
            | {f"{PREFIX}error_{e.name}" for e in ErrorCode})
    assert set(result["reached"]) == want
    missed = sorted(obs for obs, hit in result["reached"].items() if not hit)
    assert not missed, f"not reached on the {name} datapath: {missed}"
    assert result["refused"] == ["BAD_LABEL", "BAD_EPOCHS", "BAD_COMMAND", "BUSY", "SLVERR"]
    # The line and toggle figures come from the same data; most of the design runs.
    assert result["line_hit"] > 0.9 * result["line_points"] and result["toggle_hit"] > 0.7 * result["toggle_points"]


def test_the_two_datapaths_have_their_own_states():
    array, serial = (set(control_states(cfg)) for cfg in RUNS.values())
    assert {"IDLE", "INS_LOOKUP", "ARGMAX"} <= array & serial and array != serial
    assert len(observers(RUNS["array"])) == len(array) + 6 + len(ErrorCode)


def test_an_observer_never_raised_counts_as_not_reached():
    sep, field = "\x01", "\x02"

    def point(signal, count):
        key = sep.join(f"{k}{field}{v}" for k, v in (("f", "tinycl_native.v"), ("l", "9"), ("page", "v_toggle/tinycl_native"),
                                                    ("o", signal), ("h", "tinycl.tinycl_native")))
        return f"C '{sep}{key}' {count}\n"
    text = point(f"{PREFIX}error_BUSY:0->1", 0) + point(f"{PREFIX}error_NONE:0->1", 3) + point("other:0->1", 0)
    summary = summarise(text)
    assert summary["reached"] == {f"{PREFIX}error_BUSY": False, f"{PREFIX}error_NONE": True}
    assert summary["toggle_points"] == 1 and summary["toggle_hit"] == 0
