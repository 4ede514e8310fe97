"""AXI4-Lite traffic shaping and checking for the top's testbenches.

:func:`stall_every_channel` gives each of the master's five channels its own random
pause generator (cocotbext-axi idle and back-pressure inserters), so AW, W and AR
arrive in every relative order, the same cycle included, and B and R are taken late.
:class:`BusMonitor` watches the pins, checks the slave's side of the handshakes, and
holds the slave to its wait bound: between the first cycle of a read's ARVALID and its
R handshake at most :attr:`~tinycl_hdl.rtl.axi.AxiLiteSlave.reads_wait_for_writes`
write responses are given.  It also counts the orderings it saw, so a test can show that
its traffic reached them.
"""

import itertools

import cocotb
from cocotb.triggers import FallingEdge

from tinycl_hdl.rtl.axi import OKAY, SLVERR, AxiLiteSlave

CHANNELS = ("aw", "w", "b", "ar", "r")


def random_pauses(rng, busy: float):
    """An endless pause pattern: paused with probability ``busy``, in runs of 1 to 4 cycles."""
    while True:
        paused = bool(rng.random() < busy)
        for _ in range(int(rng.integers(1, 5))):
            yield paused


def stall_every_channel(master, rng, busy: float = 0.4):
    """Random idle cycles on AW, W and AR, and back-pressure on B and R, each channel with
    its own pattern (``master``: a cocotbext-axi ``AxiLiteMaster``)."""
    interfaces = {"aw": master.write_if, "w": master.write_if, "b": master.write_if,
                  "ar": master.read_if, "r": master.read_if}
    for name in CHANNELS:
        channel = getattr(interfaces[name], f"{name}_channel")
        channel.set_pause_generator(random_pauses(rng, busy))


def clear_stalls(master):
    for name, interface in itertools.product(CHANNELS, (master.write_if, master.read_if)):
        channel = getattr(interface, f"{name}_channel", None)
        if channel is not None:
            channel.clear_pause_generator()


class BusMonitor:
    """Samples the ``s_axil_*`` pins of ``dut`` at every falling edge (where the testbenches
    keep inputs stable) and checks what the slave drives."""

    def __init__(self, dut, prefix: str = "s_axil"):
        self.dut, self.prefix = dut, prefix
        self.cycle = 0
        self.errors = []
        self.seen = dict.fromkeys(("aw_ar_same_cycle", "aw_before_w", "w_before_aw", "aw_w_same_cycle",
                                   "b_stalled", "r_stalled", "read_behind_write"), 0)
        self.writes_behind = []            # write responses each read waited through
        self.read_cycles = []              # ARVALID's first cycle to R handshake, per read
        self._pending_reads = []           # (ARVALID's first cycle, write responses so far)
        self._ar_was_valid = False
        self._responses = 0
        self._starts = {"aw": [], "w": []}  # first VALID cycle of each write's AW and W
        self._was_valid = {"aw": False, "w": False}
        self._held = {}
        cocotb.start_soon(self._run())

    def _pin(self, name):
        return getattr(self.dut, f"{self.prefix}_{name}").value

    def _bits(self, *names):
        return [int(self._pin(n)) if self._pin(n).is_resolvable else 0 for n in names]

    def _check_held(self, channel, valid, ready, payload):
        """A slave VALID not taken stays up with the same payload the next cycle."""
        before = self._held.get(channel)
        if before is not None and (not valid or before != payload):
            self.errors.append(f"cycle {self.cycle}: {channel} dropped or changed before READY")
        self._held[channel] = payload if valid and not ready else None

    async def _run(self):
        while True:
            await FallingEdge(self.dut.clk)
            self.cycle += 1
            self._sample()

    def _order_write(self, awv, aw_hs, wv, w_hs):
        """Classify each write by the first VALID cycles of its AW and its W."""
        for name, valid, handshake in (("aw", awv, aw_hs), ("w", wv, w_hs)):
            if valid and not self._was_valid[name]:
                self._starts[name].append(self.cycle)
            self._was_valid[name] = valid and not handshake
        if w_hs:
            aw, w = self._starts["aw"].pop(0), self._starts["w"].pop(0)
            self.seen["aw_before_w" if aw < w else "w_before_aw" if w < aw else "aw_w_same_cycle"] += 1

    def _sample(self):
        awv, awr, wv, wr, bv, br, arv, arr, rv, rr = self._bits(
            "awvalid", "awready", "wvalid", "wready", "bvalid", "bready", "arvalid", "arready", "rvalid", "rready")
        bresp, rresp, rdata = self._bits("bresp", "rresp", "rdata")
        self._check_held("B", bv, br, (bresp,))
        self._check_held("R", rv, rr, (rresp, rdata))
        for valid, resp, channel in ((bv, bresp, "B"), (rv, rresp, "R")):
            if valid and resp not in (OKAY, SLVERR):
                self.errors.append(f"cycle {self.cycle}: {channel} response {resp:#b}")
        seen = self.seen
        seen["aw_ar_same_cycle"] += awv and arv
        seen["b_stalled"] += bv and not br
        seen["r_stalled"] += rv and not rr
        self._order_write(awv, awv and awr, wv, wv and wr)
        if bv and br:
            self._responses += 1
        if rv and rr:
            if not self._pending_reads:
                self.errors.append(f"cycle {self.cycle}: R without a read")
            else:
                start, responses = self._pending_reads.pop(0)
                behind = self._responses - responses
                self.writes_behind.append(behind)
                self.read_cycles.append(self.cycle - start)
                seen["read_behind_write"] += behind > 0
                if behind > AxiLiteSlave.reads_wait_for_writes:
                    self.errors.append(f"cycle {self.cycle}: a read waited behind {behind} writes")
        if arv and not self._ar_was_valid:
            self._pending_reads.append((self.cycle, self._responses))
        self._ar_was_valid = arv and not arr

    def check(self):
        assert not self.errors, self.errors[:5]


class PinMaster:
    """Drives the ``s_axil_*`` pins directly, for orderings a bus model does not pick on its
    own (AW and AR in one cycle with W later, say).  Inputs change at falling edges; a
    handshake is seen a moment later and completes at the next rising edge."""

    def __init__(self, dut, prefix: str = "s_axil"):
        self.dut, self.prefix = dut, prefix
        for name in ("awaddr", "awprot", "awvalid", "wdata", "wvalid", "bready", "araddr", "arprot", "arvalid",
                     "rready"):
            self._set(name, 0)
        self._set("wstrb", 0xF)

    def _set(self, name, value):
        getattr(self.dut, f"{self.prefix}_{name}").value = value

    def _get(self, name) -> int:
        return int(getattr(self.dut, f"{self.prefix}_{name}").value)

    async def cycles(self, script, limit: int = 500) -> dict:
        """Run ``script``: ``{cycle: {pin: value}}`` applied at that falling edge (counted from
        the call), with ``bready`` and ``rready`` high; a VALID set by the script drops after
        its handshake.  Returns the cycles of the handshakes and the responses."""
        from cocotb.triggers import Timer
        seen = {"aw": None, "w": None, "ar": None, "b": None, "r": None, "bresp": None, "rresp": None,
                "rdata": None}
        self._set("bready", 1)
        self._set("rready", 1)
        for cycle in range(limit):
            await FallingEdge(self.dut.clk)
            for name, value in script.get(cycle, {}).items():
                self._set(name, value)
            await Timer(1, "ns")
            for ch in ("aw", "w", "ar"):
                if self._get(f"{ch}valid") and self._get(f"{ch}ready"):
                    seen[ch] = cycle
                    script.setdefault(cycle + 1, {})[f"{ch}valid"] = 0
            if self._get("bvalid") and seen["b"] is None:
                seen["b"], seen["bresp"] = cycle, self._get("bresp")
            if self._get("rvalid") and seen["r"] is None:
                seen["r"], seen["rresp"], seen["rdata"] = cycle, self._get("rresp"), self._get("rdata")
            wanted = [k for k in ("aw", "w", "ar") if any(f"{k}valid" in s for s in script.values())]
            if all(seen[k] is not None for k in wanted) and (seen["b"] is not None or "aw" not in wanted) \
                    and (seen["r"] is not None or "ar" not in wanted):
                await FallingEdge(self.dut.clk)
                return seen
        raise AssertionError(f"handshakes incomplete after {limit} cycles: {seen}")

    async def read(self, addr: int) -> tuple:
        seen = await self.cycles({0: {"araddr": addr, "arvalid": 1}})
        return seen["rresp"], seen["rdata"]

    async def write(self, addr: int, data: int) -> int:
        seen = await self.cycles({0: {"awaddr": addr, "awvalid": 1, "wdata": data, "wvalid": 1}})
        return seen["bresp"]
