"""The AXI4-Lite slave under SymbiYosys (tinycl_hdl/formal.py): k-induction of the bare
slave, its covers, a bounded check of a small whole top, and the absence of
combinational paths through the bus port.

The properties come from the AXI specification; the last test shows they are not
vacuous by finding the address mix-up the slave once had (AW and AR in one cycle,
W later, the write landing at the read's address).
"""

import pathlib

import pytest
from amaranth.hdl import Assume, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tinycl_hdl.flows import formal
from tinycl_hdl.spec.catalogue import FORMAL_TOP, SERIAL_TOPS, load_config
from tinycl_hdl.rtl.axi import AxiLiteSlave, axi_lite_members
from tinycl_hdl.rtl.top import TinyCL


@pytest.mark.parametrize("task", ["safety", "bound", "cover", "bound_cover"])
def test_bare_slave(task, tmp_path):
    """Proofs by k-induction; covers all reached (``bound_cover``: a read waits the whole
    ``READ_WAIT_CYCLES``, so the bound is tight)."""
    cover = task.endswith("cover")
    harness = formal.slave_harness(8, responsive=task.startswith("bound"))
    proc = formal.run_sby(harness, tmp_path, mode="cover" if cover else "prove", depth=20 if cover else 8, name=task)
    assert proc.returncode == 0, formal._summary(proc.stdout)
    assert ("reached cover statement" in proc.stdout and "unreached" not in proc.stdout) if cover else \
        ("successful proof by k-induction" in proc.stdout)


def test_the_wait_bound_is_the_least_that_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(formal, "READ_WAIT_CYCLES", formal.READ_WAIT_CYCLES - 1)
    proc = formal.run_sby(formal.slave_harness(8, responsive=True), tmp_path, mode="prove", depth=8, name="less")
    assert proc.returncode != 0 and "BMC failed" in proc.stdout, formal._summary(proc.stdout)


class _MixedUpSlave(wiring.Component):
    """The old arbitration: an AW taken while W is low, and an AR taken in the same cycle,
    leaves the read's address as the pending write's."""

    def __init__(self):
        members = axi_lite_members(8)
        members.update({"req_valid": Out(1), "req_write": Out(1), "req_addr": Out(8), "req_wdata": Out(32),
                        "req_wstrb": Out(4), "resp_ready": In(1), "resp_rdata": In(32), "resp_error": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        have_aw = Signal()
        m.d.comb += [self.req_wdata.eq(self.s_axil_wdata), self.req_wstrb.eq(self.s_axil_wstrb)]
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.s_axil_awready.eq(~have_aw)
                with m.If(self.s_axil_awvalid & ~have_aw):
                    m.d.sync += [have_aw.eq(1), self.req_addr.eq(self.s_axil_awaddr)]
                with m.If((have_aw | self.s_axil_awvalid) & self.s_axil_wvalid):
                    m.d.sync += [self.req_write.eq(1), have_aw.eq(0)]
                    m.next = "REQUEST"
                with m.Elif(~have_aw & self.s_axil_arvalid):
                    m.d.comb += self.s_axil_arready.eq(1)
                    m.d.sync += [self.req_write.eq(0), self.req_addr.eq(self.s_axil_araddr)]
                    m.next = "REQUEST"
            with m.State("REQUEST"):
                m.d.comb += self.req_valid.eq(1)
                with m.If(self.resp_ready):
                    with m.If(self.req_write):
                        m.d.comb += self.s_axil_wready.eq(1)
                        m.d.sync += self.s_axil_bresp.eq(Mux(self.resp_error, 2, 0))
                        m.next = "B"
                    with m.Else():
                        m.d.sync += [self.s_axil_rresp.eq(Mux(self.resp_error, 2, 0)),
                                     self.s_axil_rdata.eq(self.resp_rdata)]
                        m.next = "R"
            with m.State("B"):
                m.d.comb += self.s_axil_bvalid.eq(1)
                with m.If(self.s_axil_bready):
                    m.next = "IDLE"
            with m.State("R"):
                m.d.comb += self.s_axil_rvalid.eq(1)
                with m.If(self.s_axil_rready):
                    m.next = "IDLE"
        return m


class _MixedUpHarness(formal._SlaveHarness):
    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = _MixedUpSlave()
        for name in self.signature.members:
            m.d.comb += getattr(dut, name).eq(getattr(self, name))
        m.d.comb += Assume(~ResetSignal())
        formal.bus_properties(m, dut, 8, req=dut)
        return m


def test_the_properties_find_the_address_mix_up(tmp_path):
    proc = formal.run_sby(_MixedUpHarness(8, False), tmp_path, mode="bmc", depth=10, name="mixed_up")
    assert proc.returncode != 0
    # SymbiYosys names a failed assertion by its source line: the Assert( call, a line above
    # its message.
    source = pathlib.Path(formal.__file__).read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "write request not at its own AW address" in text)
    failed = {f"formal.py:{n}" for n in (line - 1, line)}
    assert any(f"Assert failed in harness: " in text and any(f in text for f in failed)
               for text in proc.stdout.splitlines()), formal._summary(proc.stdout)


def test_small_top_bounded_check(tmp_path):
    cfg = FORMAL_TOP
    passed, summary = formal.check_top(TinyCL(cfg), tmp_path, depth=16)
    assert passed, summary


@pytest.mark.parametrize("design", ["slave", "digits", "digits-small-serial"])
def test_no_combinational_path_through_the_bus_port(design, tmp_path):
    """AXI: no combinational path from the manager's signals to the subordinate's."""
    cfg = SERIAL_TOPS.get(design) or (load_config(design) if design != "slave" else None)
    component = AxiLiteSlave(8) if cfg is None else TinyCL(cfg)
    assert formal.combinational_paths(component, tmp_path) == []


def test_the_path_check_finds_a_combinational_ready(tmp_path):
    """``_MixedUpSlave`` raises AWREADY and ARREADY from AWVALID and ARVALID in one cycle."""
    paths = formal.combinational_paths(_MixedUpSlave(), tmp_path)
    assert {"top/s_axil_awvalid", "top/s_axil_arvalid"} <= set(paths), paths
