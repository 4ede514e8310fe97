"""The learner's state through the host port: weight and bias writes, slot pixel reads.

A restorable register map (:func:`~tinycl_hdl.spec.regmap.restorable`) lets the host
save the learner and put it back.  :class:`StatePort` adds to the lane array's host
port what that needs beyond the reads it already serves: the ``CONV_W`` and
``DENSE_W`` windows and the ``CONV_B``/``DENSE_B`` registers become writable while the
accelerator is idle, and the ``SAMPLES`` window reads a GDumb slot's pixels.  The
LFSR register is the control unit's (:meth:`~tinycl_hdl.rtl.controller.Controller.write_request`).

A weight write takes the path of a weight initialisation: one lane of one unit's word,
written a cycle after the request with that lane's write enable.  A slot pixel is
read one channel at a time from the sample bank that holds it, two cycles a channel.
"""

from amaranth.hdl import Array, Cat, Const, Mux, Signal

from ..spec.config import TinyCLConfig
from .arith import index, less_than, times_constant
from .memory import sample_layout

__all__ = ["StatePort"]


class StatePort:
    """Host writes of the weights and biases, host reads of the slots' pixels.

    Parameters
    ----------
    cfg : TinyCLConfig
    conv_w, dense_w : list of Sram
        Each processing unit's weight memories (words of ``lanes`` weights).
    conv_b, dense_b : Array of Signal
        The bias registers.
    lanes : int
        Weights per memory word.
    """

    def __init__(self, cfg: TinyCLConfig, conv_w, dense_w, conv_b, dense_b, lanes: int):
        self.cfg, self.conv_w, self.dense_w = cfg, conv_w, dense_w
        self.conv_b, self.dense_b, self.lanes = conv_b, dense_b, lanes

    # -- weights and biases ---------------------------------------------------------------

    def _bias_decode(self, m, addr, reg, count):
        """Cycle 1: ``addr`` is one of ``count`` bias registers from ``reg`` (aligned so
        that the index is an address field), and which."""
        bits = max(1, (count - 1).bit_length())
        assert reg % (4 << bits) == 0, "a bias block must be aligned to its size"
        hit, which = Signal(name=f"to_bias_{reg:x}"), Signal(bits, name=f"bias_{reg:x}_index")
        m.d.sync += [hit.eq((addr.shift_right(2 + bits) == reg >> (2 + bits)) & (addr[:2] == 0)
                            & less_than(addr[2:2 + bits], count)),
                     which.eq(addr[2:2 + bits])]
        return hit, which

    def writes(self, m, ctl, host, word_addrs):
        """``datapath_writes(m)`` for the host port: the weight windows and bias registers.
        ``word_addrs`` are the lane array's decoded ``(conv addr, lane, unit, dense addr,
        lane, unit)`` of the request (cycle 2)."""
        cfg, dw, NPU, L = self.cfg, self.cfg.data_width, self.cfg.n_pu, self.lanes
        cw_addr_q, cw_lane_q, cw_p, dw_addr_q, dw_lane_q, dw_p = word_addrs
        regs = ctl.regmap.by_name
        to_cb, cb_i = self._bias_decode(m, host.addr, regs["CONV_B0"].offset, cfg.filters)
        to_db, db_i = self._bias_decode(m, host.addr, regs["DENSE_B0"].offset, cfg.classes)
        # A weight is written a cycle after its request, like an initial weight.
        w_valid, w_dense = Signal(name="host_w_valid"), Signal(name="host_w_dense")
        w_p, w_lane = Signal(index(NPU), name="host_w_unit"), Signal(index(L), name="host_w_lane")
        w_addr = Signal(max(len(cw_addr_q), len(dw_addr_q)), name="host_w_addr")
        w_value = Signal(dw, name="host_w_value")
        m.d.sync += w_valid.eq(0)
        with m.If(w_valid):
            for p in range(NPU):
                with m.If(w_p == p):
                    for target, dense in ((self.conv_w[p], 0), (self.dense_w[p], 1)):
                        with m.If(w_dense == dense):
                            m.d.comb += [target.w_en.eq(Const(1, L) << w_lane), target.w_addr.eq(w_addr),
                                         target.w_data.eq(Cat(*[w_value] * L))]
        flags, busy, value = host.to_reg, ctl.host_busy, host.value
        ok = ~busy & flags["data_ok"]

        def datapath_writes(m):
            with m.Elif(host.to_cw | host.to_dw):
                m.d.comb += [host.done_resp.eq(1), host.error_resp.eq(~ok)]
                with m.If(ok):
                    dense = host.to_dw
                    m.d.sync += [w_valid.eq(1), w_dense.eq(dense), w_value.eq(value[:dw]),
                                 w_p.eq(Mux(dense, dw_p, cw_p)), w_lane.eq(Mux(dense, dw_lane_q, cw_lane_q)),
                                 w_addr.eq(Mux(dense, dw_addr_q, cw_addr_q))]
            with m.Elif(to_cb | to_db):
                m.d.comb += [host.done_resp.eq(1), host.error_resp.eq(~ok)]
                with m.If(ok & to_cb):
                    m.d.sync += self.conv_b[cb_i].eq(value[:dw])
                with m.If(ok & to_db):
                    m.d.sync += self.dense_b[db_i].eq(value[:dw])
        return datapath_writes

    # -- slot pixels ----------------------------------------------------------------------

    def sample_reads(self, m, ctl, host, samples):
        """The ``SAMPLES`` window: returns ``(read_branch(m), states(m))``.  ``read_branch``
        continues the read request's ``If``/``Elif`` chain; ``states`` adds ``SAMPLE_READ``,
        ``SAMPLE_WAIT1`` .. (a registered memory's later cycles) and ``SAMPLE_BYTE`` to the host FSM."""
        cfg, lay = self.cfg, sample_layout(self.cfg)
        K, smp = cfg.kernel, host.smp
        addr_w = samples.addr_width
        # Cycle 1: the slot's word of channel 0 and the bank, as a staging write computes them.
        bank_of_sum = Array(Const(v % K, range(K)) for v in range(cfg.in_h + cfg.in_w - 1))
        word_of_col = Array(Const(c // K, addr_w) for c in range(cfg.in_w))
        word_of_row = Array(Const(r * lay["row_words"], addr_w) for r in range(cfg.in_h))
        base, bank = Signal(addr_w, name="smp_base"), Signal(range(K), name="smp_bank")
        row, col, slot = smp["row"][0], smp["col"][0], smp["slot"][0]
        m.d.sync += [base.eq(times_constant(slot, lay["slot_words"]) + word_of_row[row] + word_of_col[col]),
                     bank.eq(bank_of_sum[row + col])]
        word, chan = Signal(addr_w, name="smp_word"), Signal(index(cfg.in_c), name="smp_chan")
        busy = ctl.host_busy

        def read_branch(m):
            with m.Elif(~busy & host.to_samples):
                m.d.sync += [word.eq(base), chan.eq(0), host.mem_rdata.eq(0)]
                m.next = "SAMPLE_READ"

        def states(m):
            with m.State("SAMPLE_READ"):
                m.d.comb += samples.rd_en.eq(1)
                m.d.comb += [samples.rd_addr[b].eq(word) for b in range(K)]
                m.d.sync += word.eq(word + lay["plane_words"])
                m.next = "SAMPLE_BYTE" if samples.read_latency == 1 else "SAMPLE_WAIT1"
            # A registered sample memory shows the word read_latency - 1 cycles later.
            for wait in range(1, samples.read_latency):
                with m.State(f"SAMPLE_WAIT{wait}"):
                    m.next = "SAMPLE_BYTE" if wait == samples.read_latency - 1 else f"SAMPLE_WAIT{wait + 1}"
            with m.State("SAMPLE_BYTE"):
                m.d.sync += host.mem_rdata.word_select(chan, 8).eq(Array(samples.rd_data)[bank])
                with m.If(chan == cfg.in_c - 1):
                    m.next = "MEM_RESPOND"
                with m.Else():
                    m.d.sync += chan.eq(chan + 1)
                    m.next = "SAMPLE_READ"
        return read_branch, states

